"""Hard-negative mining: where a detector fires on audio that holds no keyword, keep that audio for training.

A detector that fires on some sound in keyword-free audio has found a gap in
its negatives. Mining scans long negative audio (the corpus's non-keyword
utterances of one split joined into long streams, and/or the user's own
recordings), picks one window per event (the peak frame of each event at the
threshold: ``detect.detect_events`` peak picking and refractory merge), and
writes it as a wav laid out as a user folder (``data/README.md``, "Your own
recordings")::

    OUT/negative/<source>/<source>_<start ms>.wav   training clip length, the firing window in its middle
    OUT/mined.csv                                   file,source,start,end,score (file relative to OUT)

so ``python train.py data.user_folder=OUT`` trains on them as negatives
(``corpus.user_corpus_rows``: kind "speech", label 0, voice ``user:<source>``).

Each clip is ``clip_samples`` long (the training clip length,
``data.clips.clip_seconds``): the receptive-field window that fired, centered,
with the source's own audio around it (zeros beyond the source's ends). Wavs
and the index are written atomically. Mining again into the same folder adds
to it (a window mined twice is rewritten in place); delete it to start over.

The audio must really hold no keyword: a user recording that says "welcome"
would be mined as a "negative" and teach the model to miss it.
"""

from __future__ import annotations

import csv
import heapq
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from audioconv import audio, streams
from audioconv.detect import DetectionSettings, detect_model_events
from audioconv.files import write_text_atomically
from audioconv.models import Detector
from audioconv.scan import DEFAULT_CHUNK_SECONDS, scan_chunked

INDEX_NAME = "mined.csv"
INDEX_COLUMNS = ("file", "source", "start", "end", "score")
NEGATIVE_FOLDER = "negative"  # corpus.USER_SUBFOLDERS: speech without the keyword
CORPUS_PAUSE_RANGE = (0.3, 1.0)  # seconds between joined corpus utterances
CORPUS_STREAM_SECONDS = 600.0


@dataclass(frozen=True)
class MinedWindow:
    """One window where the detector fired: its place in the source (seconds) and its peak score."""

    source: str
    start: float  # of the receptive-field window that scored highest
    end: float
    score: float
    clip: np.ndarray  # clip_samples long, the window centered in it


@dataclass(frozen=True)
class MiningSummary:
    windows: int
    sources: int
    seconds: float
    threshold: float
    folder: Path
    index: Path

    @property
    def per_hour(self) -> float:
        return self.windows / (self.seconds / 3600) if self.seconds > 0 else float("nan")

    def line(self) -> str:
        return (
            f"mined {self.windows} window(s) at threshold {self.threshold:.2f} from {self.sources} source(s), "
            f"{self.seconds / 3600:.2f} h scanned ({self.per_hour:.1f} per hour) into {self.folder}; "
            f"index {self.index}"
        )


# --------------------------------------------------------------------------- sources


def corpus_negative_streams(
    rows: Sequence[Mapping],
    split: str = "train",
    seed: int = 0,
    stream_seconds: float = CORPUS_STREAM_SECONDS,
    max_seconds: float | None = None,
    pause_range: tuple[float, float] = CORPUS_PAUSE_RANGE,
    sample_rate: int = audio.SAMPLE_RATE,
    keyword: str = streams.DEFAULT_KEYWORD,
) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, wave)`` streams of every non-keyword utterance (speech, confusable, noise) of ``split``.

    Each utterance is used once, in a seeded order, joined by pauses from
    ``pause_range``; two utterances that spell ``keyword`` across their join
    ("well" + "come..." for "welcome": ``streams.forbidden_junction``) are
    never joined closely. Streams are about ``stream_seconds`` long (never cutting
    an utterance), ``max_seconds`` in all at most. Names: ``<split>-000``, ...
    """
    negatives = [r for r in rows if r["split"] == split and int(r["label"]) == 0]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(negatives))
    pieces: list[np.ndarray] = []
    length = total = 0
    index = 0
    previous: Mapping | None = None

    def flush() -> tuple[str, np.ndarray]:
        nonlocal pieces, length, index
        wave = np.concatenate(pieces).astype(np.float32)
        name = f"{split}-{index:03d}"
        pieces, length, index = [], 0, index + 1
        return name, wave

    for i in order:
        row = negatives[int(i)]
        wave = audio.load(row["path"], sample_rate=sample_rate)
        if max_seconds is not None and total + wave.size > max_seconds * sample_rate:
            break
        pause = float(rng.uniform(*pause_range))
        if streams.forbidden_junction(previous, row, keyword):
            pause = max(pause, streams.JUNCTION_GAP_SECONDS)
        gap = np.zeros(int(pause * sample_rate), dtype=np.float32)
        pieces += [gap, wave]
        length += gap.size + wave.size
        total += gap.size + wave.size
        previous = row
        if length >= stream_seconds * sample_rate:
            yield flush()
            previous = None
    if pieces:
        yield flush()


def source_name(path: Path, base: Path) -> str:
    """A file name safe name for a source: its path below ``base`` without suffix, '/' -> '__'."""
    relative = path.relative_to(base) if path.is_relative_to(base) else Path(path.name)
    name = "__".join(relative.with_suffix("").parts)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "audio"


def folder_sources(folder: str | os.PathLike, sample_rate: int = audio.SAMPLE_RATE) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, wave)`` for every audio file below ``folder`` (sorted); unreadable files raise ``AudioError``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    suffixes = {".wav", ".flac", ".ogg", ".mp3"}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes):
        yield source_name(path, folder), audio.load(path, sample_rate=sample_rate)


# --------------------------------------------------------------------------- windows


def peak_frames(probabilities: np.ndarray, model: Detector, settings: DetectionSettings) -> list[tuple[int, float]]:
    """``(frame, score)`` of the highest-scoring frame of each event at ``settings``, in time order."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    events = detect_model_events(model, probabilities, **settings.to_dict())
    centers = (np.arange(probabilities.size) * model.hop + model.receptive_field / 2) / model.sample_rate
    peaks = []
    for event in events:
        inside = np.flatnonzero((centers >= event.start) & (centers <= event.end))
        if inside.size == 0:
            continue
        frame = int(inside[np.argmax(probabilities[inside])])
        peaks.append((frame, float(probabilities[frame])))
    return peaks


