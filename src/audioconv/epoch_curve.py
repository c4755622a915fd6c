"""Recall on unseen engines after every epoch: does training longer help voices the model never heard?

A run picks ``best.ckpt`` by its validation loss, on voices of the engines it
trains on. Whether the epochs after the first few still help an engine it
never heard, or fit the training voices at its expense, that loss cannot say.
A cross-engine study trained with ``checkpoint.every_epoch=true`` keeps every
epoch's weights (``run/checkpoints/epochs/epochNN.ckpt``); this module scores
each of them on its fold's streams, exactly as the fold's best checkpoint is
scored (``cross_engine.evaluate_fold``), and gives per epoch:

- each fold's recall at <= 1 and <= 5 false alarms per hour (mean over the
  study's training seeds when it has several);
- the pooled recall at <= 1 FA/h (one threshold for every fold, as the shipped
  threshold is chosen), per seed and its mean;
- the mean validation loss (in-domain), for contrast.

Each fold's stream files are read once and scanned by all its epochs' models.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from audioconv import evaluate
from audioconv.cross_engine import SEED_TARGETS as TARGETS  # recall is quoted where a seed study quotes it
from audioconv.cross_engine import Fold, evaluate_on_streams, pooled_threshold
from audioconv.evaluate import ModelEvaluation

EPOCH_FILE = re.compile(r"^epoch(\d+)\.ckpt$")
SEED_FOLDER = re.compile(r"^seed(-?\d+)$")


class CurveError(ValueError):
    """A study folder that holds no per-epoch checkpoints to score (one line naming it)."""


def epoch_checkpoints(run_dir: Path) -> dict[int, Path]:
    """Epoch (counted from 1: after that many epochs) -> its checkpoint, from ``checkpoints/epochs/``."""
    folder = run_dir / "checkpoints" / "epochs"
    found = {}
    for path in folder.glob("epoch*.ckpt") if folder.is_dir() else ():
        match = EPOCH_FILE.match(path.name)
        if match:
            found[int(match.group(1)) + 1] = path  # Lightning counts epochs from 0
    return dict(sorted(found.items()))


def validation_losses(run_dir: Path) -> dict[int, float]:
    """Epoch (from 1) -> ``val/loss`` from the run's CSV log (empty when there is none)."""
    path = run_dir / "csv" / "metrics.csv"
    if not path.is_file():
        return {}
    losses = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("val/loss") and row.get("epoch"):
                losses[int(row["epoch"]) + 1] = float(row["val/loss"])
    return losses


def evaluate_epochs(fold: Fold, kept: Mapping[int, Path], threshold: float | None = None,
                    progress: Callable[[str], None] | None = None) -> dict[int, ModelEvaluation]:
    """The checkpoints ``kept`` (epoch -> path, as ``epoch_checkpoints`` gives them) scanned over ``fold``'s
    streams in one pass of its files."""
    from audioconv import checkpoints, detect

    models = {}
    for epoch, path in kept.items():
        model, info = checkpoints.load_detector(path)
        models[str(epoch)] = (model, detect.detection_settings(info, threshold))
    evaluations = evaluate_on_streams(models, fold.truth, targets=TARGETS, progress=progress)
    return {int(e.name): e for e in evaluations}


def seed_folders(study: Path) -> dict[str, Path]:
    """The study's runs: ``seed<N>/`` folders of a seed study, else the study itself (one run)."""
    seeds = {p.name: p for p in sorted(study.iterdir()) if p.is_dir() and SEED_FOLDER.match(p.name)}
    return seeds or {study.name: study}


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def summarize(per_seed: Mapping[str, Mapping[str, Mapping[int, ModelEvaluation]]],
              val_losses: Mapping[str, Mapping[str, Mapping[int, float]]] | None = None) -> dict[str, Any]:
    """The curve from each seed's folds' per-epoch evaluations (``seed -> engine -> epoch -> evaluation``).

    Every seed must hold the same folds and every fold the same epochs, so that
    each number of a row is over the same seeds and the pooled recall over the
    same folds (``CurveError`` names the first gap).
    """
    if not per_seed:
        raise CurveError("no seed to summarize")
    engines = sorted(next(iter(per_seed.values())))
    epochs = sorted({epoch for folds in per_seed.values() for by_epoch in folds.values() for epoch in by_epoch})
    for seed, folds in per_seed.items():
        if sorted(folds) != engines:
            raise CurveError(f"{seed} has folds {sorted(folds)}, another seed {engines}: a curve needs the same folds")
        for engine, by_epoch in folds.items():
            if sorted(by_epoch) != epochs:
                raise CurveError(f"{seed} {engine} kept epochs {sorted(by_epoch)}, not {epochs}")
    rows = []
    for epoch in epochs:
        row: dict[str, Any] = {"epoch": epoch, "folds": {}, "pooled": {}}
        for engine in engines:
            row["folds"][engine] = {}
            for target in TARGETS:
                values = [evaluate.recall_at(folds[engine][epoch].points, target)[0] for folds in per_seed.values()]
                row["folds"][engine][f"recall_at_{target:g}_fa_per_hour"] = {"seeds": values, "mean": _mean(values)}
        for target in TARGETS:
            seeds = {seed: pooled_threshold([folds[engine][epoch] for engine in engines], target)[1]
                     for seed, folds in per_seed.items()}
            row["pooled"][f"recall_at_{target:g}_fa_per_hour"] = {"seeds": seeds, "mean": _mean(list(seeds.values()))}
        losses = [by_epoch[epoch] for folds in (val_losses or {}).values() for by_epoch in folds.values()
                  if epoch in by_epoch]
        row["val_loss"] = _mean(losses)
        rows.append(row)
    return {"engines": engines, "seeds": list(per_seed), "targets": list(TARGETS), "epochs": rows}


