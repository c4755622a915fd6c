"""The warp probe: a cross-engine study's folds scored again with the mel filterbank warped (VTLP at test time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from audioconv import cross_engine, detect, evaluate, scan, streams, warp_probe
from audioconv.models import Conv1dDetector, SpectrogramDetector
from scanning_helpers import make_model, make_wave, one_thread  # noqa: F401 - one_thread is an autouse fixture

ROOT = Path(__file__).resolve().parent.parent
CONFIG = {"_target_": "audioconv.models.SpectrogramDetector", "conv2d_channels": [4, 8], "channels": 16}


def _fold(folder: Path, model_seed: int, wave: np.ndarray, truth: dict, **model_config: object) -> None:
    """A trained fold as a cross-engine study leaves it: best checkpoint and streams."""
    model = make_model(SpectrogramDetector, seed=model_seed, conv2d_channels=[4, 8], channels=16)
    best = folder / "run" / "checkpoints" / "best.ckpt"
    best.parent.mkdir(parents=True)
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "hyper_parameters": {"model_config": {**CONFIG, **model_config}}}, best)
    streams.save_stream(folder / "streams" / "stream_000.flac", wave)
    streams.write_truth(folder / "streams" / "truth.csv", truth)


def test_a_warped_copy_leaves_the_model_alone_and_a_warp_of_one_changes_nothing():
    model = make_model(SpectrogramDetector, seed=3, conv2d_channels=[4, 8], channels=16)
    wave = make_wave(3 * 16_000, seed=5)
    before = scan.scan_whole(model, wave)
    same = warp_probe.warped_copy(model, 1.0)
    lower = warp_probe.warped_copy(model, 0.85)
    np.testing.assert_array_equal(scan.scan_whole(same, wave), before)
    assert not np.allclose(scan.scan_whole(lower, wave), before)
    np.testing.assert_array_equal(scan.scan_whole(model, wave), before)  # the original's filterbank is untouched
    with pytest.raises(warp_probe.ProbeError, match="mel front end"):
        warp_probe.warped_copy(make_model(Conv1dDetector, seed=1), 0.9)


def test_each_factor_is_scored_as_the_warped_model_would_be_alone(tmp_path):
    """Two seeds of two folds: each factor's fold recall is the warped copy's own evaluation (mean over seeds),
    pooled is the folds under one threshold, and voices with enough keywords get a row."""
    rng = np.random.default_rng(0)
    wave = (0.05 * rng.standard_normal(60 * 16_000)).astype(np.float32)
    truth = {"stream_000.flac": [streams.Keyword(5.0 + 10 * k, 5.7 + 10 * k, "x:a" if k % 2 else "x:b") for k in range(5)]}
    study = tmp_path / "study"
    for s, seed in enumerate(("seed1", "seed2")):
        for f, engine in enumerate(("kokoro", "pico")):
            _fold(study / seed / engine, 1 + 2 * s + f, wave, truth)

    probe = warp_probe.study_warps(study, [0.9, 1.0], min_keywords=3, progress=lambda _: None)

    assert probe["engines"] == ["kokoro", "pico"] and probe["factors"] == [0.9, 1.0]
    from audioconv import checkpoints
    for row in probe["rows"]:
        alone = {}
        for seed in ("seed1", "seed2"):
            for engine in ("kokoro", "pico"):
                fold = cross_engine.Fold(engine, study / seed / engine)
                model, info = checkpoints.load_detector(fold.checkpoint)
                alone[seed, engine] = cross_engine._evaluate_on_streams(  # noqa: SLF001
                    engine, warp_probe.warped_copy(model, row["factor"]), detect.detection_settings(info), fold.truth)
        for target in warp_probe.TARGETS:
            key = f"recall_at_{target:g}_fa_per_hour"
            for engine in ("kokoro", "pico"):
                expected = [evaluate.recall_at(alone[seed, engine].points, target)[0] for seed in ("seed1", "seed2")]
                assert row["folds"][engine][key] == pytest.approx(np.mean(expected))
            pooled = [cross_engine.pooled_threshold([alone[seed, "kokoro"], alone[seed, "pico"]], target)[1]
                      for seed in ("seed1", "seed2")]
            assert row["pooled"][key]["mean"] == pytest.approx(np.mean(pooled))
        assert sorted(row["voices"]) == ["x:b"]  # x:b says 3 keywords per stream, x:a 2 (under min_keywords)
    table = warp_probe.format_probe(probe)
    assert "| kokoro |" in table and "| x:b |" in table and "pooled @ ≤ 1 FA/h" in table


def test_the_script_refuses_what_it_cannot_score(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, message in (([str(tmp_path / "missing")], "not a folder"), ([str(empty)], "no fold with streams"),
                          ([str(empty), "--factors", "0"], "positive")):
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "warp_probe.py"), *args, "--quiet"],
                              capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 2 and message in done.stderr, done.stderr


def _voice(seconds: float, f0: float, rate: int = 16_000) -> np.ndarray:
    """A buzz with ten harmonics: voiced, pitch ``f0``."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.05 * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 11))).astype(np.float32)


