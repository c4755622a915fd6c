"""scripts/ship_model.py: the threshold's source is checked before anything is loaded or written."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("ship_model", ROOT / "scripts" / "ship_model.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


@pytest.mark.parametrize("extra", [
    ["--pooled-threshold", "1.5"],
    ["--pooled-threshold", "0"],
    ["--pooled-threshold", "0.97", "--from-cross-engine", "runs/x/cross_engine.json"],
])
def test_bad_threshold_source_is_refused_before_anything_is_written(tmp_path, capsys, extra):
    with pytest.raises(SystemExit) as stopped:
        _script().main(["--checkpoint", str(tmp_path / "missing.ckpt"), "--name", "spectrogram",
                        "--out", str(tmp_path / "weights"), *extra])
    assert stopped.value.code == 2
    assert "--pooled-threshold" in capsys.readouterr().err
    assert not (tmp_path / "weights").exists()


def test_a_missing_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    code = _script().main(["--checkpoint", str(tmp_path / "missing.ckpt"), "--name", "conv1d",
                           "--pooled-threshold", "0.97", "--out", str(tmp_path / "weights")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "missing.ckpt" in err and "\n" not in err
    assert not (tmp_path / "weights").exists()


@pytest.mark.parametrize("extra, says", [
    (["--from-warp-probe", "warps.json"], "--from-warp-probe"),  # without --pitch-gate
    (["--pitch-gate", "--from-warp-probe", "warps.json", "--pooled-threshold", "0.9"], "--from-warp-probe"),
    (["--pitch-gate", "--from-cross-engine", "runs/x/cross_engine.json"], "--pitch-gate"),
])
def test_a_gated_threshold_must_come_from_the_gated_folds(tmp_path, capsys, extra, says):
    with pytest.raises(SystemExit) as stopped:
        _script().main(["--checkpoint", str(tmp_path / "missing.ckpt"), "--name", "spectrogram",
                        "--out", str(tmp_path / "weights"), *extra])
    assert stopped.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "weights").exists()


def test_the_gated_threshold_is_the_median_of_the_probed_seeds(tmp_path):
    import json

    probe = {"rows": [
        {"factor": 1.0, "pooled": {"recall_at_1_fa_per_hour": {"thresholds": {"a": 0.5}, "mean": 0.1}}},
        {"factor": "built-in", "pooled": {"recall_at_1_fa_per_hour": {
            "thresholds": {"seed1": 0.95, "seed2": 0.9, "seed3": None}, "mean": 0.25}}}]}
    path = tmp_path / "warps.json"
    path.write_text(json.dumps(probe))
    assert _script().gated_pooled_threshold(path) == (pytest.approx(0.925), 0.25)
    probe["rows"].pop()
    path.write_text(json.dumps(probe))
    with pytest.raises(ValueError, match="--built-in"):
        _script().gated_pooled_threshold(path)


def test_probes_of_single_seeds_give_the_median_over_all_of_them(tmp_path):
    import json

    paths = []
    for seed, threshold, recall in (("seed1234", 0.9871, 0.20), ("seed7", 0.9874, 0.16), ("seed42", 0.9827, 0.23)):
        pooled = {"seeds": {seed: recall}, "mean": recall, "thresholds": {seed: threshold}}
        path = tmp_path / f"{seed}.json"
        path.write_text(json.dumps({"rows": [{"factor": "built-in", "pooled": {"recall_at_1_fa_per_hour": pooled}}]}))
        paths.append(path)
    threshold, recall = _script().gated_pooled_threshold(*paths)
    assert threshold == pytest.approx(0.9871) and recall == pytest.approx((0.20 + 0.16 + 0.23) / 3)
    paths[1].write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="seed7.json"):
        _script().gated_pooled_threshold(*paths)