def evaluated_round(folder: Path) -> int:
    """The mining round a fold's figures come from (``cross_engine.Fold.run_dir``): its last round, else 0."""
    fold, rounds = Fold(folder.name, folder), 0
    while fold.round_dir(rounds + 1).is_dir():  # rounds run one after another: run_mined1, run_mined2, ...
        rounds += 1
    return rounds


def study_folds(study: Path, engines: Sequence[str] | None = None) -> Iterator[tuple[str, Fold]]:
    """(seed, fold) for every fold with streams (or those in ``engines``) of every seed of a study folder.

    In a study with mining rounds each fold's last round is the one given: the
    run its figures come from. ``CurveError`` names an engine with no streams.
    """
    for seed, folder in seed_folders(study).items():
        with_streams = sorted(p.name for p in folder.iterdir() if (p / "streams" / "truth.csv").is_file())
        unknown = sorted(set(engines or ()) - set(with_streams))
        if unknown:
            raise CurveError(f"{folder}: no fold with streams named {', '.join(unknown)} (there are: {', '.join(with_streams)})")
        for engine in engines or with_streams:
            yield seed, Fold(engine, folder / engine, evaluated_round(folder / engine))


def study_curve(study: Path, engines: Sequence[str] | None = None, threshold: float | None = None,
                epochs: Sequence[int] | None = None, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Score every kept epoch (``epochs``: only these) of every fold (and seed) of a cross-engine study folder.

    The folds are those with streams (or ``engines``); in a study with mining
    rounds, each fold's last round is scored, the run its figures come from.
    Each epoch's model scans its fold's hour of streams (~10-30 s on 2 cores):
    a study of 2 seeds x 5 folds x 12 epochs takes 20-50 min, every other epoch half that.
    """
    per_seed: dict[str, dict[str, dict[int, ModelEvaluation]]] = {}
    losses: dict[str, dict[str, dict[int, float]]] = {}
    for seed, fold in study_folds(study, engines):
        kept = {e: path for e, path in epoch_checkpoints(fold.run_dir).items() if epochs is None or e in epochs}
        if not kept:
            which = f" of epochs {sorted(epochs)}" if epochs is not None else ""
            raise CurveError(f"{fold.run_dir}: no per-epoch checkpoints{which} "
                             "(train the study with checkpoint.every_epoch=true)")
        progress(f"[{seed} {fold.engine}] scoring {len(kept)} epochs of {fold.run_dir.name} on its streams")
        per_seed.setdefault(seed, {})[fold.engine] = evaluate_epochs(fold, kept, threshold)
        losses.setdefault(seed, {})[fold.engine] = validation_losses(fold.run_dir)
    if not per_seed:
        raise CurveError(f"{study}: no fold with streams (is it a cross-engine study folder?)")
    return summarize(per_seed, losses)


def _cell(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.3f}"


def format_curve(curve: Mapping[str, Any]) -> str:
    """Markdown: per epoch, each fold's recall at <= 1 FA/h, the pooled recall at <= 1 and <= 5, the val loss."""
    engines, seeds = curve["engines"], curve["seeds"]
    over = f"mean of {len(seeds)} seeds" if len(seeds) > 1 else "one run"
    header = ["epoch", *engines, "pooled @ ≤ 1 FA/h", "pooled @ ≤ 5 FA/h", "val loss (in-domain)"]
    lines = [f"Recall on the held-out engines' streams after each epoch ({over}): each fold at ≤ 1 FA/h, "
             f"then all {len(engines)} folds pooled (one threshold) at ≤ 1 and ≤ 5 FA/h; per-fold ≤ 5 in the JSON.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in curve["epochs"]:
        cells = [str(row["epoch"])]
        cells += [_cell(row["folds"][engine]["recall_at_1_fa_per_hour"]["mean"]) for engine in engines]
        cells += [_cell(row["pooled"][f"recall_at_{t:g}_fa_per_hour"]["mean"]) for t in TARGETS]
        cells.append(_cell(row["val_loss"]))
        lines.append("| " + " | ".join(cells) + " |")
    if len(seeds) > 1:
        lines += ["", "Pooled recall at ≤ 1 FA/h per seed:", "",
                  "| epoch | " + " | ".join(seeds) + " |", "|" + "---|" * (len(seeds) + 1)]
        for row in curve["epochs"]:
            values = row["pooled"]["recall_at_1_fa_per_hour"]["seeds"]
            lines.append(f"| {row['epoch']} | " + " | ".join(_cell(values.get(s, float("nan"))) for s in seeds) + " |")
    return "\n".join(lines) + "\n"
