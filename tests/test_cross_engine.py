"""Cross-engine validation: one tiny fold end to end, and the pooled threshold."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audioconv import cross_engine, streams
from audioconv.corpus.engines import ENGINES
from audioconv.evaluate import ModelEvaluation, OperatingPoint
from audioconv.models import SpectrogramDetector

ROOT = Path(__file__).resolve().parent.parent


def test_one_fold_end_to_end(tmp_path):
    """Hold out pico on the tiny config: the fold trains without it, mines its own training negatives once,
    fine-tunes on them, and is scored on pico voices only."""
    if ENGINES["pico"].unavailable():
        pytest.skip(ENGINES["pico"].unavailable())
    out = tmp_path / "xe"
    command = [sys.executable, str(ROOT / "scripts" / "cross_engine.py"), "--engines", "pico", "--count", "1",
               "--minutes", "0.4", "--out", str(out), "--mine-rounds", "1", "--mine-hours", "0.02",
               "--mine-threshold", "0", "--mine-epochs", "1", "--", "experiment=tiny", "trainer.max_epochs=1",
               "torch_threads=1"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((out / cross_engine.RESULTS_FILE).read_text())
    (fold,) = result["folds"]
    assert fold["engine"] == "pico" and fold["keywords"] >= 1
    assert 0.0 <= fold["recall_at_1_fa_per_hour"] <= 1.0
    assert {v["voice"].split(":")[0] for v in fold["voices"]} == {"pico"}
    truth = streams.read_truth(out / "pico" / "streams" / "truth.csv")
    assert {k.voice.split(":")[0] for keywords in truth.values() for k in keywords} == {"pico"}
    metrics = json.loads((out / "pico" / "run" / "metrics.json").read_text())["metrics"]
    assert "heldout/auroc" in metrics  # the run saw pico as its held-out split, not in training
    assert result["mining"]["rounds"] == 1
    mined = (out / "pico" / "mined" / "mined.csv").read_text().splitlines()
    assert len(mined) >= 2  # a header and at least one window (threshold 0 fires on anything)
    tuned = json.loads((out / "pico" / "run_mined1" / "metrics.json").read_text())
    assert tuned["epochs"] >= 1 and tuned["best_checkpoint"].startswith(str(out / "pico" / "run_mined1"))
    sources = fold["false_alarm_sources"]
    assert sum(sources["by_kind"].values()) == sources["counted"] <= 100
    said = streams.read_said(out / "pico" / "streams" / "said.csv")
    assert {u.voice.split(":")[0] for u in said["stream_000.flac"]} == {"pico"}
    assert "| pico |" in done.stdout and (out / cross_engine.TABLE_FILE).read_text() in done.stdout


def test_streams_only_composes_phone_band_streams_and_trains_nothing(tmp_path):
    """--streams-only --narrowband 1: the fold's streams of its held-out voices, no run; run again, kept."""
    if ENGINES["pico"].unavailable():
        pytest.skip(ENGINES["pico"].unavailable())
    out = tmp_path / "phone"
    command = [sys.executable, str(ROOT / "scripts" / "cross_engine.py"), "--engines", "pico", "--count", "1",
               "--minutes", "0.3", "--out", str(out), "--streams-only", "--narrowband", "1", "--", "experiment=tiny"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    truth = out / "pico" / "streams" / "truth.csv"
    assert done.stdout.strip() == str(truth) and not (out / "pico" / "run").exists()
    said = streams.read_said(out / "pico" / "streams" / "said.csv")
    assert {u.voice.split(":")[0] for u in said["stream_000.flac"]} == {"pico"}
    before = (out / "pico" / "streams" / "stream_000.flac").read_bytes()
    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 0 and (out / "pico" / "streams" / "stream_000.flac").read_bytes() == before
    refused = subprocess.run([*command[:2], "--streams-only", "--training-seeds", "1", "2"], capture_output=True,
                             text=True, cwd=ROOT, timeout=60)
    assert refused.returncode == 2 and "--streams-only" in refused.stderr


def fake_evaluation(points: list[tuple[float, int, int]], keywords: int, hours: float) -> ModelEvaluation:
    swept = [OperatingPoint(t, h, keywords, f, hours) for t, h, f in points]
    return ModelEvaluation("m", {"threshold": 0.5}, 0.05, hours, swept[0], swept, {})


def test_pooled_threshold_keeps_all_folds_within_the_target():
    # fold a: at 0.2 -> 9 hits 5 alarms, at 0.6 -> 8 hits 1 alarm, at 0.9 -> 5 hits 0 alarms (1 h)
    a = fake_evaluation([(0.2, 9, 5), (0.6, 8, 1), (0.9, 5, 0), (0.95, 0, 0)], keywords=10, hours=1.0)
    # fold b: at 0.3 -> 4 hits 3 alarms, at 0.7 -> 3 hits 0 alarms (1 h)
    b = fake_evaluation([(0.3, 4, 3), (0.7, 3, 0), (0.8, 0, 0)], keywords=5, hours=1.0)
    threshold, recall = cross_engine.pooled_threshold([a, b], max_false_alarms_per_hour=1.0)
    # 0.6: a 1 alarm + b (first point >= 0.6 is 0.7) 0 alarms = 1 alarm in 2 h -> allowed; 0.3: 1+... no
    assert threshold == 0.6
    assert recall == pytest.approx((8 + 3) / 15)
    strict, _ = cross_engine.pooled_threshold([a, b], max_false_alarms_per_hour=0.0)
    assert strict == 0.7  # a: 5 hits 0 alarms at 0.9 (first point >= 0.7); b: 0 alarms


def test_false_alarm_sources_name_what_was_said():
    from audioconv.detect import Event

    said = {"s.flac": [streams.Utterance(0.0, 1.0, "speech", "v", "hello there"),
                       streams.Utterance(1.2, 2.0, "confusable", "v", "well done"),
                       streams.Utterance(3.0, 4.0, "keyword", "v", "welcome home")]}
    alarms = [Event("s.flac", 1.3, 1.9, 0.9), Event("s.flac", 0.5, 1.25, 0.8), Event("s.flac", 5.0, 6.0, 0.7),
              Event("s.flac", 3.5, 4.5, 0.6)]
    e = fake_evaluation([(0.5, 0, 4)], keywords=1, hours=1.0)
    e.false_alarms = alarms
    sources = cross_engine.false_alarm_sources(e, said, top=2)
    # the second alarm overlaps speech and a confusable: the confusable names it
    assert sources["by_kind"] == {"keyword": 1, "confusable": 2, "speech": 0, "background": 1}
    assert sources["counted"] == 4
    assert [a["said"] for a in sources["top"]] == [["confusable: well done"], ["speech: hello there", "confusable: well done"]]


def test_recall_not_counting_confusables_is_what_the_streams_would_give_without_them():
    from audioconv.detect import Event

    said = {"s.flac": [streams.Utterance(0.0, 1.0, "confusable", "v", "welding"),
                       streams.Utterance(2.0, 3.0, "speech", "v", "the table")]}
    # four false alarms in 2 h: confusable 0.95 and 0.9, speech 0.8, confusable 0.7; 10 keywords
    alarms = [Event("s.flac", 0.1, 0.9, 0.95), Event("s.flac", 0.2, 0.8, 0.9), Event("s.flac", 2.1, 2.9, 0.8),
              Event("s.flac", 0.3, 0.7, 0.7)]
    # the sweep: (threshold, hits, false alarms) at each event score
    e = fake_evaluation([(0.7, 9, 4), (0.8, 7, 3), (0.9, 5, 2), (0.95, 3, 1), (0.99, 1, 0)], keywords=10, hours=2.0)
    e.false_alarms = alarms
    kinds = [cross_engine._source_kind(a, said)[0] for a in alarms]  # noqa: SLF001
    assert kinds == ["confusable", "confusable", "speech", "confusable"]
    # counting everything, <= 1 FA/h (2 alarms in 2 h) first holds at 0.9: recall 0.5, the sweep's own figure
    assert cross_engine.recall_not_counting(e, kinds, "nothing", 1.0) == pytest.approx(0.5)
    # not counting confusables, only the speech alarm counts: 1 alarm in 2 h down to 0.7, recall 0.9
    assert cross_engine.recall_not_counting(e, kinds, "confusable", 1.0) == pytest.approx(0.9)
    assert cross_engine.recall_not_counting(e, kinds, "confusable", 0.0) == pytest.approx(0.5)  # none: above the speech 0.8
    sources = cross_engine.false_alarm_sources(e, said)
    assert sources["recall_at_1_not_counting_confusables"] == pytest.approx(0.9)


def test_recall_not_counting_stays_above_the_lowest_listed_alarm_when_the_list_is_full(monkeypatch):
    """Below the lowest of a full list, unlisted alarms may hide: those thresholds are not tried."""
    from audioconv import evaluate
    from audioconv.detect import Event

    monkeypatch.setattr(evaluate, "TOP_FALSE_ALARMS", 2)
    e = fake_evaluation([(0.5, 9, 9), (0.8, 6, 2), (0.9, 3, 1)], keywords=10, hours=1.0)
    e.false_alarms = [Event("s.flac", 0.0, 1.0, 0.9), Event("s.flac", 0.0, 1.0, 0.8)]
    assert cross_engine.recall_not_counting(e, ["confusable", "confusable"], "confusable", 1.0) == pytest.approx(0.6)


def _finished_fold(folder: Path, model_seed: int, wave: np.ndarray, truth: dict) -> None:
    """A fold as ``train_fold`` and ``make_fold_streams`` leave it: a trained run (here: seeded random weights) and streams."""
    import torch

    from scanning_helpers import make_model

    config = {"_target_": "audioconv.models.SpectrogramDetector", "conv2d_channels": [4, 8], "channels": 16}
    model = make_model(SpectrogramDetector, seed=model_seed, conv2d_channels=[4, 8], channels=16)
    run = folder / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "hyper_parameters": {"model_config": config}}, run / "checkpoints" / "best.ckpt")
    (run / "metrics.json").write_text(json.dumps({"metrics": {"heldout/auroc": 0.5}}))
    streams.save_stream(folder / "streams" / "stream_000.flac", wave)
    streams.write_truth(folder / "streams" / "truth.csv", truth)
    streams.write_said(folder / "streams" / "said.csv", {"stream_000.flac": [
        streams.Utterance(k.start, k.end, "keyword", k.voice, "welcome") for k in truth["stream_000.flac"]]})


