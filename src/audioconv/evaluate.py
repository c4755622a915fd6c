"""Detection quality on long recordings: recall, false alarms per hour, DET curve.

Conventions (shared/DESIGN.md), so every figure means the same thing:

- an event is a hit when its span overlaps [kw_start - 0.25 s, kw_end + 1.0 s]
  of a keyword not already hit in the same file (events taken in time order,
  keywords in time order); every other event is a false alarm. Recall = hits /
  keywords; FRR = 1 - recall;
- false alarms per hour = false alarms / hours of audio scanned (all of it,
  keywords included);
- the curve sweeps a threshold over the events' scores: events are detected
  once at a low base threshold, and each operating point keeps those scoring
  at least t. Recall and false alarms can only fall as t rises. (The figures
  at a model's own threshold are computed exactly instead: its events are
  detected again at that threshold.)

``evaluate_models`` runs the whole thing for several detectors over a set of
files with their truth (``streams.read_truth``): one chunked scan per file and
model, then events, sweep, recall at <= 1 and <= 0.5 false alarms per hour,
and per-file and per-voice breakdowns. ``format_report`` prints it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from audioconv import audio
from audioconv.detect import DetectionSettings, Event, detect_model_events
from audioconv.models import Detector
from audioconv.scan import DEFAULT_CHUNK_SECONDS, scan_chunked

HIT_BEFORE = 0.25  # seconds an event may start before the keyword and still count
HIT_AFTER = 1.0  # seconds an event may lie after the keyword's end (the model fires once it has heard it)
DEFAULT_BASE_THRESHOLD = 0.05  # events for the sweep are detected at this threshold, then filtered
FA_TARGETS = (1.0, 0.5)  # false alarms per hour at which recall is quoted
TOP_FALSE_ALARMS = 100  # false alarms kept for "what fires" reports (cross_engine)
DET_FLOOR = 1e-2  # false alarms per hour drawn at this value when there are none (log axis)

Keyword = Sequence[float]  # (start, end, ...) in seconds: a tuple or a streams.Keyword


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    hits: int
    keywords: int
    false_alarms: int
    hours: float

    @property
    def recall(self) -> float:
        return self.hits / self.keywords if self.keywords else float("nan")

    @property
    def false_rejection_rate(self) -> float:
        return 1.0 - self.recall

    @property
    def false_alarms_per_hour(self) -> float:
        return self.false_alarms / self.hours if self.hours > 0 else float("nan")

    def to_dict(self) -> dict[str, float]:
        return {
            **asdict(self),
            "recall": self.recall,
            "false_rejection_rate": self.false_rejection_rate,
            "false_alarms_per_hour": self.false_alarms_per_hour,
        }


# --------------------------------------------------------------------------- matching


def in_hit_window(event: Event, keyword: Keyword) -> bool:
    """Whether ``event`` overlaps ``keyword``'s hit window, [start - HIT_BEFORE, end + HIT_AFTER]."""
    return event.start < keyword[1] + HIT_AFTER and event.end > keyword[0] - HIT_BEFORE


def match_detail(events: Sequence[Event], keywords: Sequence[Keyword]) -> tuple[list[Event | None], list[Event]]:
    """(for each keyword the event that hit it, or None; the false-alarm events), one file, time order."""
    order = sorted(range(len(keywords)), key=lambda k: (keywords[k][0], keywords[k][1]))
    hit_by: list[Event | None] = [None] * len(keywords)
    false_alarms: list[Event] = []
    for event in sorted(events, key=lambda e: (e.start, e.end)):
        for k in order:
            if hit_by[k] is None and in_hit_window(event, keywords[k]):
                hit_by[k] = event
                break
        else:
            false_alarms.append(event)
    return hit_by, false_alarms


