"""Users' own recordings: a folder with ``positive/``, ``negative/`` and ``background/`` as manifest rows."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Mapping

from audioconv import audio
from audioconv.corpus.view import hash_fraction

log = logging.getLogger(__name__)
# Audio files accepted in a user's own recordings folder.
USER_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
USER_ENGINE = "user"  # the manifest's engine for a user's recordings: not a synthesis engine, and no adversary domain
USER_SUBFOLDERS = {"positive": "keyword", "negative": "speech", "background": "noise"}


def _read_keyword_times(path: Path) -> dict[str, tuple[float, float]]:
    """positive/keywords.csv: file,kw_start,kw_end (file relative to positive/)."""
    if not path.exists():
        return {}
    times = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                times[Path(row["file"]).as_posix()] = (float(row["kw_start"]), float(row["kw_end"]))
            except (KeyError, TypeError, ValueError):
                log.warning("%s: skipping bad line %s", path, dict(row))
    return times


def user_corpus_rows(folder: str | Path, seed: int, val_fraction: float = 0.15) -> list[dict]:
    """Manifest-style rows (absolute paths) for a user's folder of positive/, negative/ and background/ recordings.

    Each file is checked with ``audio.load``; an unusable file is skipped with a
    one-line warning naming it. Voice is ``user:<first subfolder>`` or
    ``user:<file stem>``; the split (train/val) is a seeded hash of the file's
    relative path, so adding files never moves the others.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"user recordings folder {folder} does not exist")
    times = _read_keyword_times(folder / "positive" / "keywords.csv")
    rows = []
    for sub, kind in USER_SUBFOLDERS.items():
        base = folder / sub
        files = sorted(base.rglob("*")) if base.is_dir() else []
        for path in (p for p in files if p.is_file() and p.suffix.lower() in USER_AUDIO_SUFFIXES):
            row = _user_row(path, base, folder, kind, times, seed, val_fraction)
            if row is not None:
                rows.append(row)
    return rows


def _user_row(
    path: Path, base: Path, folder: Path, kind: str, times: Mapping, seed: int, val_fraction: float
) -> dict | None:
    """One validated row, or None (with a warning naming the file) when the file cannot be used."""
    relative = path.relative_to(base)
    try:
        wave = audio.load(path)
    except audio.AudioError as error:
        log.warning("skipping user file %s", error)
        return None
    duration = wave.size / audio.SAMPLE_RATE
    kw_start = kw_end = None
    if kind == "keyword":
        kw_start, kw_end = times.get(relative.as_posix(), (0.0, duration))
        if not 0.0 <= kw_start < kw_end <= duration + 1.0 / audio.SAMPLE_RATE:
            log.warning("skipping user file %s: keyword %s..%s s outside 0..%.3f s", path, kw_start, kw_end, duration)
            return None
        kw_end = min(kw_end, duration)
    voice = relative.parts[0] if len(relative.parts) > 1 else path.stem
    name = path.relative_to(folder).as_posix()
    return {
        "path": str(path.resolve()),
        "label": int(kind == "keyword"),
        "kind": kind,
        "text": "",
        "kw_start": kw_start,
        "kw_end": kw_end,
        "engine": USER_ENGINE,
        "voice": f"user:{voice}",
        "split": "val" if hash_fraction(seed, name) < val_fraction else "train",
        "duration": duration,
        "params": "",
    }