def test_seed_study_gives_each_seeds_recall_their_spread_and_their_ensemble(tmp_path, monkeypatch):
    """Two seeds' finished folds (nothing to train or compose): each seed's recall is its own fold's,
    the mean and sd are theirs, and the ensemble is the two models averaged, scored on the same streams."""
    from audioconv import evaluate
    from audioconv.models import Ensemble

    rng = np.random.default_rng(0)
    wave = (0.05 * rng.standard_normal(40 * 16_000)).astype(np.float32)
    truth = {"stream_000.flac": [streams.Keyword(5.0, 5.8, "pico:en-US"), streams.Keyword(20.0, 20.7, "pico:en-GB")]}
    out = tmp_path / "study"
    for model_seed, training_seed in enumerate((11, 22), start=1):
        _finished_fold(cross_engine.seed_folder(out, training_seed) / "pico", model_seed, wave, truth)
    monkeypatch.setattr(cross_engine, "corpus_manifest", lambda *args, **kwargs: tmp_path / "unused.csv")
    config = streams.StreamConfig(seconds=40.0)
    result = cross_engine.run_seeds(["pico"], ["experiment=tiny"], out, ROOT, config, count=1, seed=0,
                                    training_seeds=[11, 22], threshold=0.5, progress=lambda _: None)

    (row,) = result["folds"]
    singles = [cross_engine.evaluate_fold(cross_engine.Fold("pico", cross_engine.seed_folder(out, s) / "pico"), 0.5)
               for s in (11, 22)]
    for target in cross_engine.SEED_TARGETS:
        cell = row[f"recall_at_{target:g}_fa_per_hour"]
        expected = [evaluate.recall_at(e.points, target)[0] for e in singles]
        assert cell["seeds"] == pytest.approx(expected)
        assert cell["mean"] == pytest.approx(np.mean(expected)) and cell["sd"] == pytest.approx(np.std(expected, ddof=1))
    from audioconv import checkpoints
    members = [checkpoints.load_detector(cross_engine.seed_folder(out, s) / "pico" / "run" / "checkpoints" / "best.ckpt")[0]
               for s in (11, 22)]
    truth_csv = cross_engine.seed_folder(out, 11) / "pico" / "streams" / "truth.csv"
    for combine in ("probabilities", "logits"):
        ensemble = cross_engine._evaluate_on_streams("pico", Ensemble(members, combine=combine),  # noqa: SLF001
                                                     singles[0].settings, truth_csv)
        got = row["recall_at_1_fa_per_hour"]["ensemble"][combine]
        assert got == pytest.approx(evaluate.recall_at(ensemble.points, 1.0)[0])
        assert [p.threshold for p in ensemble.points] != [p.threshold for p in singles[0].points]  # scores of its own
    assert len(result["pooled"]["seeds"]) == 2 and set(result["pooled"]["ensemble"]) == {"probabilities", "logits"}
    # the streams named by content, for compare.py: equal for equal truth files, changed by any edit of them
    assert row["streams"] == cross_engine.streams_digest(truth_csv.parent)
    copy = tmp_path / "copy"
    shutil.copytree(truth_csv.parent, copy)
    assert cross_engine.streams_digest(copy) == row["streams"]  # named by content, not by place
    (copy / "stream_000.flac").write_bytes((copy / "stream_000.flac").read_bytes()[:-10])  # other audio
    assert cross_engine.streams_digest(copy) != row["streams"]
    shutil.copytree(truth_csv.parent, copy, dirs_exist_ok=True)
    (copy / "truth.csv").write_text((copy / "truth.csv").read_text().replace("5.0", "5.1", 1))  # other truth
    assert cross_engine.streams_digest(copy) != row["streams"]
    table = (out / cross_engine.SEEDS_TABLE_FILE).read_text()
    assert "| pico |" in table and "seed 11 | seed 22 | mean ± sd (sample) | ensemble, mean probability | ensemble, mean logit" in table
    ensemble_table = json.loads((out / cross_engine.ENSEMBLE_DIR / cross_engine.RESULTS_FILE).read_text())
    assert ensemble_table["folds"][0]["engine"] == "pico" and ensemble_table["training_seeds"] == [11, 22]


