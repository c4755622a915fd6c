"""How much a detector's recall on unseen voices depends on their vocal-tract length.

A cross-engine study scores each fold's model on the streams of an engine it
never heard. This module scores them again with the model's mel filterbank
warped by fixed factors (``features.warp_filterbank``, the VTLP warp): factor
``w`` shows the model every voice with its formants and pitch multiplied by
``w`` (< 1: a longer vocal tract, a lower voice). Nothing is retrained.

If the model recognised the keyword whatever the speaker's vocal tract, recall
would be flat across small factors. Where a voice's recall rises at some factor
away from 1, the model's "comfortable" voices lie there: the gap on that voice
is partly a vocal-tract mismatch, which speaker normalization (VTLN) or VTLP
training (``model.warp_prob``) address. ``PitchGate`` tries the first without
retraining: each frame scored at the warp its voice's pitch suggests. Per
factor (and for the gate) it gives:

- each fold's recall at <= 1 and <= 5 false alarms per hour (mean over the
  study's training seeds), and the pooled recall (one threshold for every fold);
- each voice's recall at <= 5 FA/h at its fold's threshold, for voices with at
  least ``min_keywords`` keywords (espeak-ng's hundreds of voices have a few
  each: they show only in their fold's row).

Each stream file is read once and scanned by all the warped copies of a model.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from audioconv import evaluate
from audioconv.cross_engine import SEED_TARGETS as TARGETS
from audioconv.cross_engine import Fold, pooled_threshold
from audioconv.epoch_curve import _cell, study_folds  # one number formatting for both tables
from audioconv.evaluate import ModelEvaluation
from audioconv.models import pitch_gate

DEFAULT_FACTORS = (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2)
BUILT_IN = "built-in"  # the column of the model wrapped in ``models.PitchGated``: the gate as it would ship
COLUMNS = ("gate", BUILT_IN)  # columns after the fixed factors, in this order


class ProbeError(ValueError):
    """A study or model the probe cannot score (one line naming it)."""


def warped_copy(model: torch.nn.Module, factor: float) -> torch.nn.Module:
    """A copy of a spectrogram detector that hears every voice with its frequencies multiplied by ``factor``."""
    try:
        return pitch_gate.warped_copy(model, factor).eval()
    except ValueError as error:
        raise ProbeError(f"{type(model).__name__}: the warp probe needs a mel front end (a spectrogram model)") from error


@dataclass(frozen=True)
class PitchGate:
    """Speaker normalization from pitch (VTLN without retraining): each frame's warp from the voice it hears.

    Frame ``i`` takes the median F0 of the voiced pitch frames in the last
    ``window_seconds`` before the end of its receptive field, and the warp
    ``(f0 / reference_hz) ** -exponent`` (a high voice lowered, a low one
    raised), clipped to the probed factors and rounded to the nearest; with no
    voiced frame it takes the factor nearest 1. An exponent of about 0.3 is the
    ratio of formant to pitch differences between adult voices (formants differ
    by ~15-20 %, pitch by ~70-100 %).
    """

    reference_hz: float = 130.0
    exponent: float = 0.3
    window_seconds: float = 3.0


PITCH_RATE = 8_000  # pitch is tracked at 8 kHz: F0 needs no more, and pYIN costs a quarter as much
PITCH_HOP = 320  # 40 ms


def pitch_track(wave: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(frame end times in seconds, F0 in Hz with NaN where unvoiced) by pYIN (librosa), 60-450 Hz."""
    import librosa

    narrow = librosa.resample(wave, orig_sr=sample_rate, target_sr=PITCH_RATE)
    length = 512
    if narrow.size < length:
        return np.zeros(0), np.zeros(0)
    f0, _, _ = librosa.pyin(narrow, fmin=60, fmax=450, sr=PITCH_RATE, frame_length=length, hop_length=PITCH_HOP,
                            center=False)
    ends = (np.arange(f0.size) * PITCH_HOP + length) / PITCH_RATE
    return ends, f0


