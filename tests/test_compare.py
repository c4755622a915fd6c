"""compare: two seed studies side by side, refused when their streams differ."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats

from audioconv import compare

ROOT = Path(__file__).resolve().parents[1]


def study(recalls: dict[str, list[float]], pooled: list[float], seeds=(1, 2, 3), stream_seed=0, digest="abc") -> dict:
    """A seeds.json as run_seeds writes it, with the given per-fold recalls at <= 1 FA/h (<= 5: half as low)."""
    def cell(values):
        return {"seeds": values, "mean": sum(values) / len(values), "ensemble": {"probabilities": max(values)}}

    folds = [{"engine": engine, "keywords": 200, "hours": 1.0, "streams": f"{digest}-{engine}",
              "recall_at_1_fa_per_hour": cell(values), "recall_at_5_fa_per_hour": cell([v / 2 for v in values])}
             for engine, values in recalls.items()]
    return {"overrides": [], "training_seeds": list(seeds), "stream_seed": stream_seed, "folds": folds,
            "pooled": {"target": 1.0, "seeds": [[0.98, r] for r in pooled], "ensemble": {"probabilities": [0.97, max(pooled)]}}}


def test_a_clear_gain_is_shown_and_seed_noise_is_not():
    a = study({"pico": [0.10, 0.12, 0.11], "piper": [0.05, 0.30, 0.10]}, pooled=[0.10, 0.15, 0.20])
    b = study({"pico": [0.50, 0.52, 0.51], "piper": [0.20, 0.02, 0.15]}, pooled=[0.30, 0.35, 0.40])
    result = compare.compare(a, b)
    pico, piper = result["folds"]
    one = "recall_at_1_fa_per_hour"
    assert pico[one]["delta"] == pytest.approx(0.40) and compare.verdict(pico[one]) == "B higher"
    assert piper[one]["delta"] == pytest.approx(-0.026667, abs=1e-5) and compare.verdict(piper[one]) == "not shown"
    expected = stats.ttest_ind([0.50, 0.52, 0.51], [0.10, 0.12, 0.11], equal_var=False).pvalue
    assert pico[one]["p"] == pytest.approx(expected)
    assert pico[one]["ensemble"] == {"probabilities": (0.12, 0.52)}
    assert result["pooled"]["delta"] == pytest.approx(0.20) and compare.verdict(result["pooled"]) == "B higher"
    assert result["targets"] == [one, "recall_at_5_fa_per_hour"]
    table = compare.format_comparison(result, "base", "new")
    assert "| pico | 0.110 ± 0.010 | 0.510 ± 0.010 | +0.400 |" in table and "B higher" in table
    assert "B lower" not in table


def test_a_clear_loss_is_called_lower():
    a = study({"pico": [0.50, 0.52, 0.51]}, pooled=[0.5, 0.52, 0.51])
    b = study({"pico": [0.10, 0.12, 0.11]}, pooled=[0.1, 0.12, 0.11])
    assert compare.verdict(compare.compare(a, b)["folds"][0]["recall_at_1_fa_per_hour"]) == "B lower"


def test_studies_on_different_streams_are_refused():
    a = study({"pico": [0.1, 0.2, 0.3]}, pooled=[0.1, 0.2, 0.3])
    with pytest.raises(compare.StudyMismatch, match="pico"):
        compare.compare(a, study({"pico": [0.1, 0.2, 0.3]}, pooled=[0.1, 0.2, 0.3], digest="other"))
    with pytest.raises(compare.StudyMismatch, match="stream seeds"):
        compare.compare(a, study({"pico": [0.1, 0.2, 0.3]}, pooled=[0.1, 0.2, 0.3], stream_seed=5))
    with pytest.raises(compare.StudyMismatch, match="no held-out engine"):
        compare.compare(a, study({"kokoro": [0.1, 0.2, 0.3]}, pooled=[0.1, 0.2, 0.3]))


def test_studies_without_digests_are_matched_by_keyword_count():
    a, b = (study({"pico": [0.1, 0.2, 0.3]}, pooled=[0.1, 0.2, 0.3]) for _ in range(2))
    for s in (a, b):
        del s["folds"][0]["streams"]
    compare.compare(a, b)
    b["folds"][0]["keywords"] = 199
    with pytest.raises(compare.StudyMismatch):
        compare.compare(a, b)


def test_pooled_figures_are_compared_only_over_the_same_folds():
    a = study({"pico": [0.1, 0.2, 0.3], "piper": [0.1, 0.1, 0.2]}, pooled=[0.1, 0.2, 0.3])
    b = study({"pico": [0.2, 0.3, 0.4]}, pooled=[0.2, 0.3, 0.4])
    result = compare.compare(a, b)
    assert [row["engine"] for row in result["folds"]] == ["pico"] and result["pooled"] == {}
    assert "No pooled comparison" in compare.format_comparison(result)


def test_the_script_prints_the_table_and_names_a_bad_study(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "seeds.json").write_text(json.dumps(study({"pico": [0.1, 0.2, 0.3]}, pooled=[0.1, 0.2, 0.3])))
    (tmp_path / "b.json").write_text(json.dumps(study({"pico": [0.4, 0.5, 0.6]}, pooled=[0.4, 0.5, 0.6])))
    (tmp_path / "bad.json").write_text('{"folds": []}')
    script = [sys.executable, str(ROOT / "scripts" / "compare_studies.py")]
    ok = subprocess.run([*script, str(tmp_path / "a"), str(tmp_path / "b.json"), "--out", str(tmp_path / "c.md")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "| pico | 0.200 ± 0.100 | 0.500 ± 0.100 | +0.300 |" in ok.stdout
    assert (tmp_path / "c.md").read_text() == ok.stdout.removesuffix("\n")
    bad = subprocess.run([*script, str(tmp_path / "a"), str(tmp_path / "bad.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and "bad.json" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
