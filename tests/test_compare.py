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
    assert 0 < pico[one]["p"] <= pico[one]["p_adjusted"] < 0.05 and result["tests"] == 4  # 2 folds x 2 targets
    assert result["streams_checked_by"] == "stream digests"
    table = compare.format_comparison(result, "base", "new")
    assert "| pico | 0.110 ± 0.010 | 0.510 ± 0.010 | +0.400 |" in table and "B higher" in table
    assert "B lower" not in table and "the primary test" in table and "4 tests" in table


def test_equal_recalls_for_every_seed_are_no_evidence_either_way():
    """Recalls are hits / keywords: equal seeds must give sd 0 and no p, not a rounding residue with p ~ 1e-30."""
    a = study({"pico": [37 / 212] * 3}, pooled=[0.1] * 3)
    b = study({"pico": [40 / 212] * 3}, pooled=[0.4] * 3)
    result = compare.compare(a, b)
    cell = result["folds"][0]["recall_at_1_fa_per_hour"]
    assert cell["sd_a"] == 0.0 and cell["sd_b"] == 0.0 and cell["p"] != cell["p"]  # nan
    assert compare.verdict(cell) == "no seed spread" and compare.verdict(result["pooled"]) == "no seed spread"
    assert "+0.014 | - | - | no seed spread" in compare.format_comparison(result)


def test_different_seed_counts_are_compared():
    a = study({"pico": [0.10, 0.12]}, pooled=[0.1, 0.12], seeds=(1, 2))
    b = study({"pico": [0.50, 0.52, 0.51, 0.49]}, pooled=[0.5, 0.52, 0.51, 0.49], seeds=(1, 2, 3, 4))
    result = compare.compare(a, b)
    expected = stats.ttest_ind([0.50, 0.52, 0.51, 0.49], [0.10, 0.12], equal_var=False).pvalue
    assert result["pooled"]["p"] == pytest.approx(expected)
    assert "seeds 1, 2)" in compare.format_comparison(result) and "seeds 1, 2, 3, 4)" in compare.format_comparison(result)


def test_pooled_figures_at_different_targets_are_not_compared():
    a = study({"pico": [0.1, 0.2, 0.3]}, pooled=[0.1, 0.2, 0.3])
    b = study({"pico": [0.2, 0.3, 0.4]}, pooled=[0.2, 0.3, 0.4])
    b["pooled"]["target"] = 0.5
    result = compare.compare(a, b)
    assert result["pooled"] == {} and "targets differ" in result["no_pooled_because"]
    assert "No pooled comparison: their pooled targets differ (1 vs 0.5 FA/h)" in compare.format_comparison(result)


def test_a_clear_loss_is_called_lower():
    a = study({"pico": [0.50, 0.52, 0.51]}, pooled=[0.5, 0.52, 0.51])
    b = study({"pico": [0.10, 0.12, 0.11]}, pooled=[0.1, 0.12, 0.11])
    assert compare.verdict(compare.compare(a, b)["folds"][0]["recall_at_1_fa_per_hour"]) == "B lower"


def test_studies_on_different_streams_are_refused():
    a = study({"pico": [0.1, 0.2, 0.3]}, pooled=[0.1, 0.2, 0.3])
    with pytest.raises(compare.StudyMismatch, match="every shared fold \\(pico\\)"):
        compare.compare(a, study({"pico": [0.1, 0.2, 0.3]}, pooled=[0.1, 0.2, 0.3], digest="other"))
    with pytest.raises(compare.StudyMismatch, match="stream seeds"):
        compare.compare(a, study({"pico": [0.1, 0.2, 0.3]}, pooled=[0.1, 0.2, 0.3], stream_seed=5))
    with pytest.raises(compare.StudyMismatch, match="no held-out engine"):
        compare.compare(a, study({"kokoro": [0.1, 0.2, 0.3]}, pooled=[0.1, 0.2, 0.3]))


def test_a_fold_whose_streams_changed_is_left_out_and_the_rest_compared():
    """A recipe that re-synthesizes one engine's part changes that fold's streams only."""
    a = study({"pico": [0.1, 0.2, 0.3], "piper": [0.1, 0.1, 0.2]}, pooled=[0.1, 0.2, 0.3])
    b = study({"pico": [0.2, 0.3, 0.4], "piper": [0.1, 0.2, 0.2]}, pooled=[0.2, 0.3, 0.4])
    b["folds"][0]["streams"] = "resynthesized"
    result = compare.compare(a, b)
    assert [row["engine"] for row in result["folds"]] == ["piper"] and result["differ"] == ["pico"]
    assert result["pooled"] == {} and "pico" in result["no_pooled_because"]
    assert "not compared, their streams differ: pico" in compare.format_comparison(result)


def test_studies_without_digests_are_matched_by_keyword_count_and_hours_and_say_so():
    a, b = (study({"pico": [0.1, 0.2, 0.3]}, pooled=[0.1, 0.2, 0.3]) for _ in range(2))
    del a["folds"][0]["streams"]  # an older study: no digest on one side
    result = compare.compare(a, b)
    assert "no digest" in result["streams_checked_by"] and "no digest" in compare.format_comparison(result)
    for key, value in (("keywords", 199), ("hours", 2.0)):
        changed = json.loads(json.dumps(b))
        changed["folds"][0][key] = value
        with pytest.raises(compare.StudyMismatch, match="pico"):
            compare.compare(a, changed)


def test_an_older_study_gets_its_digest_from_its_streams_on_disk(tmp_path):
    from audioconv import cross_engine, streams

    folder = tmp_path / "old"
    stream_dir = folder / "seed1" / "pico" / "streams"
    stream_dir.mkdir(parents=True)
    streams.write_truth(stream_dir / "truth.csv", {"stream_000.flac": [streams.Keyword(1.0, 1.5, "pico:x")]})
    (stream_dir / "stream_000.flac").write_bytes(b"audio")
    old = study({"pico": [0.1, 0.2, 0.3]}, pooled=[0.1, 0.2, 0.3])
    del old["folds"][0]["streams"]
    (folder / "seeds.json").write_text(json.dumps(old))
    assert compare.read_study(folder)["folds"][0]["streams"] == cross_engine.streams_digest(stream_dir)


@pytest.mark.parametrize("content, problem", [
    (b"\xff\xfe not utf-8", "not a readable seed study"),
    (b"[1, 2]", "not a seed study"),
    (b'{"folds": [{"engine": "pico"}], "pooled": {}, "training_seeds": [1]}', "lacks engine, keywords, hours"),
    (b'{"folds": [], "pooled": {"target": 1}, "training_seeds": [1]}', "pooled entry lacks"),
])
def test_a_damaged_study_is_one_error_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "seeds.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=problem) as error:
        compare.read_study(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


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
    (tmp_path / "other.json").write_text(json.dumps(study({"pico": [0.4, 0.5, 0.6]}, pooled=[0.4, 0.5, 0.6], digest="x")))
    other = subprocess.run([*script, str(tmp_path / "a"), str(tmp_path / "other.json")], capture_output=True, text=True)
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1
    assert "other.json" in other.stderr and "streams differ" in other.stderr