def test_seed_study_refuses_seeds_whose_streams_differ(tmp_path):
    wave = np.zeros(30 * 16_000, dtype=np.float32)
    folds = []
    for model_seed, start in ((1, 5.0), (2, 6.0)):
        folder = tmp_path / f"seed{model_seed}" / "pico"
        _finished_fold(folder, model_seed, wave, {"stream_000.flac": [streams.Keyword(start, start + 0.7, "pico:x")]})
        folds.append(cross_engine.Fold("pico", folder))
    with pytest.raises(ValueError, match="streams differ"):
        cross_engine.evaluate_ensemble("pico", folds, None)


def test_seed_row_gives_each_seeds_recall_their_mean_and_sample_sd_and_each_ensembles():
    # 10 keywords in 1 h. Seed a: 8 hits with 1 alarm at 0.6, 9 with 5 at 0.2; seed b: 4 with 0, 6 with 5;
    # seed c: 2 with 1, 7 with 4. At <= 1 FA/h: 0.8, 0.4, 0.2; at <= 5: 0.9, 0.6, 0.7.
    a = fake_evaluation([(0.2, 9, 5), (0.6, 8, 1)], keywords=10, hours=1.0)
    b = fake_evaluation([(0.3, 6, 5), (0.9, 4, 0)], keywords=10, hours=1.0)
    c = fake_evaluation([(0.1, 7, 4), (0.8, 2, 1)], keywords=10, hours=1.0)
    soft = fake_evaluation([(0.5, 9, 1)], keywords=10, hours=1.0)
    row = cross_engine.seed_row("pico", [a, b, c], {"probabilities": soft, "logits": b})
    strict, loose = row["recall_at_1_fa_per_hour"], row["recall_at_5_fa_per_hour"]
    assert strict["seeds"] == pytest.approx([0.8, 0.4, 0.2]) and loose["seeds"] == pytest.approx([0.9, 0.6, 0.7])
    assert strict["mean"] == pytest.approx(14 / 30) and strict["sd"] == pytest.approx(np.std([0.8, 0.4, 0.2], ddof=1))
    assert (strict["min"], strict["max"]) == pytest.approx((0.2, 0.8))
    assert strict["ensemble"] == pytest.approx({"probabilities": 0.9, "logits": 0.4})
    pooled = {"target": 1.0, "seeds": [(0.6, 0.8), (0.9, 0.4), (0.8, 0.2)],
              "ensemble": {"probabilities": (0.5, 0.9), "logits": (0.9, 0.4)}}
    table = cross_engine.format_seed_table([1, 2, 3], [row], pooled)
    assert "| pico | 0.800 | 0.400 | 0.200 | 0.467 ± 0.306 | 0.900 | 0.400 |" in table
    assert "ensemble, mean probability, 0.900 (threshold 0.500)" in table


def test_seed_spread_of_equal_recalls_is_exactly_zero():
    """[0.1] * 3 has a float sd of 1.7e-17 by numpy: the seed table says 0, as compare's t-test does."""
    spread = cross_engine._spread([0.1, 0.1, 0.1])  # noqa: SLF001
    assert spread["sd"] == 0.0 and spread["mean"] == pytest.approx(0.1)
    assert np.isnan(cross_engine._spread([0.2])["sd"])  # noqa: SLF001 - one seed: no spread
    assert cross_engine._spread([0.1, 0.3])["sd"] == pytest.approx(np.std([0.1, 0.3], ddof=1))  # noqa: SLF001