def top_false_alarms(
    events: Mapping[str, Sequence[Event]], truth: Mapping[str, Sequence[Keyword]], top: int = 100
) -> list[Event]:
    """The ``top`` highest-scoring events that add a false alarm, not a hit, when the threshold falls to their score.

    That is how the sweep counts them. Matching all of a file's base-threshold
    events at once would not be: a faint bump on the word before a keyword,
    earlier in time, takes the hit, and the keyword's own 0.99 peak (more than
    a refractory period later) would be listed as a false alarm although at
    any threshold above the bump it is the hit.
    """
    ranked = sorted(((e, file) for file, file_events in events.items() for e in file_events), key=lambda p: -p[0].score)
    found: list[Event] = []
    for event, file in ranked:
        if len(found) >= top:
            break
        kept = [e for e in events[file] if e.score >= event.score]
        others = [e for e in kept if e is not event]
        if match(kept, truth.get(file, ()))[0] == match(others, truth.get(file, ()))[0]:  # it adds no hit
            found.append(event)
    return found


def match(events: Sequence[Event], keywords: Sequence[Keyword]) -> tuple[int, int]:
    """(hits, false alarms) for one file's events against its keyword intervals."""
    hit_by, false_alarms = match_detail(events, keywords)
    return sum(e is not None for e in hit_by), len(false_alarms)


def operating_point(
    events: Mapping[str, Sequence[Event]],
    truth: Mapping[str, Sequence[Keyword]],
    hours: float,
    threshold: float,
) -> OperatingPoint:
    """Score all files at one threshold: events scoring at least ``threshold`` are kept."""
    hits = false_alarms = 0
    for file in set(events) | set(truth):
        kept = [e for e in events.get(file, ()) if e.score >= threshold]
        file_hits, file_alarms = match(kept, truth.get(file, ()))
        hits += file_hits
        false_alarms += file_alarms
    keywords = sum(len(v) for v in truth.values())
    return OperatingPoint(threshold, hits, keywords, false_alarms, hours)