def gate_factors(frames: int, hop_seconds: float, field_seconds: float, ends: np.ndarray, f0: np.ndarray,
                 factors: Sequence[float], gate: PitchGate) -> np.ndarray:
    """The warp factor of each of ``frames`` score frames (``PitchGate``), one of ``factors``."""
    grid = np.asarray(sorted(factors), dtype=float)
    voiced = np.isfinite(f0)
    times, pitches = ends[voiced], f0[voiced]
    frame_ends = np.arange(frames) * hop_seconds + field_seconds
    first = np.searchsorted(times, frame_ends - gate.window_seconds, side="left")
    last = np.searchsorted(times, frame_ends, side="right")
    chosen = np.full(frames, grid[np.argmin(np.abs(grid - 1.0))])
    for i in range(frames):
        if last[i] > first[i]:
            warp = (np.median(pitches[first[i]:last[i]]) / gate.reference_hz) ** -gate.exponent
            warp = np.clip(warp, grid[0], grid[-1])
            chosen[i] = grid[np.argmin(np.abs(grid - warp))]
    return chosen


def probe_fold(fold: Fold, factors: Sequence[float], gate: PitchGate | None = None,
               progress: Callable[[str], None] | None = None,
               pitches: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
               built_in: Mapping[str, Any] | None = None,
               gates_used: list[dict[str, Any]] | None = None,
               truth_csv: Path | None = None) -> dict[Any, ModelEvaluation]:
    """The fold's model under each warp ``factor`` (and, with ``gate``, under the pitch-chosen warp per frame;
    with ``built_in``, the settings of a ``PitchGated`` detector, as that detector: what is not given comes
    from the rule the model trained in, ``pitch_gate.trained_rule``), over the fold's streams: each file read
    once, scanned once per factor. ``pitches``: pitch tracks by the audio's digest, filled and reused (a seed
    study's seeds share their streams); ``gates_used``: the built-in gate's full settings are appended;
    ``truth_csv``: other streams than the fold's own to score on."""
    from audioconv import audio, checkpoints, detect, scan, streams

    model, info = checkpoints.load_detector(fold.checkpoint)
    settings = detect.detection_settings(info)
    copies: dict[Any, torch.nn.Module] = {factor: warped_copy(model, factor) for factor in factors}
    if built_in is not None:
        gate_settings = {**pitch_gate.trained_rule(model).settings, **built_in}  # factors: the model's own unless given
        copies[BUILT_IN] = pitch_gate.PitchGated(model, **gate_settings).eval()
        if gates_used is not None:
            gates_used.append(copies[BUILT_IN].settings)
    truth_csv = truth_csv or fold.truth
    truth = streams.read_truth(truth_csv)
    scored: dict[Any, list[evaluate.ScoredFile]] = {key: [] for key in [*copies, *(["gate"] if gate else [])]}
    pitches = pitches if pitches is not None else {}
    for key, path in streams.truth_paths(truth_csv, list(truth)).items():
        wave = audio.load(path, sample_rate=model.sample_rate, min_samples=model.receptive_field)
        seconds = wave.size / model.sample_rate
        per_factor = {factor: scan.scan_chunked(copy_, wave) for factor, copy_ in copies.items()}
        for factor, probabilities in per_factor.items():
            scored[factor].append(evaluate.ScoredFile(key, seconds, probabilities))
        if gate is not None:
            digest = hashlib.sha1(wave.tobytes()).hexdigest()
            if digest not in pitches:
                pitches[digest] = pitch_track(wave, model.sample_rate)
            ends, f0 = pitches[digest]
            frames = per_factor[factors[0]].size
            chosen = gate_factors(frames, model.hop / model.sample_rate, model.receptive_field / model.sample_rate,
                                  ends, f0, factors, gate)
            gated = np.empty(frames, dtype=np.float32)
            for factor in np.unique(chosen):
                gated[chosen == factor] = per_factor[float(factor)][chosen == factor]
            scored["gate"].append(evaluate.ScoredFile(key, seconds, gated))
        if progress is not None:
            progress(f"scanned {key} ({seconds / 60:.1f} min) under {len(factors)} warps")
    return {name: evaluate.summarize_model(str(name), model, settings, files, truth, targets=TARGETS)
            for name, files in scored.items()}


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _label(factor: Any) -> str:
    return {"gate": "F0 gate", BUILT_IN: "built-in gate"}.get(factor) or f"{factor:g}"


