"""Recall on unseen engines after every epoch: per-epoch checkpoints scored on their fold's streams."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from audioconv import cross_engine, epoch_curve, evaluate, streams
from audioconv.evaluate import ModelEvaluation, OperatingPoint
from audioconv.models import SpectrogramDetector
from scanning_helpers import make_model, one_thread  # noqa: F401 - one_thread is an autouse fixture

ROOT = Path(__file__).resolve().parent.parent
CONFIG = {"_target_": "audioconv.models.SpectrogramDetector", "conv2d_channels": [4, 8], "channels": 16}


def _fold_with_epochs(folder: Path, model_seeds: list[int], wave: np.ndarray, truth: dict, val_losses: list[float]) -> None:
    """A fold as a study with ``checkpoint.every_epoch=true`` leaves it: one checkpoint per epoch (seeded random
    weights), the CSV log's validation losses, and the fold's streams."""
    epochs = folder / "run" / "checkpoints" / "epochs"
    epochs.mkdir(parents=True)
    for epoch, model_seed in enumerate(model_seeds):
        model = make_model(SpectrogramDetector, seed=model_seed, conv2d_channels=[4, 8], channels=16)
        torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                    "hyper_parameters": {"model_config": CONFIG}}, epochs / f"epoch{epoch:02d}.ckpt")
    (epochs / "notes.txt").write_text("not a checkpoint")
    log = folder / "run" / "csv"
    log.mkdir(parents=True)
    rows = ["epoch,step,train/loss_epoch,val/loss"]
    for epoch, loss in enumerate(val_losses):
        rows += [f"{epoch},{10 * epoch + 9},0.5,", f"{epoch},{10 * epoch + 9},,{loss}"]  # Lightning logs them apart
    (log / "metrics.csv").write_text("\n".join(rows) + "\n")
    streams.save_stream(folder / "streams" / "stream_000.flac", wave)
    streams.write_truth(folder / "streams" / "truth.csv", truth)


def test_each_epoch_is_scored_as_its_checkpoint_would_be_alone(tmp_path):
    """Two seeds of one fold, two epochs each: every epoch's recall is that checkpoint's own evaluation on the
    fold's streams; the mean is over the seeds; one fold pooled is that fold; the val loss is the log's mean."""
    rng = np.random.default_rng(0)
    wave = (0.05 * rng.standard_normal(40 * 16_000)).astype(np.float32)
    truth = {"stream_000.flac": [streams.Keyword(5.0, 5.8, "pico:a"), streams.Keyword(20.0, 20.7, "pico:b")]}
    study = tmp_path / "study"
    _fold_with_epochs(study / "seed1" / "pico", [1, 2], wave, truth, [0.9, 0.5])
    _fold_with_epochs(study / "seed2" / "pico", [3, 4], wave, truth, [0.7, 0.3])
    (study / "ensemble").mkdir()  # a seed study's other folder: not a seed

    curve = epoch_curve.study_curve(study, progress=lambda _: None)

    assert curve["engines"] == ["pico"] and curve["seeds"] == ["seed1", "seed2"]
    assert [row["epoch"] for row in curve["epochs"]] == [1, 2]
    from audioconv import checkpoints, detect
    for row, seeds in zip(curve["epochs"], ([1, 3], [2, 4])):
        alone = []
        for folder, epoch in zip(("seed1", "seed2"), (row["epoch"],) * 2):
            path = study / folder / "pico" / "run" / "checkpoints" / "epochs" / f"epoch{epoch - 1:02d}.ckpt"
            model, info = checkpoints.load_detector(path)
            alone.append(cross_engine._evaluate_on_streams(  # noqa: SLF001
                "x", model, detect.detection_settings(info, None), study / folder / "pico" / "streams" / "truth.csv"))
        for target in epoch_curve.TARGETS:
            cell = row["folds"]["pico"][f"recall_at_{target:g}_fa_per_hour"]
            expected = [evaluate.recall_at(e.points, target)[0] for e in alone]
            assert cell["seeds"] == pytest.approx(expected) and cell["mean"] == pytest.approx(np.mean(expected))
            pooled = row["pooled"][f"recall_at_{target:g}_fa_per_hour"]
            assert list(pooled["seeds"].values()) == pytest.approx(
                [cross_engine.pooled_threshold([e], target)[1] for e in alone])
    assert [row["val_loss"] for row in curve["epochs"]] == pytest.approx([0.8, 0.4])
    second_only = epoch_curve.study_curve(study, epochs=[2], progress=lambda _: None)
    assert [row["epoch"] for row in second_only["epochs"]] == [2]
    assert second_only["epochs"][0]["folds"] == curve["epochs"][1]["folds"]
    with pytest.raises(epoch_curve.CurveError, match="epochs \\[7\\]"):
        epoch_curve.study_curve(study, epochs=[7], progress=lambda _: None)
    table = epoch_curve.format_curve(curve)
    assert "| epoch | pico | pooled @ ≤ 1 FA/h | pooled @ ≤ 5 FA/h | val loss (in-domain) |" in table
    assert "| 2 |" in table and "seed1 | seed2" in table


def fake_evaluation(points: list[tuple[float, int, int]], keywords: int = 10, hours: float = 1.0) -> ModelEvaluation:
    swept = [OperatingPoint(t, h, keywords, f, hours) for t, h, f in points]
    return ModelEvaluation("m", {"threshold": 0.5}, 0.05, hours, swept[0], swept, {})


def test_pooled_recall_only_from_seeds_that_kept_every_folds_epoch():
    good = fake_evaluation([(0.5, 8, 3), (0.9, 6, 1), (0.99, 2, 0)])
    poor = fake_evaluation([(0.5, 4, 5), (0.9, 2, 2), (0.99, 1, 0)])
    per_seed = {"seed1": {"a": {1: good, 2: good}, "b": {1: poor, 2: poor}},
                "seed2": {"a": {1: poor, 2: poor}, "b": {1: good}}}  # seed2 lost fold b's second epoch
    curve = epoch_curve.summarize(per_seed)
    first, second = curve["epochs"]
    assert first["folds"]["a"]["recall_at_1_fa_per_hour"]["seeds"] == [0.6, 0.1]
    assert second["folds"]["b"]["recall_at_1_fa_per_hour"]["seeds"] == [0.1]  # only seed1 has it
    # pooled at <= 1 FA/h over 2 h: up to 2 false alarms; seed1 at 0.9 has 1 + 2 = 3, so 0.99: (2 + 1) / 20
    assert first["pooled"]["recall_at_1_fa_per_hour"]["seeds"] == {"seed1": 0.15, "seed2": 0.15}
    assert second["pooled"]["recall_at_1_fa_per_hour"]["seeds"] == {"seed1": 0.15}
    assert np.isnan(first["val_loss"])  # no logs given


def test_epoch_checkpoints_are_numbered_from_one_and_other_files_ignored(tmp_path):
    folder = tmp_path / "run" / "checkpoints" / "epochs"
    folder.mkdir(parents=True)
    for name in ("epoch10.ckpt", "epoch00.ckpt", "epoch01.ckpt", "epoch1.tmp", "last.ckpt"):
        (folder / name).write_bytes(b"")
    assert list(epoch_curve.epoch_checkpoints(tmp_path / "run")) == [1, 2, 11]
    assert epoch_curve.epoch_checkpoints(tmp_path / "elsewhere") == {}


def test_script_says_in_one_line_when_a_study_kept_no_epochs(tmp_path):
    (tmp_path / "study" / "pico" / "streams").mkdir(parents=True)
    (tmp_path / "study" / "pico" / "streams" / "truth.csv").write_text("file,start,end,voice,text\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "epoch_curve.py"), str(tmp_path / "study")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "checkpoint.every_epoch=true" in done.stderr
    missing = subprocess.run([sys.executable, str(ROOT / "scripts" / "epoch_curve.py"), str(tmp_path / "nowhere")],
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert missing.returncode == 2 and "not a folder" in missing.stderr