def _file_counts(
    events: Sequence[Event], keywords: Sequence[Keyword], thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(hits, false alarms) of one file at every threshold.

    When no event overlaps two keywords' windows (always, for streams whose
    keywords are spaced further apart than the hit window), a keyword is hit at
    ``t`` exactly when some event overlapping it scores ``>= t``, and every
    other kept event is a false alarm: two sorted searches give all thresholds
    at once. Otherwise the greedy ``match`` runs at each threshold.
    """
    candidates = [[k for k, keyword in enumerate(keywords) if in_hit_window(e, keyword)] for e in events]
    if any(len(c) > 1 for c in candidates):
        pairs = [match([e for e in events if e.score >= t], keywords) for t in thresholds]
        return np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64)
    best = np.full(len(keywords), -np.inf)
    for event, cands in zip(events, candidates):
        for k in cands:
            best[k] = max(best[k], event.score)
    scores = np.sort(np.array([e.score for e in events], dtype=np.float64))
    best = np.sort(best)
    kept = scores.size - np.searchsorted(scores, thresholds, side="left")  # events with score >= t
    hits = best.size - np.searchsorted(best, thresholds, side="left")
    return hits.astype(np.int64), (kept - hits).astype(np.int64)


def sweep(
    events: Mapping[str, Sequence[Event]], truth: Mapping[str, Sequence[Keyword]], hours: float
) -> list[OperatingPoint]:
    """One operating point per distinct event score (plus one above all), by increasing threshold."""
    scores = sorted({e.score for file_events in events.values() for e in file_events})
    thresholds = np.array(scores + [float(np.nextafter(scores[-1], np.inf)) if scores else 1.0])
    hits = np.zeros(thresholds.size, dtype=np.int64)
    false_alarms = np.zeros(thresholds.size, dtype=np.int64)
    for file in set(events) | set(truth):
        file_hits, file_alarms = _file_counts(list(events.get(file, ())), list(truth.get(file, ())), thresholds)
        hits += file_hits
        false_alarms += file_alarms
    keywords = sum(len(v) for v in truth.values())
    return [
        OperatingPoint(float(t), int(h), keywords, int(f), hours) for t, h, f in zip(thresholds, hits, false_alarms)
    ]


def _best_allowed(points: Sequence[OperatingPoint], max_false_alarms_per_hour: float) -> OperatingPoint | None:
    allowed = [p for p in points if p.false_alarms_per_hour <= max_false_alarms_per_hour]
    if not allowed:
        return None
    if not any(p.keywords for p in allowed):  # no keyword to recall: the most sensitive allowed threshold
        return min(allowed, key=lambda p: p.threshold)
    return max(allowed, key=lambda p: (p.recall, p.threshold))


def recall_at(points: Sequence[OperatingPoint], max_false_alarms_per_hour: float) -> tuple[float, float]:
    """Best recall with at most the given false alarms per hour, and the threshold that gives it.

    Among thresholds with that recall the highest is returned (the fewest
    false alarms). ``(0.0, nan)`` when no point qualifies (no audio scanned).
    """
    best = _best_allowed(points, max_false_alarms_per_hour)
    if best is None:
        return 0.0, float("nan")
    return best.recall, best.threshold


def threshold_for(points: Sequence[OperatingPoint], max_false_alarms_per_hour: float) -> float:
    """The threshold to run at for at most ``max_false_alarms_per_hour`` on the swept (validation) streams.

    With keywords in the streams: the threshold ``recall_at`` reports, i.e. the
    highest threshold that still gives the best recall allowed. With none
    (negative-only streams): the lowest threshold whose false alarms stay
    within the budget. ``nan`` when no point qualifies.
    """
    best = _best_allowed(points, max_false_alarms_per_hour)
    return float("nan") if best is None else best.threshold


# --------------------------------------------------------------------------- DET curve


def det_curve_png(curves: Mapping[str, Sequence[OperatingPoint]], path: str | os.PathLike) -> None:
    """Miss rate against false alarms per hour (log axis), one line per model, written atomically (``plots.det_curve``)."""
    from audioconv import plots

    plots.det_curve(curves, path, floor=DET_FLOOR, targets=FA_TARGETS)


# --------------------------------------------------------------------------- evaluating detectors


@dataclass
class ModelEvaluation:
    """Everything measured for one detector; ``to_dict`` is the JSON the CLI prints."""

    name: str
    settings: dict[str, Any]  # threshold, smoothing_frames, refractory_seconds used for the default point
    base_threshold: float
    hours: float
    default: OperatingPoint  # exact, at settings["threshold"]
    points: list[OperatingPoint]  # the sweep, by increasing threshold
    at_targets: dict[float, tuple[float, float]]  # FA/h target -> (recall, threshold)
    files: list[dict[str, Any]] = field(default_factory=list)  # per file, at the default threshold
    voices: list[dict[str, Any]] = field(default_factory=list)  # per voice: recall at default and targets
    # the highest-scoring false alarms, each as the sweep counts it at its own score, best first: what fires (not in to_dict)
    false_alarms: list[Event] = field(default_factory=list)

    @property
    def keywords(self) -> int:
        return self.default.keywords

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "settings": self.settings,
            "base_threshold": self.base_threshold,
            "hours": self.hours,
            "keywords": self.keywords,
            "default": self.default.to_dict(),
            "recall_at": [
                {"max_false_alarms_per_hour": target, "recall": recall, "threshold": threshold}
                for target, (recall, threshold) in self.at_targets.items()
            ],
            "files": self.files,
            "voices": self.voices,
            "sweep": [p.to_dict() for p in self.points],
        }


@dataclass
class ScoredFile:
    """One file's frame probabilities under one detector (the rest is geometry)."""

    key: str  # the file as the truth names it
    seconds: float
    probabilities: np.ndarray


def _events(scored: ScoredFile, model: Detector, settings: DetectionSettings) -> list[Event]:
    return detect_model_events(model, scored.probabilities, **settings.to_dict(), file=scored.key, duration=scored.seconds)


