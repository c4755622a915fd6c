"""Per-push cost of live detection: stateful ONNX and PyTorch scanners, the re-run scanner, openWakeWord.

    python benchmarks/stream_speed.py                        # 90 s of audio per measurement, 20/80/320 ms pushes
    python benchmarks/stream_speed.py --seconds 120 --repeats 3 --push-ms 10 80
    python benchmarks/stream_speed.py --models spectrogram --weights gated=gated/spectrogram.safetensors  # beside a file

Everything runs on one thread (``torch.set_num_threads(1)``, OMP_NUM_THREADS=1,
onnxruntime ``intra_op_num_threads=1, inter_op_num_threads=1``, openWakeWord's
``ncpu=1``), in one process, on the shipped weights
(``checkpoints.shipped_weights``). For each detector and push size:

* ``onnx``       ``onnx_backend.OnnxStatefulStream``: the stateful streaming
                 ONNX export (``audioconv.export``, ``--format onnx-stream``),
                 each window layer's input tail passed in and out as a state
                 tensor, made here from the shipped weights for a push of
                 exactly the push size (a push that is not a whole number of
                 hops uses the 80 ms graph and buffers);
* ``stateful``   ``streaming.StatefulScanner``: every time layer keeps the tail
                 of its input, so a push computes only the frames it completes;
* ``re-run``     ``scan.StreamingScanner``: re-runs one receptive field (~0.95 s)
                 per push (exact and simple, the reference);
* ``oWW``        openWakeWord 0.4.0's streaming pipeline (melspectrogram ->
                 embedding -> ``hey_jarvis``, ONNX, shipped inside its package),
                 int16 pushes of the same size. It refuses pushes under 400
                 samples (25 ms), so it has no 20 ms column.

The scanners take turns every ``TURN_SECONDS`` of audio (round robin), so a
burst of load from other work hits all of them alike, while each keeps its
own weights and state in cache for most of its pushes, as it would running
alone (turns of one push would measure cold caches). Cost = the
process CPU time of a push (µs, mean over the pushes; the best of
``--repeats`` runs): on a shared machine it leaves out the time the process
waits for a core, which wall time does not, and on one thread it is what wall
time is on an idle machine. RTF = push duration / cost, how many times faster
than real time. The median wall time per push is printed too. The outputs of
the three scanners are compared (they must agree to float rounding; ONNX
computes the DFT as a convolution, so it is held to 1e-4).

Latency: frame ``i`` covers samples ``[i * hop, i * hop + receptive_field)``
and is emitted by the push that delivers its last sample. A keyword ending at
sample ``e`` is first seen, to its end, by the first frame whose window reaches
``e``; that frame completes at most ``hop - 1`` samples later, and is handed
over at the end of the push that holds its last sample. Worst and mean are
taken over every possible end position (the pattern repeats every
lcm(hop, push) samples). This is the scanner's *algorithmic* latency; compute
time per push and the event logic (smoothing, peak picking) come on top.

The audio is the shipped demo stream (``data/streams/demo``, 60 s of speech
with keywords in noise) tiled to length; speed does not depend on content.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch / onnxruntime start their thread pools
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from audioconv import registry  # noqa: E402  (standard library only: no thread pool starts)

ROOT = Path(__file__).resolve().parent.parent
DEMO_STREAM = ROOT / "data" / "streams" / "demo" / "stream_000.flac"
SAMPLE_RATE = 16_000
MODELS = registry.MODEL_NAMES
PUSH_MS = (20, 80, 320)
WARMUP_SECONDS = 5.0
TURN_SECONDS = 2.0  # audio each scanner pushes before the next one takes its turn
OWW_MODEL = "hey_jarvis"
OWW_MIN_PUSH = 400  # openWakeWord 0.4.0 raises on pushes shorter than its 25 ms window
INT16_FULL_SCALE = 32767
MICROSECONDS = 1e6


def make_audio(seconds: float) -> np.ndarray:
    """The demo stream tiled to ``seconds`` (white noise if it is missing)."""
    total = int(seconds * SAMPLE_RATE)
    if DEMO_STREAM.is_file():
        from audioconv import audio

        return np.resize(audio.load(DEMO_STREAM), total).astype(np.float32)
    print(f"note: {DEMO_STREAM} missing, using white noise")
    return (0.05 * np.random.default_rng(0).standard_normal(total)).astype(np.float32)


def latency_ms(hop: int, receptive_field: int, push: int) -> tuple[float, float]:
    """(worst, mean) ms from a keyword's end to the push that returns the first frame seeing that end."""
    period = math.lcm(hop, push)
    waits = []
    for end in range(receptive_field, receptive_field + period):  # word occupies samples [..., end)
        frame = -(-(end - receptive_field) // hop)  # first frame whose window reaches sample end - 1
        complete = frame * hop + receptive_field  # samples the stream must hold to compute it
        delivered = -(-complete // push) * push  # pushes end at multiples of the push size
        waits.append(delivered - end)
    return 1000 * max(waits) / SAMPLE_RATE, 1000 * float(np.mean(waits)) / SAMPLE_RATE


Pusher = Callable[[np.ndarray], object]


def round_robin(pushers: dict[tuple[str, str], tuple[Pusher, np.ndarray]], size: int) -> dict:
    """Push every signal in pieces of ``size``, the scanners taking turns every ``TURN_SECONDS``.

    Per scanner: (CPU seconds per push, wall seconds per push, the frames it returned).
    """
    length = min(signal.size for _, signal in pushers.values())
    turn = max(1, int(TURN_SECONDS * SAMPLE_RATE) // size) * size
    cpu: dict[tuple[str, str], list[float]] = {key: [] for key in pushers}
    wall: dict[tuple[str, str], list[float]] = {key: [] for key in pushers}
    frames: dict[tuple[str, str], list[np.ndarray]] = {key: [] for key in pushers}
    for turn_start in range(0, length - size + 1, turn):
        for key, (push, signal) in pushers.items():
            for first in range(turn_start, min(turn_start + turn, length - size + 1), size):
                start_cpu, start_wall = time.process_time(), time.perf_counter()
                out = push(signal[first : first + size])
                wall[key].append(time.perf_counter() - start_wall)
                cpu[key].append(time.process_time() - start_cpu)
                if isinstance(out, np.ndarray) and out.size:
                    frames[key].append(out)
    return {key: (np.array(cpu[key]), np.array(wall[key]),
                  np.concatenate(frames[key]) if frames[key] else np.zeros(0, np.float32)) for key in pushers}


def openwakeword_factory() -> tuple[Callable[[], Pusher] | None, str]:
    """A function making a fresh openWakeWord ``predict`` (1 thread, int16 input), or None and why it cannot run."""
    try:
        import inspect

        import openwakeword
        from openwakeword.model import Model
    except ImportError as error:
        return None, f"cannot import openwakeword ({error}); pip install --no-deps openwakeword==0.4.0"
    path = openwakeword.models[OWW_MODEL]["model_path"]
    if not Path(path).is_file():
        return None, f"{path} missing (this benchmark never downloads)"
    if "wakeword_model_paths" in inspect.signature(Model.__init__).parameters:  # 0.4.x
        factory = lambda: Model(wakeword_model_paths=[path], ncpu=1).predict  # noqa: E731
    else:  # 0.5+: the same thing under new names
        factory = lambda: Model(wakeword_models=[path], inference_framework="onnx", ncpu=1).predict  # noqa: E731
    from importlib.metadata import version

    return factory, f"openWakeWord {version('openwakeword')} ({OWW_MODEL})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="audio pushed per measurement (default 90)")
    parser.add_argument("--push-ms", type=float, nargs="+", default=list(PUSH_MS), help="push sizes in ms")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs per measurement; the best is kept")
    parser.add_argument("--weights", nargs="+", default=[], metavar="LABEL=FILE",
                        help="also measure these detector files (.safetensors), e.g. gated=/tmp/gated/spectrogram.safetensors")
    parser.add_argument("--no-openwakeword", action="store_true")
    args = parser.parse_args()
    if not all("=" in item for item in args.weights):
        parser.error("--weights takes LABEL=FILE pairs")
    extra = dict(item.split("=", 1) for item in args.weights)
    taken = set(extra) & {*args.models, "openWakeWord"}
    if taken or len(extra) != len(args.weights):  # a label of a shipped model, or one given twice, would overwrite it
        parser.error(f"--weights labels must be new and distinct (not {', '.join(sorted(taken)) or 'a repeated one'})")

    import onnxruntime
    import torch

    from audioconv import checkpoints, export
    from audioconv.onnx_backend import OnnxStatefulStream
    from audioconv.scan import StreamingScanner
    from audioconv.streaming import StatefulScanner

    torch.set_num_threads(1)
    wave = make_audio(args.seconds + WARMUP_SECONDS)
    pushes = [int(round(ms * SAMPLE_RATE / 1000)) for ms in args.push_ms]
    oww, oww_note = (None, "not run (--no-openwakeword)") if args.no_openwakeword else openwakeword_factory()
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, 1 thread; "
          f"{args.seconds:.0f} s of audio per measurement, "
          f"best of {args.repeats}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"peer: {oww_note}", flush=True)

    pcm = (np.clip(wave, -1.0, 1.0) * INT16_FULL_SCALE).astype(np.int16)  # openWakeWord's input, made once
    makers: dict[tuple[str, str], tuple[Callable[[int], Pusher], np.ndarray]] = {}  # a fresh pusher for a push size
    geometry: dict[str, tuple[int, int]] = {}
    graphs: dict[tuple[str, int], bytes] = {}  # (model, push samples) -> stateful streaming ONNX graph
    sources = {**{name: checkpoints.shipped_weights(name) for name in args.models}, **extra}
    for name, source in sources.items():
        model, info = checkpoints.load_detector(source)
        geometry[name] = (model.hop, model.receptive_field)
        for size in pushes:
            block = size if size % model.hop == 0 else export.push_samples_for(model, export.DEFAULT_PUSH_MS)
            graphs[(name, size)] = export.onnx_stream_bytes(model, info, block)
        makers[(name, "onnx")] = (lambda size, n=name: OnnxStatefulStream(graphs[(n, size)], threads=1).push, wave)
        makers[(name, "stateful")] = (lambda size, m=model: StatefulScanner(m).push, wave)
        makers[(name, "re-run")] = (lambda size, m=model: StreamingScanner(m).push, wave)
    if oww is not None:
        makers[("openWakeWord", "oWW")] = (lambda size: oww(), pcm)

    warm = int(WARMUP_SECONDS * SAMPLE_RATE)
    cpu: dict[tuple[str, str, int], float] = {}
    wall: dict[tuple[str, str, int], float] = {}
    outputs: dict[tuple[str, str, int], np.ndarray] = {}
    for _ in range(args.repeats):
        for size in pushes:
            pushers = {key: (make(size), signal) for key, (make, signal) in makers.items()
                       if not (key[1] == "oWW" and size < OWW_MIN_PUSH)}
            round_robin({key: (push, signal[:warm]) for key, (push, signal) in pushers.items()}, size)  # warm-up
            timed = round_robin({key: (push, signal[warm:]) for key, (push, signal) in pushers.items()}, size)
            for (name, kind), (cpu_costs, wall_costs, frames) in timed.items():
                key = (name, kind, size)
                cpu[key] = min(cpu.get(key, math.inf), float(np.mean(cpu_costs)))
                wall[key] = min(wall.get(key, math.inf), float(np.median(wall_costs)))
                outputs[key] = frames

    print("\n| model | push | stateful ONNX µs/push (RTF) | stateful torch µs/push (RTF) | re-run µs/push (RTF) | "
          "openWakeWord µs/push (RTF) | ONNX vs openWakeWord | torch vs openWakeWord | ONNX vs torch | "
          "latency worst / mean (ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    cell = lambda cost, size: f"{cost * MICROSECONDS:,.0f} ({size / SAMPLE_RATE / cost:,.0f})"  # noqa: E731
    ratio = lambda slow, fast: f"{slow / fast:.1f}x" if slow else "n/a"  # noqa: E731
    for name in sources:
        hop, field = geometry[name]
        for size, ms in zip(pushes, args.push_ms):
            onnx, mine, rerun = (cpu[(name, kind, size)] for kind in ("onnx", "stateful", "re-run"))
            peer = cpu.get(("openWakeWord", "oWW", size))
            worst, typical = latency_ms(hop, field, size)
            reference = outputs[(name, "stateful", size)]
            for kind, tolerance in (("re-run", 1e-5), ("onnx", 1e-4)):
                other = outputs[(name, kind, size)]
                count = min(other.size, reference.size)  # a buffering ONNX graph may hold back the last frames
                gap = np.max(np.abs(other[:count] - reference[:count]), initial=0.0)
                if gap > tolerance or reference.size - count > 16:
                    print(f"warning: {name} at {ms:g} ms: {kind} and stateful scanners differ by {gap:.2e}")
            print(f"| {name} | {ms:g} ms | {cell(onnx, size)} | {cell(mine, size)} | {cell(rerun, size)} | "
                  f"{cell(peer, size) if peer else 'n/a'} | {ratio(peer, onnx)} | {ratio(peer, mine)} | "
                  f"{mine / onnx:.1f}x | {worst:.0f} / {typical:.0f} |")
    print("\nmedian wall µs per push (waits for a core included):")
    for size, ms in zip(pushes, args.push_ms):
        print(f"  {ms:g} ms: " + ", ".join(f"{name} {kind} {wall[(name, kind, s)] * MICROSECONDS:,.0f}"
                                          for (name, kind, s) in wall if s == size))
    print("hop and receptive field (samples): "
          + ", ".join(f"{n} {h} / {f}" for n, (h, f) in geometry.items())
          + "; ratios > 1: the first named is slower. n/a: openWakeWord refuses pushes under 25 ms. "
          + "Latency is the same for both stateful scanners when the ONNX graph's push is the push size.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