def test_the_pitch_track_hears_the_pitch():
    ends, f0 = warp_probe.pitch_track(_voice(2.0, 210.0), 16_000)
    assert ends.size == f0.size > 0 and np.all(np.diff(ends) > 0)
    assert abs(np.nanmedian(f0) - 210.0) < 6.0
    _, silent = warp_probe.pitch_track(np.zeros(32_000, np.float32), 16_000)
    assert np.isnan(silent).all()


def test_the_gate_lowers_a_high_voice_raises_a_low_one_and_leaves_silence_alone():
    gate = warp_probe.PitchGate(reference_hz=130.0, exponent=0.3, window_seconds=1.0)
    ends = np.arange(1, 301) * 0.04  # 12 s of pitch frames
    f0 = np.full(300, np.nan)
    f0[:100] = 250.0  # 0-4 s: a high voice -> (250/130)^-0.3 = 0.82 -> 0.85 (the lowest factor)
    f0[150:250] = 100.0  # 6-10 s: a low voice -> 1.08 -> 1.1
    chosen = warp_probe.gate_factors(560, 0.02, 0.95, ends, f0, [1.1, 0.85, 1.0], gate)
    frame_ends = np.arange(560) * 0.02 + 0.95
    assert set(chosen[frame_ends < 4.0]) == {0.85}
    assert set(chosen[(frame_ends > 7.0) & (frame_ends < 10.0)]) == {1.1}
    assert set(chosen[(frame_ends > 5.1) & (frame_ends < 6.0)]) == {1.0}  # no voiced frame in the last second: 1
    assert chosen.size == 560


def test_with_no_voiced_audio_the_gate_scores_as_the_unwarped_model(tmp_path):
    rng = np.random.default_rng(1)
    wave = (0.05 * rng.standard_normal(40 * 16_000)).astype(np.float32)  # noise: pYIN finds no voice
    truth = {"stream_000.flac": [streams.Keyword(5.0, 5.7, "x:a"), streams.Keyword(25.0, 25.7, "x:a")]}
    _fold(tmp_path / "study" / "kokoro", 2, wave, truth)
    fold = cross_engine.Fold("kokoro", tmp_path / "study" / "kokoro")
    found = warp_probe.probe_fold(fold, [0.9, 1.0], warp_probe.PitchGate())
    assert sorted(found, key=str) == [0.9, 1.0, "gate"]
    assert [p.to_dict() for p in found["gate"].points] == [p.to_dict() for p in found[1.0].points]
    assert [p.to_dict() for p in found[0.9].points] != [p.to_dict() for p in found[1.0].points]


def test_the_built_in_column_is_the_pitch_gated_model_evaluated_alone(tmp_path):
    """--built-in scores the fold's model wrapped in models.PitchGated, as detection would with that file, and
    the pooled entry keeps each seed's threshold (what a gated model would ship at)."""
    from audioconv import checkpoints
    from audioconv.models import PitchGated

    t = np.arange(30 * 16_000) / 16_000
    voice = np.sin(2 * np.pi * 240 * t) * (np.sin(2 * np.pi * 0.3 * t) > 0)  # a high voice, on and off
    wave = (0.05 * voice + 0.01 * np.random.default_rng(2).standard_normal(t.size)).astype(np.float32)
    truth = {"stream_000.flac": [streams.Keyword(4.0, 4.7, "x:a"), streams.Keyword(14.0, 14.7, "x:a")]}
    _fold(tmp_path / "study" / "kokoro", 3, wave, truth)
    settings = {"factors": [0.85, 1.0, 1.15], "reference_hz": 130.0, "exponent": 0.3}
    probe = warp_probe.study_warps(tmp_path / "study", [1.0], progress=lambda _: None, built_in=settings)
    assert probe["factors"] == [1.0, warp_probe.BUILT_IN] and probe["built_in"] == {**settings, "min_voiced": 5}
    fold = cross_engine.Fold("kokoro", tmp_path / "study" / "kokoro")
    model, info = checkpoints.load_detector(fold.checkpoint)
    alone = evaluate.summarize_model("gated", model, detect.detection_settings(info),
                                     [evaluate.ScoredFile("stream_000.flac", wave.size / 16_000,
                                                          scan.scan_chunked(PitchGated(model, **settings).eval(), wave))],
                                     truth, targets=cross_engine.SEED_TARGETS)
    row = probe["rows"][1]
    assert row["label"] == "built-in gate"
    assert row["folds"]["kokoro"]["recall_at_1_fa_per_hour"] == evaluate.recall_at(alone.points, 1.0)[0]
    pooled = row["pooled"]["recall_at_1_fa_per_hour"]
    assert pooled["thresholds"] and all(0 < t <= 1 for t in pooled["thresholds"].values())
    assert "built-in gate" in warp_probe.format_probe(probe)