def summarize_model(
    name: str,
    model: Detector,
    settings: Mapping[str, Any],
    scored: Sequence[ScoredFile],
    truth: Mapping[str, Sequence[Keyword]],
    base_threshold: float = DEFAULT_BASE_THRESHOLD,
    targets: Sequence[float] = FA_TARGETS,
) -> ModelEvaluation:
    """Events, sweep, operating points and breakdowns for one detector's scores."""
    chosen = DetectionSettings(float(settings["threshold"]), int(settings["smoothing_frames"]),
                               float(settings["refractory_seconds"]))
    threshold = chosen.threshold
    base = min(base_threshold, threshold)
    hours = sum(s.seconds for s in scored) / 3600
    truth = {s.key: list(truth.get(s.key, ())) for s in scored}
    at_default = {s.key: _events(s, model, chosen) for s in scored}
    swept = {s.key: _events(s, model, replace(chosen, threshold=base)) for s in scored}
    points = sweep(swept, truth, hours)
    at_targets = {float(t): recall_at(points, t) for t in targets}

    files = []
    details = {key: match_detail(at_default[key], truth[key]) for key in truth}
    for s in scored:
        hit_by, alarms = details[s.key]
        files.append({
            "file": s.key,
            "seconds": s.seconds,
            "keywords": len(truth[s.key]),
            "hits": sum(e is not None for e in hit_by),
            "false_alarms": len(alarms),
            "false_alarms_per_hour": len(alarms) / (s.seconds / 3600) if s.seconds > 0 else float("nan"),
        })

    voices: dict[str, dict[str, Any]] = {}
    target_details = {
        t: {key: match_detail([e for e in swept[key] if e.score >= thr], truth[key])[0] for key in truth}
        for t, (_, thr) in at_targets.items()
        if np.isfinite(thr)
    }
    for key, keywords in truth.items():
        for k, keyword in enumerate(keywords):
            voice = str(keyword[2]) if len(keyword) > 2 and keyword[2] else "(unknown)"
            entry = voices.setdefault(voice, {"voice": voice, "keywords": 0, "hits": 0,
                                              **{f"hits_at_{t:g}_fa_per_hour": 0 for t in at_targets}})
            entry["keywords"] += 1
            entry["hits"] += details[key][0][k] is not None
            for t, per_file in target_details.items():
                entry[f"hits_at_{t:g}_fa_per_hour"] += per_file[key][k] is not None
    for entry in voices.values():
        entry["recall"] = entry["hits"] / entry["keywords"]
        for t in at_targets:
            hits = entry[f"hits_at_{t:g}_fa_per_hour"]
            entry[f"recall_at_{t:g}_fa_per_hour"] = hits / entry["keywords"] if t in target_details else float("nan")

    default = operating_point(at_default, truth, hours, threshold)
    return ModelEvaluation(
        name=name,
        settings=chosen.to_dict(),
        base_threshold=base,
        hours=hours,
        default=default,
        points=points,
        at_targets=at_targets,
        files=files,
        voices=sorted(voices.values(), key=lambda v: v["voice"]),
        false_alarms=top_false_alarms(swept, truth, TOP_FALSE_ALARMS),
    )


def evaluate_models(
    models: Mapping[str, tuple[Detector, Mapping[str, Any]]],
    files: Mapping[str, str | os.PathLike],
    truth: Mapping[str, Sequence[Keyword]],
    base_threshold: float = DEFAULT_BASE_THRESHOLD,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    targets: Sequence[float] = FA_TARGETS,
    progress: Callable[[str], None] | None = None,
) -> list[ModelEvaluation]:
    """Scan every file with every model (chunked, exact) and evaluate each model.

    ``models``: name -> (detector, detection settings as ``detect.detection_settings``
    returns them). ``files``: truth key -> path; a key absent from ``truth`` is
    negative audio (no keyword). Files are loaded one at a time (``audio.load``
    raises ``AudioError`` for an unusable one), so memory holds one file plus
    every model's frame scores.
    """
    scored: dict[str, list[ScoredFile]] = {name: [] for name in models}
    for key, path in files.items():
        waves: dict[int, np.ndarray] = {}
        for name, (model, _) in models.items():
            rate = model.sample_rate
            if rate not in waves:
                waves[rate] = audio.load(path, sample_rate=rate, min_samples=model.receptive_field)
            wave = waves[rate]
            probabilities = scan_chunked(model, wave, chunk_seconds=chunk_seconds)
            scored[name].append(ScoredFile(key, wave.size / rate, probabilities))
        if progress is not None:
            seconds = next(iter(waves.values())).size / next(iter(waves))
            progress(f"scanned {key} ({seconds / 60:.1f} min) with {len(models)} model(s)")
    return [
        summarize_model(name, model, settings, scored[name], truth, base_threshold, targets)
        for name, (model, settings) in models.items()
    ]


