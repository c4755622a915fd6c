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
    """Two seeds of two folds, two epochs each: every epoch's recall is that checkpoint's own evaluation on its
    fold's streams; the mean is over the seeds; pooled is the two folds under one threshold; the val loss is the
    logs' mean."""
    rng = np.random.default_rng(0)
    wave = (0.05 * rng.standard_normal(40 * 16_000)).astype(np.float32)
    truth = {"stream_000.flac": [streams.Keyword(5.0, 5.8, "x:a"), streams.Keyword(20.0, 20.7, "x:b")]}
    study = tmp_path / "study"
    for seed_index, seed in enumerate(("seed1", "seed2")):
        for fold_index, engine in enumerate(("kokoro", "pico")):
            first = 1 + 4 * seed_index + 2 * fold_index
            _fold_with_epochs(study / seed / engine, [first, first + 1], wave, truth, [0.9 - 0.2 * seed_index, 0.5])
    (study / "ensemble").mkdir()  # a seed study's other folder: not a seed

    curve = epoch_curve.study_curve(study, progress=lambda _: None)

    assert curve["engines"] == ["kokoro", "pico"] and curve["seeds"] == ["seed1", "seed2"]
    assert [row["epoch"] for row in curve["epochs"]] == [1, 2]
    from audioconv import checkpoints, detect
    for row in curve["epochs"]:
        alone = {}  # (seed, engine) -> the checkpoint evaluated by itself, as cross_engine evaluates a fold
        for seed in ("seed1", "seed2"):
            for engine in ("kokoro", "pico"):
                fold = study / seed / engine
                model, info = checkpoints.load_detector(fold / "run" / "checkpoints" / "epochs" / f"epoch{row['epoch'] - 1:02d}.ckpt")
                alone[seed, engine] = cross_engine._evaluate_on_streams(  # noqa: SLF001
                    engine, model, detect.detection_settings(info, None), fold / "streams" / "truth.csv")
        for target in epoch_curve.TARGETS:
            key = f"recall_at_{target:g}_fa_per_hour"
            for engine in ("kokoro", "pico"):
                expected = [evaluate.recall_at(alone[seed, engine].points, target)[0] for seed in ("seed1", "seed2")]
                assert row["folds"][engine][key]["seeds"] == pytest.approx(expected)
                assert row["folds"][engine][key]["mean"] == pytest.approx(np.mean(expected))
            pooled = [cross_engine.pooled_threshold([alone[seed, "kokoro"], alone[seed, "pico"]], target)[1]
                      for seed in ("seed1", "seed2")]
            assert list(row["pooled"][key]["seeds"].values()) == pytest.approx(pooled)
            assert row["pooled"][key]["mean"] == pytest.approx(np.mean(pooled))
    assert [row["val_loss"] for row in curve["epochs"]] == pytest.approx([0.8, 0.5])
    second_only = epoch_curve.study_curve(study, epochs=[2], progress=lambda _: None)
    assert [row["epoch"] for row in second_only["epochs"]] == [2]
    assert second_only["epochs"][0]["folds"] == curve["epochs"][1]["folds"]
    table = epoch_curve.format_curve(curve)
    assert "(mean of 2 seeds)" in table and "all 2 folds pooled" in table
    assert "| epoch | kokoro | pico | pooled @ ≤ 1 FA/h | pooled @ ≤ 5 FA/h | val loss (in-domain) |" in table
    assert "| 2 |" in table and "| epoch | seed1 | seed2 |" in table

    with pytest.raises(epoch_curve.CurveError, match=r"epochs \[7\]"):
        epoch_curve.study_curve(study, epochs=[7], progress=lambda _: None)
    with pytest.raises(epoch_curve.CurveError, match="named piper"):
        epoch_curve.study_curve(study, engines=["pico", "piper"], progress=lambda _: None)
    for old in (study / "seed2" / "pico" / "run" / "checkpoints" / "epochs").glob("*.ckpt"):
        old.unlink()  # a fold trained before checkpoint.every_epoch existed
    with pytest.raises(epoch_curve.CurveError, match="seed2/pico/run: no per-epoch checkpoints"):
        epoch_curve.study_curve(study, progress=lambda _: None)


def test_a_mined_fold_is_scored_on_its_last_round(tmp_path):
    """cross_engine scores a fold's last mining round (run_minedN): so does the curve."""
    (tmp_path / "run_mined1").mkdir()
    (tmp_path / "run_mined2").mkdir()
    (tmp_path / "run_minedX").mkdir()
    assert epoch_curve.evaluated_round(tmp_path) == 2
    assert epoch_curve.evaluated_round(tmp_path / "nowhere") == 0


def fake_evaluation(points: list[tuple[float, int, int]], keywords: int = 10, hours: float = 1.0) -> ModelEvaluation:
    swept = [OperatingPoint(t, h, keywords, f, hours) for t, h, f in points]
    return ModelEvaluation("m", {"threshold": 0.5}, 0.05, hours, swept[0], swept, {})


def test_pooled_recall_is_each_seeds_folds_under_one_threshold_and_gaps_are_refused():
    good = fake_evaluation([(0.5, 8, 3), (0.9, 6, 1), (0.99, 2, 0)])
    poor = fake_evaluation([(0.5, 4, 5), (0.9, 2, 2), (0.99, 1, 0)])
    per_seed = {"seed1": {"a": {1: good, 2: good}, "b": {1: poor, 2: poor}},
                "seed2": {"a": {1: poor, 2: poor}, "b": {1: good, 2: good}}}
    first, _ = epoch_curve.summarize(per_seed)["epochs"]
    assert first["folds"]["a"]["recall_at_1_fa_per_hour"]["seeds"] == [0.6, 0.1]
    # pooled at <= 1 FA/h over 2 h: up to 2 false alarms; at 0.9 there are 1 + 2 = 3, so 0.99: (2 + 1) / 20
    assert first["pooled"]["recall_at_1_fa_per_hour"]["seeds"] == {"seed1": 0.15, "seed2": 0.15}
    # at <= 5 FA/h (10 over 2 h): 0.5 has 3 + 5 = 8 alarms, so (8 + 4) / 20
    assert first["pooled"]["recall_at_5_fa_per_hour"]["seeds"] == {"seed1": 0.6, "seed2": 0.6}
    assert np.isnan(first["val_loss"])  # no logs given
    del per_seed["seed2"]["b"][2]  # a gap: the row's numbers would be over different seeds
    with pytest.raises(epoch_curve.CurveError, match=r"seed2 b kept epochs \[1\], not \[1, 2\]"):
        epoch_curve.summarize(per_seed)
    del per_seed["seed2"]["b"]
    with pytest.raises(epoch_curve.CurveError, match="the same folds"):
        epoch_curve.summarize(per_seed)


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
    json_out = subprocess.run([sys.executable, str(ROOT / "scripts" / "epoch_curve.py"), str(tmp_path / "study"),
                               "--out", str(tmp_path / "epochs.json")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert json_out.returncode == 2 and "name it .md" in json_out.stderr
