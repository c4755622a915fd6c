"""Synthesize one part of the corpus (an engine's speech, its extra utterances, or the noise files), resumably and in parallel.

* **Crash-safe and resumable.** Each wav is written atomically with a small
  JSON side file (samples, keyword span); a rerun skips items that have both.
  The part's ``manifest.csv`` is written last, in one rename, so it exists only
  for a complete part. A lock file serializes builders of one folder.
* **Parallel, same result.** Workers are *spawned* processes (safe beside
  torch's threads); how the plan is cut into tasks never changes the audio
  (festival and piper set every parameter afresh per chunk; see their modules).
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import shutil
import signal
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from audioconv import audio
from audioconv.corpus import noise
from audioconv.corpus.engines import ENGINES
from audioconv.corpus.engines.base import Item, SynthesisError, samples
from audioconv.corpus.manifest import complete, write_manifest
from audioconv.corpus.plan import part_rng, plan
from audioconv.corpus.settings import CorpusConfig, engine_of, from_plain, part_key, part_section, plain, shared_settings
from audioconv.files import write_text_atomically

log = logging.getLogger(__name__)
# Scheduling only (output never depends on it): tasks per worker, for load balance.
_TASKS_PER_WORKER = 4
_PROGRESS_REPORTS = 10
_SECONDS_DECIMALS = 4


def part_dir(cfg: Mapping[str, Any], part: str, root: str | os.PathLike) -> Path:
    """``root/<part>-<key>``: one folder per distinct part, so differently-configured parts never mix."""
    return Path(root) / f"{part}-{part_key(cfg, part)}"


def part_settings(cfg: Mapping[str, Any], part: str) -> Any:
    """The typed settings of one part's section (``engines.<name>``, for its extra parts ``<name>+<kind>`` too, or ``noise``)."""
    section = part_section(cfg, part)
    if part == noise.NAME:
        return from_plain(noise.Settings, section, "corpus.noise")
    return from_plain(ENGINES[engine_of(part)].Settings, section, f"corpus.engines.{engine_of(part)}")


def plan_part(cfg: Mapping[str, Any], part: str) -> list[Item]:
    shared = CorpusConfig.from_mapping(cfg)
    settings = part_settings(cfg, part)
    if part == noise.NAME:
        return noise.plan(settings, part_rng(shared.seed, part))
    engine = engine_of(part)
    if part == engine:
        return plan(shared, ENGINES[engine], settings, part)
    own_voices = {item.voice for item in plan_part(cfg, engine)}  # planning only: no audio is made
    return plan(shared, ENGINES[engine], settings, part, only_voices=own_voices)


# --------------------------------------------------------------------------- one item


def _peak_normalize(wave: np.ndarray, dbfs: float) -> np.ndarray:
    peak = float(np.max(np.abs(wave)))
    return (wave * (10 ** (dbfs / 20) / peak)).astype(np.float32) if peak > 0 else wave.astype(np.float32)


def _fit_padding(item: Item, speech_samples: int, shared: CorpusConfig) -> tuple[int, int]:
    """Planned lead/trail silence, shrunk proportionally when the file would exceed max_seconds."""
    lead, trail = samples(item.lead), samples(item.trail)
    room = samples(shared.max_seconds) - speech_samples
    if lead + trail > room:
        scale = max(room, 0) / (lead + trail)
        lead, trail = int(lead * scale), int(trail * scale)
        if room < 0:
            seconds = speech_samples / audio.SAMPLE_RATE
            log.warning("%s %s: %.2f s of speech is longer than max_seconds", item.voice, item.wav, seconds)
    return lead, trail


def _write_item(root: Path, item: Item, wave: np.ndarray, span, shared: CorpusConfig) -> None:
    """Pad, normalize and save one file, then its side file (so a side file vouches for a finished wav)."""
    if item.kind == "keyword" and span is None:
        raise SynthesisError(f"{item.voice}: {item.text!r}: no keyword span")
    lead, trail = _fit_padding(item, wave.size, shared) if item.engine != noise.NAME else (0, 0)
    wave = np.concatenate([np.zeros(lead, np.float32), wave.astype(np.float32), np.zeros(trail, np.float32)])
    audio.save(root / item.wav, _peak_normalize(wave, item.peak_dbfs))
    meta = {"samples": int(wave.size), "kw": [span[0] + lead, span[1] + lead] if span else None}
    write_text_atomically(root / item.meta, json.dumps(meta))


def _run_task(root: str, cfg: dict, part: str, items: Sequence[Item]) -> int:
    """Synthesize and write a batch of items of one part (in a worker process or inline)."""
    base = Path(root)
    shared = CorpusConfig.from_mapping(cfg)
    settings = part_settings(cfg, part)
    if part == noise.NAME:
        results = [(noise.make_noise(i.spec, i.params["seconds"], i.params["seed"], settings), None) for i in items]
    else:
        results = ENGINES[engine_of(part)].synthesize(items, settings, shared, base / ".work")
    for item, (wave, span) in zip(items, results):
        _write_item(base, item, wave, span, shared)
    return len(items)


# --------------------------------------------------------------------------- scheduling


def _done(folder: Path, item: Item) -> bool:
    return (folder / item.wav).exists() and (folder / item.meta).exists()