# --------------------------------------------------------------------------- report


def jsonable(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (strict JSON has neither)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return jsonable(value.item())
    return value


def _fmt(value: float, spec: str = ".3f") -> str:
    return "-" if value is None or (isinstance(value, float) and not np.isfinite(value)) else format(value, spec)


def format_report(evaluations: Sequence[ModelEvaluation], per_file: bool = True, per_voice: bool = True) -> str:
    """Overall table (one row per model), then per-file and per-voice tables."""
    if not evaluations:
        return "no model evaluated"
    first = evaluations[0]
    targets = list(first.at_targets)
    lines = [
        f"{len(first.files)} file(s), {first.hours:.3f} h scanned, {first.keywords} keywords; "
        f"hit window [start - {HIT_BEFORE:g} s, end + {HIT_AFTER:g} s]; "
        f"sweep over events detected at each model's base threshold",
        "",
    ]
    width = max(len("model"), *(len(e.name) for e in evaluations))
    header = f"{'model':<{width}}  {'thresh':>6}  {'recall':>6}  {'FRR':>6}  {'FA':>4}  {'FA/h':>7}"
    for t in targets:
        header += f"  {f'recall@{t:g}FA/h':>15}  {'thresh':>6}"
    lines.append(header)
    for e in evaluations:
        d = e.default
        row = (f"{e.name:<{width}}  {_fmt(e.settings['threshold'], '.2f'):>6}  {_fmt(d.recall):>6}  "
               f"{_fmt(d.false_rejection_rate):>6}  {d.false_alarms:>4}  {_fmt(d.false_alarms_per_hour, '.2f'):>7}")
        for t in targets:
            recall, threshold = e.at_targets[t]
            row += f"  {_fmt(recall):>15}  {_fmt(threshold, '.3f'):>6}"
        lines.append(row)
    if per_file:
        lines += ["", "per file, at each model's own threshold:"]
        fwidth = max(len("file"), *(len(f["file"]) for f in first.files)) if first.files else 4
        lines.append(f"{'model':<{width}}  {'file':<{fwidth}}  {'min':>6}  {'kw':>4}  {'hits':>4}  {'FA':>4}  {'FA/h':>7}")
        for e in evaluations:
            for f in e.files:
                lines.append(
                    f"{e.name:<{width}}  {f['file']:<{fwidth}}  {f['seconds'] / 60:6.1f}  {f['keywords']:>4}  "
                    f"{f['hits']:>4}  {f['false_alarms']:>4}  {_fmt(f['false_alarms_per_hour'], '.2f'):>7}"
                )
    if per_voice and first.voices:
        lines += ["", "per voice (recall; false alarms are not attributed to voices):"]
        vwidth = max(len("voice"), *(len(v["voice"]) for v in first.voices))
        header = f"{'model':<{width}}  {'voice':<{vwidth}}  {'kw':>4}  {'recall':>6}"
        header += "".join(f"  {f'@{t:g}FA/h':>8}" for t in targets)
        lines.append(header)
        for e in evaluations:
            for v in e.voices:
                row = f"{e.name:<{width}}  {v['voice']:<{vwidth}}  {v['keywords']:>4}  {_fmt(v['recall']):>6}"
                row += "".join(f"  {_fmt(v.get(f'recall_at_{t:g}_fa_per_hour', float('nan'))):>8}" for t in targets)
                lines.append(row)
    return "\n".join(lines)