def summarize(per_seed: Mapping[str, Mapping[str, Mapping[Any, ModelEvaluation]]],
              min_keywords: int = 10) -> dict[str, Any]:
    """Per factor (then the pitch gate, if probed): fold and pooled recall (mean over seeds), per-voice recall
    at <= 5 FA/h."""
    engines = sorted(next(iter(per_seed.values())))
    keys = {f for folds in per_seed.values() for by_factor in folds.values() for f in by_factor}
    factors = sorted(k for k in keys if k not in COLUMNS) + [k for k in COLUMNS if k in keys]
    rows = []
    for factor in factors:
        row: dict[str, Any] = {"factor": factor, "label": _label(factor), "folds": {}, "pooled": {}, "voices": {}}
        for engine in engines:
            row["folds"][engine] = {
                f"recall_at_{t:g}_fa_per_hour": _mean([evaluate.recall_at(folds[engine][factor].points, t)[0]
                                                       for folds in per_seed.values()])
                for t in TARGETS}
        for t in TARGETS:
            pooled = {seed: pooled_threshold([folds[e][factor] for e in engines], t) for seed, folds in per_seed.items()}
            seeds = {seed: recall for seed, (_, recall) in pooled.items()}
            row["pooled"][f"recall_at_{t:g}_fa_per_hour"] = {
                "seeds": seeds, "mean": _mean(list(seeds.values())),
                "thresholds": {seed: threshold for seed, (threshold, _) in pooled.items()}}
        voices: dict[str, list[float]] = {}
        for folds in per_seed.values():
            for engine in engines:
                for voice in folds[engine][factor].voices:
                    if voice["keywords"] >= min_keywords:
                        voices.setdefault(voice["voice"], []).append(voice.get("recall_at_5_fa_per_hour", float("nan")))
        row["voices"] = {voice: _mean(values) for voice, values in sorted(voices.items())}
        rows.append(row)
    return {"engines": engines, "seeds": list(per_seed), "factors": factors, "rows": rows}


def study_warps(study: Path, factors: Sequence[float] = DEFAULT_FACTORS, engines: Sequence[str] | None = None,
                min_keywords: int = 10, gate: PitchGate | None = None,
                progress: Callable[[str], None] = print,
                built_in: Mapping[str, Any] | None = None, streams_root: Path | None = None) -> dict[str, Any]:
    """Score every fold (and seed) of a cross-engine study folder under each warp factor (and the pitch gate;
    and, with ``built_in`` settings, the model wrapped in ``models.PitchGated``). ``streams_root``: score
    each fold on ``streams_root/<engine>/streams/truth.csv`` (``cross_engine.py --streams-only``) instead of
    its own streams.

    A fold's streams take ~1 s per factor to scan on 2 cores; the gate's pitch
    tracking ~1.5 min per hour of audio.
    """
    if not factors or any(not f > 0 for f in factors):
        raise ProbeError(f"warp factors must be positive, got {list(factors)}")
    per_seed: dict[str, dict[str, dict[float, ModelEvaluation]]] = {}
    pitches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    gates_used: list[dict[str, Any]] = []
    for seed, fold in study_folds(study, engines):
        if not fold.checkpoint.is_file():
            raise ProbeError(f"{fold.checkpoint}: no checkpoint (is the fold trained?)")
        progress(f"[{seed} {fold.engine}] scoring {fold.checkpoint} under {len(factors)} warps"
                 + (" and the pitch gate" if gate else "") + (" and the built-in gate" if built_in else ""))
        truth_csv = None
        if streams_root is not None:
            truth_csv = Fold(fold.engine, streams_root / fold.engine).truth
            if not truth_csv.is_file():
                raise ProbeError(f"{truth_csv}: no streams for fold {fold.engine} (cross_engine.py --streams-only)")
        per_seed.setdefault(seed, {})[fold.engine] = probe_fold(fold, sorted(factors), gate, pitches=pitches,
                                                                built_in=built_in, gates_used=gates_used,
                                                                truth_csv=truth_csv)
    if not per_seed:
        raise ProbeError(f"{study}: no fold with streams (is it a cross-engine study folder?)")
    probe = summarize(per_seed, min_keywords)
    probe["gate"] = asdict(gate) if gate else None
    probe["streams"] = str(streams_root) if streams_root is not None else None
    if any(used != gates_used[0] for used in gates_used):
        raise ProbeError(f"{study}: the folds' built-in gates differ (models trained with other pitch_warp_factors?)")
    probe["built_in"] = gates_used[0] if built_in is not None else None
    return probe