def test_the_built_in_gate_of_a_vtln_model_uses_the_warps_it_trained_in(tmp_path):
    """A fold trained with model.pitch_warp and four factors is gated with those four unless --built-in-factors
    says otherwise, and the probe records the gate it used; folds gated differently are refused."""
    wave = (0.02 * np.random.default_rng(3).standard_normal(20 * 16_000)).astype(np.float32)
    truth = {"stream_000.flac": [streams.Keyword(4.0, 4.7, "x:a")]}
    four = [0.75, 0.85, 1.0, 1.15]
    _fold(tmp_path / "study" / "kokoro", 3, wave, truth, pitch_warp=True, pitch_warp_factors=four)
    gate = {"reference_hz": 130.0, "exponent": 0.3}
    probe = warp_probe.study_warps(tmp_path / "study", [1.0], progress=lambda _: None, built_in=gate)
    assert probe["built_in"]["factors"] == four
    given = warp_probe.study_warps(tmp_path / "study", [1.0], progress=lambda _: None,
                                   built_in={**gate, "factors": [0.9, 1.0]})
    assert given["built_in"]["factors"] == [0.9, 1.0]
    _fold(tmp_path / "study" / "piper", 4, wave, truth)  # the default three factors
    with pytest.raises(warp_probe.ProbeError, match="gates differ"):
        warp_probe.study_warps(tmp_path / "study", [1.0], progress=lambda _: None, built_in=gate)


def test_other_streams_score_a_study_as_if_they_were_its_own(tmp_path):
    """--streams DIR: each fold is scored on DIR/<engine>/streams, exactly as a study whose folds held those
    streams would be; a fold without streams there is refused by name."""
    rng = np.random.default_rng(5)
    own = (0.05 * rng.standard_normal(20 * 16_000)).astype(np.float32)
    other = (0.05 * rng.standard_normal(20 * 16_000)).astype(np.float32)
    truth = {"stream_000.flac": [streams.Keyword(4.0, 4.7, "x:a"), streams.Keyword(12.0, 12.7, "x:a")]}
    _fold(tmp_path / "study" / "kokoro", 3, own, truth)
    _fold(tmp_path / "twin" / "kokoro", 3, other, truth)  # the same model, the other streams as its own
    (tmp_path / "twin" / "kokoro" / "run").rename(tmp_path / "unused")
    quiet = {"progress": lambda _: None}
    elsewhere = warp_probe.study_warps(tmp_path / "study", [0.9, 1.0], streams_root=tmp_path / "twin", **quiet)
    _fold(tmp_path / "b" / "study" / "kokoro", 3, other, truth)  # same study name: same seed label
    as_own = warp_probe.study_warps(tmp_path / "b" / "study", [0.9, 1.0], **quiet)
    assert elsewhere["rows"] == as_own["rows"] and elsewhere["streams"] == str(tmp_path / "twin")
    assert elsewhere["rows"] != warp_probe.study_warps(tmp_path / "study", [0.9, 1.0], **quiet)["rows"]
    assert "not the folds' own" in warp_probe.format_probe(elsewhere)
    with pytest.raises(warp_probe.ProbeError, match="no streams for fold kokoro"):
        warp_probe.study_warps(tmp_path / "study", [1.0], streams_root=tmp_path / "nowhere", **quiet)
