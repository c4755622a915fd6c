"""From frame scores to keyword events: smoothing, threshold, peak picking, refractory merge.

A detector fires on many consecutive frames around one spoken keyword (every
window that contains the word scores high), and a noisy score can dip below
the threshold for a frame or two in the middle of a word. The rules below turn
that into **one event per spoken keyword**:

1. optional centered moving average (``smoothing_frames``; 1 = off). Centered so
   a peak stays where it was; the window shrinks at the edges so the first and
   last frames are not pulled towards zero;
2. a frame is *active* when its (smoothed) score is ``>= threshold``; each run
   of consecutive active frames is one candidate, scored by its maximum, with
   its peak at the first frame reaching that maximum;
3. refractory merge: a candidate whose peak lies less than
   ``refractory_seconds`` after the peak at which the current event *fired*
   (its first candidate's peak) is merged into it. Counting from the firing
   peak, like a live detector's debounce, means a chain of bumps cannot
   stretch one event indefinitely;
4. span: from the start of the first active frame's window to the end of the
   last active frame's window, ``[i * hop, j * hop + receptive_field)``
   samples, clipped to the file. Neighbouring windows overlap, so neighbouring
   events can too; they are trimmed to meet at the middle of their overlap.
   Events come out sorted, disjoint and inside ``[0, duration]``.

``detect_file`` is the whole pipeline for one file: load, chunked scan, events.
It takes a PyTorch ``Detector`` or any other scorer with the same geometry and
a ``scores(wave, chunk_seconds)`` method (``audioconv.onnx_backend.OnnxDetector``).
This module imports neither torch nor the models: the ONNX path runs without them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Mapping, Protocol

import numpy as np

from audioconv import audio

if TYPE_CHECKING:
    from audioconv.models import Detector

DEFAULT_THRESHOLD = 0.5
DEFAULT_SMOOTHING_FRAMES = 1  # no smoothing
DEFAULT_REFRACTORY_SECONDS = 1.0  # about one spoken "welcome" plus the detector's window spread


class Scorer(Protocol):
    """What ``analyze_file`` needs from a detector that is not a PyTorch module."""

    hop: int
    receptive_field: int
    sample_rate: int

    def scores(self, wave: np.ndarray, chunk_seconds: float | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class Event:
    """One detected keyword: its span in seconds within ``file`` and its peak score."""

    file: str
    start: float
    end: float
    score: float

    def to_dict(self) -> dict[str, Any]:
        """``{"file", "start", "end", "score"}``: the event format every tool of the project reads."""
        return asdict(self)


# One event before its span is settled: (first active frame, last active frame, firing peak frame, score).
Group = tuple[int, int, int, float]


@dataclass(frozen=True)
class FileDetection:
    """Everything one file's detection produced: kept together so plots and reports can use it."""

    file: str
    wave: np.ndarray
    sample_rate: int
    probabilities: np.ndarray
    hop: int
    receptive_field: int
    threshold: float
    events: list[Event]


def smooth(probabilities: np.ndarray, frames: int) -> np.ndarray:
    """Centered moving average over ``frames`` (odd) frames; shorter windows at the edges."""
    _check_smoothing(frames)
    values = np.asarray(probabilities, dtype=np.float64)
    if frames == 1 or values.size == 0:
        return values
    half, kernel = frames // 2, np.ones(frames)
    sums = np.convolve(values, kernel, mode="full")[half : half + values.size]
    counts = np.convolve(np.ones(values.size), kernel, mode="full")[half : half + values.size]
    return np.clip(sums / counts, 0.0, 1.0)  # an average of values in [0, 1] is in [0, 1]; clip rounding