def format_probe(probe: Mapping[str, Any]) -> str:
    """Markdown: folds and pooled recall per warp factor, then each voice's recall at <= 5 FA/h per factor."""
    engines, factors, rows = probe["engines"], probe["factors"], probe["rows"]
    over = f"mean of {len(probe['seeds'])} seeds" if len(probe["seeds"]) > 1 else "one run"
    head = "| " + " | ".join(r["label"] for r in rows) + " |"
    rule = "|---|" + "---|" * len(factors)
    gate = probe.get("gate")
    gated = (f"; F0 gate: each frame's warp from the pitch of the last {gate['window_seconds']:g} s, "
             f"(F0 / {gate['reference_hz']:g} Hz)^-{gate['exponent']:g}" if gate else "")
    built_in = probe.get("built_in")
    if built_in is not None:
        gated += (f"; built-in gate: models.PitchGated, factors {', '.join(f'{f:g}' for f in built_in['factors'])}, "
                  f"F0 from each frame's own receptive field, (F0 / {built_in['reference_hz']:g} Hz)"
                  f"^-{built_in['exponent']:g}")
    lines = [f"Recall on the held-out engines' streams with the mel filterbank warped by each factor ({over}; "
             f"< 1: every voice lower, > 1: higher; 1 is the model as trained{gated})."
             + (f" Streams: {probe['streams']}/<engine>/streams, not the folds' own." if probe.get("streams") else ""),
             "",
             "| recall @ ≤ 1 FA/h " + head, rule]
    for engine in engines:
        lines.append(f"| {engine} | " + " | ".join(_cell(r["folds"][engine]["recall_at_1_fa_per_hour"]) for r in rows) + " |")
    for t in TARGETS:
        lines.append(f"| **pooled @ ≤ {t:g} FA/h** | "
                     + " | ".join(_cell(r["pooled"][f"recall_at_{t:g}_fa_per_hour"]["mean"]) for r in rows) + " |")
    voices = sorted({v for r in rows for v in r["voices"]})
    if voices:
        lines += ["", "Per voice, recall at ≤ 5 FA/h (its fold's threshold); best fixed factor last:", "",
                  "| voice " + head + " best |", rule + "---|"]
        for voice in voices:
            values = [r["voices"].get(voice, float("nan")) for r in rows]
            fixed = [v for r, v in zip(rows, values) if r["factor"] not in COLUMNS]
            best = rows[int(np.nanargmax(fixed))]["label"] if np.isfinite(fixed).any() else ""
            lines.append(f"| {voice} | " + " | ".join(_cell(v) for v in values) + f" | {best} |")
    return "\n".join(lines) + "\n"
