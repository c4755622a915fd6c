"""How fast and how lean the scans are: an hour of audio, each detector, each scan mode, and a peer.

    python benchmarks/scan_speed.py                       # one hour, the machine's threads (default 2) and 1
    python benchmarks/scan_speed.py --seconds 600 --stream-seconds 120 --oww-seconds 120 --json out.json

For each detector (shipped weights ``src/audioconv/weights/<name>.safetensors`` when present,
else random init: speed does not depend on the weights) and each mode:

* ``whole``      one forward pass over the whole file (skipped when a short
                 probe, extrapolated, says it would not fit in memory);
* ``chunked``    ``scan_chunked`` (60 s chunks overlapping by receptive field - hop);
* ``streaming``  ``StreamingScanner`` fed 80 ms (1280-sample) pushes, at the
                 benchmark's thread count and at 1 thread;
* ``naive``      ``scan_naive``: the detector re-run on every window at the
                 same hop, timed on a shorter piece (``--naive-seconds``) and
                 extrapolated per second of audio;

and, as a peer, openWakeWord 0.4.0's streaming pipeline (melspectrogram ->
embedding -> the ``hey_jarvis`` model, ONNX, all shipped inside its package:
nothing is downloaded) on 80 ms int16 chunks, with ``ncpu`` = 1 and = the
benchmark's threads (its wake-word session always runs on 1 thread).

Real-time factor (RTF) = seconds of audio / seconds of compute (wall clock,
best of ``--repeats``): how many times faster than real time. CPU seconds
(user + system, all threads) are printed beside it: on a busy machine they
move less than the wall clock. Every measurement runs in its own subprocess, so peak
memory is clean: the peak resident set size (VmHWM, reset just before the
scan via /proc/self/clear_refs; getrusage's ru_maxrss where that is missing)
and its growth over the process's size before the scan (audio and model
loaded). torch uses ``torch.set_num_threads(threads)`` (OMP_NUM_THREADS too).
On a machine where other work is running, OpenMP's default spin-waiting makes
2-thread torch scans (and onnxruntime's ncpu=2) many times slower than 1
thread; ``--omp-wait-policy PASSIVE`` measures torch without the spinning.
The audio is an hour built cheaply: corpus utterances tiled with pauses, plus
noise (white noise alone if there is no corpus); the content barely matters.

openWakeWord is optional: ``pip install -e .[bench]``; if its dependencies
pull something unwanted, ``pip install --no-deps openwakeword==0.4.0`` (it
needs onnxruntime, tqdm, scipy and scikit-learn, all already here through
the ``export`` extra and librosa). Without it the benchmark says why and runs
the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from audioconv import registry

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RATE = 16_000
PUSH_SAMPLES = 1280  # 80 ms: openWakeWord's frame, and our streaming push
MODELS = registry.MODEL_NAMES
WHOLE_PROBE_SECONDS = 60.0  # whole-file memory is measured on this much and extrapolated before the real run
MEMORY_FRACTION = 0.6  # whole-file mode runs only if its estimate fits in this share of available memory
WARMUP_SECONDS = 5.0
OWW_MODEL = "hey_jarvis"


# --------------------------------------------------------------------------- memory


def _rss_kib() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False where not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_kib(reset_worked: bool) -> int:
    if reset_worked:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _available_mb() -> float:
    """Memory available for a new allocation (psutil, else /proc/meminfo's MemAvailable)."""
    try:
        import psutil

        return psutil.virtual_memory().available / 2**20
    except ImportError:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    return float("inf")


# --------------------------------------------------------------------------- workers (subprocesses)


def _load_detector(name: str):
    import torch

    from audioconv import checkpoints

    path = checkpoints.shipped_weights(name)
    if path.is_file():
        model, _ = checkpoints.load_detector(path)
        return model, f"shipped {path.name}"
    torch.manual_seed(0)
    model = checkpoints.build_detector({"_target_": registry.MODELS[name]})
    return model.eval(), "random init"


def _our_scan(spec: dict[str, Any], wave: np.ndarray) -> tuple[float, dict[str, Any]]:
    import torch

    from audioconv import scan

    torch.set_num_threads(spec["threads"])
    model, weights = _load_detector(spec["model"])
    mode = spec["mode"]
    warm = wave[: int(WARMUP_SECONDS * SAMPLE_RATE)]
    scan.scan_whole(model, warm)  # first-call overhead (allocator, kernels) out of the timing
    if mode == "streaming":
        scanner = scan.StreamingScanner(model)
        for first in range(0, warm.size, PUSH_SAMPLES):
            scanner.push(warm[first : first + PUSH_SAMPLES])
    extra = {"weights": weights, "hop": model.hop, "receptive_field": model.receptive_field}

    def run() -> int:
        if mode == "whole":
            return scan.scan_whole(model, wave).size
        if mode == "chunked":
            return scan.scan_chunked(model, wave).size
        if mode == "naive":
            return scan.scan_naive(model, wave).size
        if mode == "streaming":
            scanner = scan.StreamingScanner(model)
            frames = 0
            for first in range(0, wave.size, PUSH_SAMPLES):
                frames += scanner.push(wave[first : first + PUSH_SAMPLES]).size
            return frames
        raise ValueError(mode)

    return _timed(run, extra, spec.get("repeats", 1))


def _oww_scan(spec: dict[str, Any], wave: np.ndarray) -> tuple[float, dict[str, Any]]:
    import inspect

    import openwakeword
    from openwakeword.model import Model

    path = openwakeword.models[OWW_MODEL]["model_path"]
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: openWakeWord's model is not inside its package (this benchmark never downloads)")
    parameters = inspect.signature(Model.__init__).parameters
    if "wakeword_model_paths" in parameters:  # 0.4.x
        detector = Model(wakeword_model_paths=[path], ncpu=spec["threads"])
    else:  # 0.5+: the same thing under new names
        detector = Model(wakeword_models=[path], inference_framework="onnx", ncpu=spec["threads"])
    pcm = (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16)
    for first in range(0, int(WARMUP_SECONDS * SAMPLE_RATE), PUSH_SAMPLES):
        detector.predict(pcm[first : first + PUSH_SAMPLES])
    version = getattr(openwakeword, "__version__", None)
    if version is None:
        from importlib.metadata import version as package_version

        version = package_version("openwakeword")
    extra = {"weights": f"openwakeword {version} {Path(path).name}"}

    def run() -> int:
        count = 0
        for first in range(0, pcm.size - PUSH_SAMPLES + 1, PUSH_SAMPLES):
            detector.predict(pcm[first : first + PUSH_SAMPLES])
            count += 1
        return count

    return _timed(run, extra, spec.get("repeats", 1))


def _timed(run, extra: dict[str, Any], repeats: int) -> tuple[float, dict[str, Any]]:
    """Best wall time of ``repeats`` runs (and the CPU time of that run), peak memory over all of them."""
    import gc

    gc.collect()
    before = _rss_kib()
    reset = _reset_peak()
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        outputs = run()
        best = min(best, (time.perf_counter() - start, time.process_time() - cpu))
    peak = _peak_kib(reset)
    return best[0], {**extra, "outputs": outputs, "cpu_seconds": best[1], "rss_before_mb": before / 1024,
                     "peak_rss_mb": peak / 1024, "scan_mb": max(0, peak - before) / 1024, "peak_reset": reset}


def worker(spec: dict[str, Any]) -> None:
    """Run one measurement and print it as one JSON line (the parent reads the last line)."""
    wave = np.load(spec["audio"])[: int(spec["seconds"] * SAMPLE_RATE)]
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    if spec["mode"] == "openwakeword":
        seconds, extra = _oww_scan(spec, wave)
    else:
        seconds, extra = _our_scan(spec, wave)
    audio_seconds = wave.size / SAMPLE_RATE
    print(json.dumps({**spec, **extra, "audio_seconds": audio_seconds, "compute_seconds": seconds,
                      "rtf": audio_seconds / seconds if seconds > 0 else float("inf")}))


def measure(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One measurement in a fresh interpreter: the result dict, or {"error": ...}."""
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]), "MKL_NUM_THREADS": str(spec["threads"])}
    if spec.get("omp_wait_policy"):
        env["OMP_WAIT_POLICY"] = spec["omp_wait_policy"]
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"took longer than {timeout:.0f} s"}
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return {**spec, "error": lines[-1] if lines else f"exit status {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the audio


def make_audio(seconds: float, seed: int = 0) -> tuple[np.ndarray, str]:
    """An hour-ish of speech-like audio, cheaply: corpus utterances tiled with pauses, plus noise."""
    rng = np.random.default_rng(seed)
    total = int(seconds * SAMPLE_RATE)
    pieces, description = [], "white noise (no corpus found)"
    try:
        from audioconv import audio, config, corpus

        manifest = config.corpus_manifest(build=False, root=ROOT)
        if manifest.is_file():
            rows = corpus.read_manifest(manifest)
            for i in rng.choice(len(rows), size=min(60, len(rows)), replace=False):
                pieces += [audio.load(rows[int(i)]["path"]), np.zeros(int(rng.uniform(0.2, 1.0) * SAMPLE_RATE), np.float32)]
            description = f"{len(pieces) // 2} corpus utterances tiled + noise"
    except Exception as error:  # noqa: BLE001 - the content barely matters; fall back to noise
        description = f"white noise (corpus unavailable: {error})"
    wave = np.resize(np.concatenate(pieces), total) if pieces else np.zeros(total, np.float32)
    wave = wave + (0.01 * rng.standard_normal(total)).astype(np.float32)
    return wave.astype(np.float32), description


# --------------------------------------------------------------------------- report


def _row(result: dict[str, Any], label: str | None = None) -> str:
    name = label or result.get("model", "")
    threads = str(result["threads"]) if result["mode"] != "openwakeword" else f"ncpu={result['threads']}"
    mode = "streaming" if result["mode"] == "openwakeword" else result["mode"]
    if "error" in result or "skipped" in result:
        why = result.get("skipped") or result.get("error")
        return f"{name:<14} {mode:<10} {threads:>7}  {'':>8}  {'':>10}  {'':>8}  {'':>9}  {'':>9}  {'':>8}  {why}"
    note = " (extrapolated)" if result.get("extrapolated") else ""
    return (f"{name:<14} {mode:<10} {threads:>7}  {result['audio_seconds']:8.0f}  {result['compute_seconds']:10.2f}  "
            f"{result['cpu_seconds']:8.2f}  {result['rtf']:9.1f}  {result['peak_rss_mb']:9.0f}  {result['scan_mb']:8.0f}  "
            f"{result['weights']}{note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--seconds", type=float, default=3600.0, help="audio scanned whole / chunked (default one hour)")
    add("--stream-seconds", type=float, help="audio streamed in 80 ms pushes (default: --seconds)")
    add("--naive-seconds", type=float, default=120.0, help="audio for the naive per-window loop (extrapolated)")
    add("--oww-seconds", type=float, default=600.0, help="audio for openWakeWord (default 10 minutes)")
    add("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads (default: usable cores)")
    add("--models", nargs="+", choices=MODELS, default=list(MODELS))
    add("--no-openwakeword", action="store_true")
    add("--repeats", type=int, default=1, help="runs per measurement; the best wall time is kept (busy machines)")
    add("--omp-wait-policy", choices=("PASSIVE", "ACTIVE"),
        help="OMP_WAIT_POLICY for the torch workers (default: the environment's). PASSIVE stops idle OpenMP "
        "threads from spinning, which on a busy machine makes multi-threaded scans many times slower")
    add("--timeout", type=float, default=1800.0, help="per measurement, seconds")
    add("--json", type=Path, help="also write every measurement here")
    add("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return 0

    import torch

    stream_seconds = args.stream_seconds or args.seconds
    longest = max(args.seconds, stream_seconds, args.naive_seconds, args.oww_seconds, WHOLE_PROBE_SECONDS)
    wave, description = make_audio(longest)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="scan_speed_") as folder:
        audio_path = str(Path(folder) / "audio.npy")
        np.save(audio_path, wave)
        del wave
        usable = len(os.sched_getaffinity(0))
        policy = args.omp_wait_policy or os.environ.get("OMP_WAIT_POLICY", "unset")
        print(f"audio: {description}; torch {torch.__version__}; {os.cpu_count()} CPUs, {usable} usable; "
              f"benchmark threads {args.threads} (and 1 for streaming); OMP_WAIT_POLICY {policy}", flush=True)
        load = os.getloadavg()[0]
        if load > 0.5:
            print(f"warning: load average {load:.1f} on {usable} usable CPUs before the benchmark: other work is "
                  "running, timings will be noisy (multi-threaded torch and onnxruntime spin-wait on busy cores: "
                  "compare with --threads 1 or --omp-wait-policy PASSIVE)", flush=True)

        def run(**spec: Any) -> dict[str, Any]:
            spec = {"audio": audio_path, "repeats": args.repeats, "omp_wait_policy": args.omp_wait_policy, **spec}
            result = measure(spec, args.timeout)
            results.append(result)
            print(_row(result), flush=True)
            return result

        print(f"{'model':<14} {'mode':<10} {'threads':>7}  {'audio s':>8}  {'compute s':>10}  {'cpu s':>8}  {'RTF':>9}  "
              f"{'peak MB':>9}  {'+scan MB':>8}  weights", flush=True)
        summary: dict[str, dict[str, Any]] = {}
        for name in args.models:
            mine: dict[str, Any] = {}
            probe = measure({"audio": audio_path, "model": name, "mode": "whole", "threads": args.threads,
                             "seconds": WHOLE_PROBE_SECONDS, "omp_wait_policy": args.omp_wait_policy}, args.timeout)
            estimate = probe.get("scan_mb", float("inf")) * args.seconds / WHOLE_PROBE_SECONDS
            available = _available_mb()
            if estimate > MEMORY_FRACTION * available:
                skipped = {"model": name, "mode": "whole", "threads": args.threads,
                           "skipped": f"skipped: needs ~{estimate:.0f} MB, {available:.0f} MB available"}
                results.append(skipped)
                print(_row(skipped), flush=True)
            else:
                mine["whole"] = run(model=name, mode="whole", threads=args.threads, seconds=args.seconds)
            mine["chunked"] = run(model=name, mode="chunked", threads=args.threads, seconds=args.seconds)
            mine["streaming"] = run(model=name, mode="streaming", threads=args.threads, seconds=stream_seconds)
            if args.threads != 1:
                mine["streaming_1"] = run(model=name, mode="streaming", threads=1, seconds=stream_seconds)
            else:
                mine["streaming_1"] = mine["streaming"]
            naive = run(model=name, mode="naive", threads=args.threads, seconds=args.naive_seconds)
            naive["extrapolated"] = True
            mine["naive"] = naive
            summary[name] = mine

        peers: dict[int, dict[str, Any]] = {}
        if args.no_openwakeword:
            print("openWakeWord: not run (--no-openwakeword)")
        else:
            try:
                import openwakeword  # noqa: F401

                for threads in sorted({1, args.threads}):
                    peers[threads] = run(model="openWakeWord", mode="openwakeword", threads=threads,
                                         seconds=args.oww_seconds)
            except ImportError as error:
                print(f"openWakeWord: not run, cannot import it ({error}); pip install -e .[bench] "
                      f"or pip install --no-deps openwakeword==0.4.0")

    print("\nratios (RTF of the first / RTF of the second; > 1: the first is faster):")
    ok = lambda r: r is not None and "rtf" in r  # noqa: E731
    for name, mine in summary.items():
        if ok(mine.get("chunked")) and ok(mine.get("naive")):
            print(f"  {name}: chunked conv scan vs naive per-window loop, same hop "
                  f"({mine['chunked']['hop']} samples): {mine['chunked']['rtf'] / mine['naive']['rtf']:.1f}x "
                  f"(naive timed on {mine['naive']['audio_seconds']:.0f} s, per second of audio)")
        if ok(mine.get("whole")) and ok(mine.get("chunked")):
            print(f"  {name}: whole-file vs chunked: {mine['whole']['rtf'] / mine['chunked']['rtf']:.2f}x, "
                  f"memory {mine['whole']['scan_mb']:.0f} MB vs {mine['chunked']['scan_mb']:.0f} MB")
        for threads, key in ((1, "streaming_1"), (args.threads, "streaming")):
            peer = peers.get(threads)
            if ok(peer) and ok(mine.get(key)):
                print(f"  {name}: streaming {threads} thread(s) vs openWakeWord ncpu={threads} "
                      f"(80 ms pushes both): {mine[key]['rtf'] / peer['rtf']:.2f}x")
        peer = peers.get(args.threads)
        if ok(peer) and ok(mine.get("chunked")):
            print(f"  {name}: chunked ({args.threads} threads) vs openWakeWord streaming ncpu={args.threads}: "
                  f"{mine['chunked']['rtf'] / peer['rtf']:.1f}x")
    if any(ok(p) for p in peers.values()) and args.oww_seconds < args.seconds:
        print(f"  (openWakeWord ran on {args.oww_seconds:.0f} s of the same audio; RTF is per second, "
              "so the ratio holds for the hour)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
