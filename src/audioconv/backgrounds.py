"""Real background audio for the noise pool: music and ambience excerpts from installed Debian packages.

The synthetic noise files (white/pink/brown noise, hum, tones, synthetic music)
teach the detector little about what real recordings hold. Debian ships
royalty-free music and ambience (shared/ENGINES.md): `wesnoth-1.16-music`
(41 orchestral tracks) and `sonic-pi-samples` (ambiences, loops, one-shots).
This module cuts a seeded set of short excerpts from them, once, and caches
them as 16 kHz wavs under ``<cache_root>/<settings key>/`` with an index
(``index.json``, written last and atomically: its presence marks a complete
set). Source files are split into train / val / test *by file*, so no
evaluation split ever hears a track that training heard.

Files matching the first pattern form one group, the files only the second
matches another, and so on; each group is split by file on its own, and
excerpts are drawn round-robin over the groups, so a few long music tracks do
not crowd out the short loops and ambiences. When no pattern matches anything
(the packages are not installed), one line is logged and nothing is returned:
the synthetic noise files remain the whole pool.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import soundfile as sf

from audioconv import audio
from audioconv.files import write_text_atomically

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
VERSION = 1
SILENCE_RMS = 1e-4  # excerpts quieter than this (-80 dBFS) are skipped


@dataclass(frozen=True)
class BackgroundSettings:
    """What conf/data/welcome.yaml ``data.backgrounds`` holds (``enabled`` aside)."""

    sources: tuple[str, ...] = ()  # glob patterns, one group each
    count: int = 200  # excerpts over all splits (fewer when the sources run out)
    excerpt_seconds: float = 6.0  # at most; a shorter file gives one excerpt of its own length
    min_source_seconds: float = 1.5  # shorter files (one-shot hits) are skipped
    val_fraction: float = 0.1  # of each group's files
    test_fraction: float = 0.1
    seed: int = 0
    sample_rate: int = audio.SAMPLE_RATE

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> "BackgroundSettings":
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known - {"enabled"}
        if unknown:
            raise ValueError(f"unknown background settings: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in values.items() if k in known})


@dataclass
class Source:
    path: str
    group: int
    seconds: float
    split: str = ""
    slots: list[float] = field(default_factory=list)  # excerpt start times, seconds


def find_sources(settings: BackgroundSettings) -> list[Source]:
    """Readable files matching the patterns, long enough, each in the group of the first pattern it matches."""
    seen: set[str] = set()
    sources = []
    for group, pattern in enumerate(settings.sources):
        for path in sorted(glob.glob(pattern)):
            if path in seen:
                continue
            seen.add(path)
            try:
                seconds = sf.info(path).duration
            except RuntimeError:  # not audio libsndfile can read
                continue
            if seconds >= settings.min_source_seconds:
                sources.append(Source(path, group, float(seconds)))
    return sources


def settings_key(settings: BackgroundSettings, sources: list[Source]) -> str:
    """Short sha1 of the settings and the files found (path and size): other packages, other set."""
    files = [[s.path, os.path.getsize(s.path)] for s in sources]
    blob = json.dumps({"version": VERSION, "settings": settings.__dict__, "files": files}, sort_keys=True, default=list)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def assign_splits(sources: list[Source], settings: BackgroundSettings, rng: np.random.Generator) -> None:
    """Each group's files, shuffled, go to val / test / train by file (groups of fewer than 3 files train)."""
    for group in sorted({s.group for s in sources}):
        members = [s for s in sources if s.group == group]
        order = rng.permutation(len(members))
        n_val = int(round(len(members) * settings.val_fraction)) if len(members) >= 3 else 0
        n_test = int(round(len(members) * settings.test_fraction)) if len(members) >= 3 else 0
        if len(members) >= 3:
            n_val, n_test = max(n_val, 1), max(n_test, 1)
        for rank, i in enumerate(order):
            members[i].split = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"