def _tasks(folder: Path, cfg: Mapping[str, Any], part: str, items: Sequence[Item], workers: int) -> list[list[Item]]:
    """Batches of the items still to make; engines whose output depends on the batch get fixed batches."""
    engine = ENGINES.get(engine_of(part))
    if engine is not None and getattr(engine, "GROUP_BY_VOICE", False):
        chunk = int(part_settings(cfg, part).chunk)
        todo = [i for i in items if not _done(folder, i)]
        tasks = []
        for voice in sorted({i.spec for i in todo}):
            mine = [i for i in todo if i.spec == voice]
            tasks += [mine[k : k + chunk] for k in range(0, len(mine), chunk)]
        return tasks
    fixed = getattr(engine, "CHUNK", None)
    if fixed:  # a chunk is redone whole when any of it is missing
        chunks = [list(items[k : k + fixed]) for k in range(0, len(items), fixed)]
        return [c for c in chunks if not all(_done(folder, i) for i in c)]
    todo = [i for i in items if not _done(folder, i)]
    size = max(1, math.ceil(len(todo) / (workers * _TASKS_PER_WORKER)))
    return [todo[k : k + size] for k in range(0, len(todo), size)]


def _worker_init() -> None:
    """Workers die with their parent (Linux), so a killed build leaves no writers behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _execute(root: Path, cfg: dict, part: str, tasks: list[list[Item]], workers: int) -> None:
    """Run the tasks inline (one worker) or on a process pool; the first failure stops the build."""
    total, done, started = sum(len(t) for t in tasks), 0, time.monotonic()
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            _run_task(str(root), cfg, part, task)
        log.info("%s: synthesized %d files in %.1f s", part, total, time.monotonic() - started)
        return
    step, reported = max(total // _PROGRESS_REPORTS, 1), 0
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
        pending = {pool.submit(_run_task, str(root), cfg, part, task) for task in tasks}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                if future.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise future.exception()  # type: ignore[misc]
                done += future.result()
            if done - reported >= step or not pending:
                reported = done
                log.info("%s: synthesized %d / %d files (%.0f s)", part, done, total, time.monotonic() - started)


def _clean_leftovers(root: Path) -> None:
    """Remove what a killed build can leave: temporary files and engine work folders."""
    shutil.rmtree(root / ".work", ignore_errors=True)
    for pattern in ("wav/.*.tmp", "meta/.*.tmp", ".*.tmp"):
        for path in root.glob(pattern):
            path.unlink(missing_ok=True)


def _manifest_row(root: Path, item: Item) -> dict[str, str]:
    meta = json.loads((root / item.meta).read_text())
    count, kw = meta["samples"], meta["kw"]
    duration = round(count / audio.SAMPLE_RATE, _SECONDS_DECIMALS)
    scale = 10**_SECONDS_DECIMALS
    kw_start = kw_end = ""
    if kw:  # rounded outwards, so the stated interval still holds the whole keyword
        kw_start = f"{math.floor(kw[0] / audio.SAMPLE_RATE * scale) / scale:.{_SECONDS_DECIMALS}f}"
        kw_end = f"{min(math.ceil(kw[1] / audio.SAMPLE_RATE * scale) / scale, duration):.{_SECONDS_DECIMALS}f}"
    return {
        "path": item.wav,
        "label": str(item.label),
        "kind": item.kind,
        "text": item.text,
        "kw_start": kw_start,
        "kw_end": kw_end,
        "engine": item.engine,
        "voice": item.voice,
        "split": "",
        "duration": f"{duration:.{_SECONDS_DECIMALS}f}",
        "params": json.dumps(item.params, sort_keys=True),
    }


def build_part(cfg: Mapping[str, Any], part: str, root: str | os.PathLike, workers: int | None = None) -> Path:
    """Build (or finish) one part under ``part_dir(cfg, part, root)``; return its manifest path.

    ``workers`` (default: all usable cores) changes only the speed, never the result.
    """
    values = plain(cfg)
    folder = part_dir(values, part, root)
    manifest = folder / "manifest.csv"
    if complete(manifest):
        return manifest
    engine = ENGINES.get(engine_of(part))
    reason = engine.unavailable() if engine is not None else None
    if reason:
        raise SynthesisError(f"corpus part {part!r} cannot be built here: {reason}")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per folder; the kernel frees it if we are killed
        if complete(manifest):
            return manifest
        _clean_leftovers(folder)
        record = {"part": part, "shared": shared_settings(values), "own": part_section(values, part)}
        write_text_atomically(folder / "config.json", json.dumps(record, indent=2, sort_keys=True) + "\n")
        items = plan_part(values, part)
        workers = workers or len(os.sched_getaffinity(0))
        tasks = _tasks(folder, values, part, items, workers)
        log.info("corpus part %s: %d files planned, %d to synthesize on %d workers", folder, len(items),
                 sum(len(t) for t in tasks), workers)
        if tasks:
            prepare = getattr(engine, "prepare", None)
            if prepare is not None:
                prepare()  # once, here: the workers find it done
            _execute(folder, values, part, tasks, workers)
        path = write_manifest(manifest, [_manifest_row(folder, item) for item in items])
        _clean_leftovers(folder)
        return path