def cut_clip(wave: np.ndarray, start: int, window: int, clip_samples: int) -> np.ndarray:
    """``clip_samples`` of ``wave`` with ``wave[start:start + window]`` in the middle; zeros past its ends."""
    first = start - (clip_samples - window) // 2
    clip = np.zeros(clip_samples, dtype=np.float32)
    lo, hi = max(first, 0), min(first + clip_samples, wave.size)
    if hi > lo:
        clip[lo - first : hi - first] = wave[lo:hi]
    return clip


def mine_wave(
    model: Detector,
    wave: np.ndarray,
    source: str,
    settings: DetectionSettings,
    clip_samples: int,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
) -> list[MinedWindow]:
    """Scan one keyword-free signal (chunked, exact) and cut a clip around each event's peak window."""
    if wave.size < model.receptive_field:
        return []
    probabilities = scan_chunked(model, wave, chunk_seconds=chunk_seconds)
    rf, sr = model.receptive_field, model.sample_rate
    windows = []
    for frame, score in peak_frames(probabilities, model, settings):
        start = frame * model.hop
        windows.append(MinedWindow(source, start / sr, (start + rf) / sr, score, cut_clip(wave, start, rf, clip_samples)))
    return windows


# --------------------------------------------------------------------------- writing


def clip_path(window: MinedWindow) -> Path:
    """Where a window goes, relative to the output folder."""
    return Path(NEGATIVE_FOLDER) / window.source / f"{window.source}_{int(round(window.start * 1000)):09d}.wav"


def _read_index(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _write_index(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=INDEX_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomically(path, buffer.getvalue())


def mine(
    model: Detector,
    sources: Iterable[tuple[str, np.ndarray]],
    out: str | os.PathLike,
    threshold: float,
    clip_samples: int,
    *,
    max_windows: int | None = None,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    progress: Any = None,
    **settings: Any,
) -> MiningSummary:
    """Mine every source and write the clips and the index into ``out`` (a user folder).

    ``threshold`` and ``settings`` (``smoothing_frames``, ``refractory_seconds``)
    are the detection settings (``detect.DetectionSettings``) events are picked with.
    With ``max_windows``, only the highest-scoring windows are kept (held in
    memory until the end); otherwise each source's clips are written as soon
    as it is scanned.
    """
    detection = DetectionSettings(threshold, **settings)  # checked before anything is scanned
    if clip_samples < model.receptive_field:
        raise ValueError(f"clip_samples {clip_samples} is shorter than the receptive field {model.receptive_field}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index_path = out / INDEX_NAME
    written: dict[str, dict[str, Any]] = {}
    kept: list[tuple[float, int, MinedWindow]] = []  # a min-heap on score when max_windows is set
    counter = seconds = n_sources = 0

    def write(window: MinedWindow) -> None:
        relative = clip_path(window)
        audio.save(out / relative, window.clip, model.sample_rate)
        written[relative.as_posix()] = {"file": relative.as_posix(), "source": window.source,
                                        "start": f"{window.start:.3f}", "end": f"{window.end:.3f}",
                                        "score": f"{window.score:.4f}"}

    seen: dict[str, int] = {}
    for name, wave in sources:
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:  # two sources with one name (same file name in two folders): keep both
            name = f"{name}-{seen[name]}"
        n_sources += 1
        seconds += wave.size / model.sample_rate
        windows = mine_wave(model, wave, name, detection, clip_samples, chunk_seconds)
        for window in windows:
            if max_windows is None:
                write(window)
            else:
                counter += 1
                entry = (window.score, -counter, window)  # ties: earlier windows win
                if len(kept) < max_windows:
                    heapq.heappush(kept, entry)
                elif max_windows > 0 and entry > kept[0]:
                    heapq.heapreplace(kept, entry)
        if progress is not None:
            progress(f"{name}: {wave.size / model.sample_rate / 60:.1f} min, {len(windows)} window(s)")
    for _, _, window in sorted(kept, key=lambda e: (e[2].source, e[2].start)):
        write(window)

    rows = [r for r in _read_index(index_path) if r.get("file") not in written] + list(written.values())
    _write_index(index_path, sorted(rows, key=lambda r: r["file"]))
    return MiningSummary(len(written), n_sources, seconds, threshold, out / NEGATIVE_FOLDER, index_path)