def plan_excerpts(sources: list[Source], settings: BackgroundSettings, rng: np.random.Generator) -> list[tuple[Source, float]]:
    """(source, start) pairs: per split a share of ``count``, round-robin over groups, non-overlapping slots."""
    shares = {"train": 1 - settings.val_fraction - settings.test_fraction, "val": settings.val_fraction,
              "test": settings.test_fraction}
    for s in sources:
        slots = max(1, int(s.seconds // settings.excerpt_seconds))
        offset = rng.uniform(0, max(0.0, s.seconds - slots * settings.excerpt_seconds))
        s.slots = [offset + k * settings.excerpt_seconds for k in rng.permutation(slots)]
    plan = []
    for split in SPLITS:
        budget = int(round(settings.count * shares[split]))
        queues = {}
        for group in sorted({s.group for s in sources}):
            members = [s for s in sources if s.group == group and s.split == split]
            pairs = [(s, start) for s in members for start in s.slots]
            queues[group] = [pairs[i] for i in rng.permutation(len(pairs))]
        taken = 0
        while taken < budget and any(queues.values()):
            for queue in queues.values():
                if queue and taken < budget:
                    plan.append(queue.pop())
                    taken += 1
    return plan


def read_excerpt(path: str, start: float, seconds: float, sample_rate: int) -> np.ndarray:
    """``seconds`` of ``path`` from ``start`` (seeking, not decoding the whole file), mono, at ``sample_rate``."""
    with sf.SoundFile(path) as handle:
        first = int(start * handle.samplerate)
        handle.seek(min(first, max(0, handle.frames - 1)))
        data = handle.read(int(seconds * handle.samplerate), dtype="float32", always_2d=True)
        rate = handle.samplerate
    return audio.resample(data.mean(axis=1), rate, sample_rate)


def build(settings: BackgroundSettings, cache_root: str | os.PathLike) -> Path | None:
    """Cut and cache the excerpts (once per settings key); the folder, or None when no source exists."""
    sources = find_sources(settings)
    if not sources:
        log.info("no background audio found (%s): using the synthetic noise only", ", ".join(settings.sources) or "no sources")
        return None
    folder = Path(cache_root) / settings_key(settings, sources)
    if (folder / "index.json").is_file():
        return folder
    rng = np.random.default_rng(settings.seed)
    assign_splits(sources, settings, rng)
    entries = []
    for source, start in plan_excerpts(sources, settings, rng):
        wave = read_excerpt(source.path, start, settings.excerpt_seconds, settings.sample_rate)
        if audio_rms(wave) < SILENCE_RMS:  # a silent stretch (a track's lead-in): no use as background
            continue
        peak = float(np.max(np.abs(wave)))
        if peak > 0.99:  # resampling can overshoot full scale; 16-bit wavs would clip it
            wave = wave * (0.99 / peak)
        name = f"{source.split}/{len(entries):04d}.wav"
        audio.save(folder / name, wave, settings.sample_rate)
        entries.append({"file": name, "split": source.split, "source": source.path, "group": source.group,
                        "start": round(start, 3), "seconds": round(len(wave) / settings.sample_rate, 3)})
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomically(folder / "index.json", json.dumps({"settings": settings.__dict__, "excerpts": entries}, indent=1))
    counts = {split: sum(e["split"] == split for e in entries) for split in SPLITS}
    log.info("background excerpts cached in %s: %s", folder, counts)
    return folder


def audio_rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if len(wave) else 0.0


def load(folder: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """The cached excerpts of each split (train / val / test)."""
    folder = Path(folder)
    index = json.loads((folder / "index.json").read_text())
    out: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
    for entry in index["excerpts"]:
        out[entry["split"]].append(audio.load(folder / entry["file"], sample_rate=index["settings"]["sample_rate"]))
    return out


def load_backgrounds(config: Mapping[str, Any] | None, cache_root: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """``data.backgrounds`` -> {split: excerpts}; empty when disabled or when no source is installed."""
    if not config or not config.get("enabled", False):
        return {}
    folder = build(BackgroundSettings.from_config(config), cache_root)
    return load(folder) if folder is not None else {}