def _active_runs(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """``(first, last)`` frame indices, inclusive, of each run of frames with ``score >= threshold``."""
    active = np.concatenate([[False], scores >= threshold, [False]])
    edges = np.flatnonzero(np.diff(active.astype(np.int8)))
    return [(int(first), int(after) - 1) for first, after in zip(edges[0::2], edges[1::2])]


def _check_smoothing(frames: int) -> None:
    if int(frames) != frames or frames < 1 or frames % 2 == 0:
        raise ValueError(f"smoothing_frames must be a positive odd number (centered window), got {frames}")


def check_settings(threshold: float, smoothing_frames: int, refractory_seconds: float) -> None:
    """Raise ``ValueError`` for settings ``detect_events`` cannot honour (user's or a checkpoint's)."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    _check_smoothing(smoothing_frames)
    if not refractory_seconds >= 0.0:
        raise ValueError(f"refractory_seconds must be >= 0, got {refractory_seconds}")


@dataclass(frozen=True)
class DetectionSettings:
    """How frame scores become events: the threshold, the smoothing window and the refractory period.

    The one place these three are named, defaulted and checked. ``detect_events``,
    ``analyze_file``, ``tracker.EventTracker`` and ``mining.mine`` take them as
    keyword arguments of these names (and build one of these to check them);
    checkpoints store their tuned values under the same names, so a model ships
    with its operating point (``detection_settings``).
    """

    threshold: float = DEFAULT_THRESHOLD
    smoothing_frames: int = DEFAULT_SMOOTHING_FRAMES
    refractory_seconds: float = DEFAULT_REFRACTORY_SECONDS

    def __post_init__(self) -> None:
        check_settings(self.threshold, self.smoothing_frames, self.refractory_seconds)

    def to_dict(self) -> dict[str, Any]:
        """``{"threshold", "smoothing_frames", "refractory_seconds"}``: keyword arguments for the functions above."""
        return asdict(self)


def detection_settings(
    info: Mapping[str, Any],
    threshold: float | None = None,
    smoothing_frames: int | None = None,
    refractory_seconds: float | None = None,
) -> dict[str, Any]:
    """The settings to detect with: the caller's where given, else the weights' ``info``, else the defaults.

    Returned as ``DetectionSettings.to_dict()``, checked.
    """
    given = {"threshold": threshold, "smoothing_frames": smoothing_frames, "refractory_seconds": refractory_seconds}
    chosen = {}
    for field in fields(DetectionSettings):
        value = given[field.name] if given[field.name] is not None else info.get(field.name, field.default)
        chosen[field.name] = type(field.default)(value)  # float or int, as the default: info may hold either
    return DetectionSettings(**chosen).to_dict()


def check_geometry(hop: int, receptive_field: int, sample_rate: int) -> None:
    """A frame grid that makes sense (offline detection and the online tracker share this check)."""
    if hop < 1 or receptive_field < 1 or sample_rate <= 0:
        raise ValueError(f"need hop >= 1, receptive_field >= 1, sample_rate > 0; got {hop}, {receptive_field}, {sample_rate}")


def _check_geometry(probabilities: np.ndarray, hop: int, receptive_field: int, sample_rate: int) -> None:
    if probabilities.ndim != 1:
        raise ValueError(f"expected 1-D frame probabilities, got shape {probabilities.shape}")
    finite = np.all(np.isfinite(probabilities))
    if probabilities.size and not (finite and probabilities.min() >= 0 and probabilities.max() <= 1):
        raise ValueError("frame probabilities must be finite and in [0, 1] (pass sigmoid(logits), not logits)")
    check_geometry(hop, receptive_field, sample_rate)


def detect_events(
    probs: np.ndarray,
    hop: int,
    receptive_field: int,
    sample_rate: int = audio.SAMPLE_RATE,
    *,
    file: str = "",
    duration: float | None = None,
    **settings: Any,
) -> list[Event]:
    """Events from frame probabilities (frame ``i`` covers samples ``[i*hop, i*hop+receptive_field)``).

    ``settings``: ``threshold``, ``smoothing_frames``, ``refractory_seconds``
    (``DetectionSettings``; its defaults for those not given). ``duration``
    (seconds) is the file's length; by default the span the frames cover,
    ``((len(probs) - 1) * hop + receptive_field) / sample_rate``. See the
    module docstring for the rules.
    """
    probabilities = np.asarray(probs)
    _check_geometry(probabilities, hop, receptive_field, sample_rate)
    chosen = DetectionSettings(**settings)
    if probabilities.size == 0:
        return []
    if duration is None:
        duration = ((probabilities.size - 1) * hop + receptive_field) / sample_rate
    scores = smooth(probabilities, chosen.smoothing_frames)
    groups: list[Group] = []
    for first, last in _active_runs(scores, chosen.threshold):
        peak = first + int(np.argmax(scores[first : last + 1]))
        add_candidate(groups, (first, last, peak, float(scores[peak])), hop, sample_rate, chosen.refractory_seconds)
    return group_events(groups, hop, receptive_field, sample_rate, duration, file)


def within_refractory(peak: int, fired: int, hop: int, sample_rate: int, refractory_seconds: float) -> bool:
    """Whether a candidate peaking at frame ``peak`` merges into the event that fired at frame ``fired``."""
    return (peak - fired) * hop < refractory_seconds * sample_rate


def add_candidate(groups: list[Group], candidate: Group, hop: int, sample_rate: int, refractory_seconds: float) -> None:
    """Append one run of active frames to ``groups``, or merge it into the last group (refractory rule 3).

    Shared with the online tracker (``audioconv.tracker``): both apply the rule
    with the same arithmetic, so live and offline events agree exactly.
    """
    first, last, peak, score = candidate
    if groups and within_refractory(peak, groups[-1][2], hop, sample_rate, refractory_seconds):
        g_first, _, g_peak, g_score = groups[-1]
        groups[-1] = (g_first, last, g_peak, max(g_score, score))
    else:
        groups.append(candidate)


def group_spans(groups: list[Group], hop: int, receptive_field: int, sample_rate: int) -> list[list[float]]:
    """``[start, end]`` in seconds per group: its frames' windows, overlaps with neighbours trimmed to meet halfway.

    A span's start depends only on the group before it and its end only on the
    group after it, so the online tracker gets the same numbers by calling this
    on three neighbouring groups.
    """
    spans = [[first * hop / sample_rate, (last * hop + receptive_field) / sample_rate] for first, last, _, _ in groups]
    for before, after in zip(spans, spans[1:]):
        if before[1] > after[0]:  # overlapping windows: meet in the middle of the overlap
            before[1] = after[0] = (before[1] + after[0]) / 2
    return spans


def span_event(span: list[float], score: float, duration: float, file: str = "") -> Event | None:
    """The event of one span clipped to ``[0, duration]``; ``None`` if nothing of it is left."""
    start, end = min(max(span[0], 0.0), duration), min(max(span[1], 0.0), duration)
    return Event(file=file, start=start, end=end, score=score) if end > start else None


def group_events(
    groups: list[Group], hop: int, receptive_field: int, sample_rate: int, duration: float, file: str = ""
) -> list[Event]:
    """Events from settled groups (``group_spans``, then ``span_event``), in order."""
    spans = group_spans(groups, hop, receptive_field, sample_rate)
    events = (span_event(span, group[3], duration, file) for span, group in zip(spans, groups))
    return [event for event in events if event is not None]


def detect_model_events(model: Detector | Scorer, probabilities: np.ndarray, **settings: Any) -> list[Event]:
    """``detect_events`` with ``model``'s own geometry (hop, receptive field, sample rate).

    ``settings`` are ``detect_events``' keyword arguments (threshold, smoothing,
    refractory, file, duration).
    """
    return detect_events(probabilities, model.hop, model.receptive_field, sample_rate=model.sample_rate, **settings)


def frame_probabilities(model: Detector | Scorer, wave: np.ndarray, chunk_seconds: float | None = None) -> np.ndarray:
    """Chunked scan of ``wave`` by a PyTorch detector (``scan.scan_chunked``) or a ``Scorer``.

    ``chunk_seconds=None`` means the scorer's default chunk length.
    """
    scores = getattr(model, "scores", None)
    if callable(scores):
        return scores(wave, chunk_seconds=chunk_seconds)
    from audioconv.scan import DEFAULT_CHUNK_SECONDS, scan_chunked  # torch: imported only for a torch detector

    return scan_chunked(model, wave, chunk_seconds=DEFAULT_CHUNK_SECONDS if chunk_seconds is None else chunk_seconds)


def analyze_file(
    model: Detector | Scorer, path: str | os.PathLike, chunk_seconds: float | None = None, **settings: Any
) -> FileDetection:
    """Load ``path`` (``audio.load``: mono, model rate), scan it in chunks, pick events.

    ``model`` is a PyTorch ``Detector`` or a ``Scorer`` (e.g. an ONNX export);
    ``chunk_seconds=None`` uses its default chunk length (``scan.DEFAULT_CHUNK_SECONDS``);
    ``settings`` are ``DetectionSettings``' fields, as for ``detect_events``.
    Raises ``audio.AudioError`` for a file that is unusable, including one
    shorter than the model's receptive field (it would give no frame at all).
    """
    chosen = DetectionSettings(**settings)  # checked before the file is read
    sample_rate = model.sample_rate
    wave = audio.load(path, sample_rate=sample_rate, min_samples=model.receptive_field)
    probabilities = frame_probabilities(model, wave, chunk_seconds)
    events = detect_model_events(
        model, probabilities, file=str(path), duration=wave.size / sample_rate, **chosen.to_dict()
    )
    return FileDetection(
        str(path), wave, sample_rate, probabilities, model.hop, model.receptive_field, chosen.threshold, events
    )


def detect_file(model: Detector | Scorer, path: str | os.PathLike, **settings: Any) -> list[Event]:
    """Keyword events in one file; ``settings`` are those of ``analyze_file``."""
    return analyze_file(model, path, **settings).events
