"""Is recipe B better than recipe A on unseen voices, beyond what a training seed alone moves?

A cross-engine seed study (``scripts/cross_engine.py --training-seeds ...``)
gives, for each held-out engine, the recall of several models trained from
different seeds on the same corpus and scored on the same streams. One recipe's
seeds differ by up to 0.35 recall at <= 1 FA/h (README, "Seeds and
ensembles"), so a single run per recipe cannot rank recipes. This module sets
two studies side by side:

- the **primary test**: the pooled recall (one threshold for every fold, one
  figure per seed), A's seeds against B's by Welch's t-test
  (``scipy.stats.ttest_ind_from_stats``: unequal variances);
- per fold and false-alarm target, the same test, **exploratory**: with five
  folds and two targets that is ten tests, so their p-values are adjusted for
  the number of tests (Benjamini–Hochberg, ``scipy.stats.false_discovery_control``)
  before anything is called shown;
- each study's seed ensemble, side by side (one number each: no test).

With three seeds a side the test is weak: p < 0.05 needs a difference of
about 2.3 times the seeds' standard deviation. The table says "not shown"
rather than "no effect" when it cannot tell.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from audioconv import evaluate

SIGNIFICANCE = 0.05  # p (adjusted, per fold) below this: the difference is called shown


class StudyMismatch(ValueError):
    """Two seed studies that were not scored on the same streams: their recalls are not comparable."""


def _check_shape(study: Any, path: Path) -> None:
    """A seed study's structure, so a damaged file is one line naming it rather than a traceback."""
    if not isinstance(study, dict) or not {"folds", "pooled", "training_seeds"} <= set(study):
        raise ValueError(f"{path}: not a seed study (no folds, pooled and training_seeds): "
                         "was it written by cross_engine.py --training-seeds?")
    folds, pooled = study["folds"], study["pooled"]
    if not isinstance(folds, list) or not all(
        isinstance(f, dict) and {"engine", "keywords", "hours"} <= set(f)
        and all(isinstance(f[k], dict) and isinstance(f[k].get("seeds"), list) and isinstance(f[k].get("ensemble"), dict)
                for k in f if k.startswith("recall_at_"))
        for f in folds
    ):
        raise ValueError(f"{path}: a fold of the seed study lacks engine, keywords, hours or its seeds' recalls")
    if not isinstance(pooled, dict) or not {"target", "seeds", "ensemble"} <= set(pooled):
        raise ValueError(f"{path}: the seed study's pooled entry lacks target, seeds or ensemble")


def read_study(location: Path) -> dict[str, Any]:
    """A seed study's ``seeds.json`` (``location``: its folder or the file), with a one-line error naming it.

    Studies written before each fold recorded its stream digest get it from
    their streams when the study's folder is still on disk.
    """
    from audioconv.cross_engine import SEEDS_RESULTS_FILE, seed_folder, streams_digest

    path = location / SEEDS_RESULTS_FILE if location.is_dir() else location
    try:
        study = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: bad JSON or bad UTF-8
        raise ValueError(f"{path}: not a readable seed study ({error})") from error
    _check_shape(study, path)
    first_seed = study["training_seeds"][0] if study["training_seeds"] else None
    for fold in study["folds"]:
        streams = seed_folder(path.parent, first_seed) / fold["engine"] / "streams" if first_seed is not None else None
        if "streams" not in fold and streams is not None and (streams / "truth.csv").is_file():
            fold["streams"] = streams_digest(streams)
    return study


def same_stream_folds(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[list[str], list[str], str]:
    """(engines both studies scored on the same streams, engines whose streams differ, how that was checked).

    Streams are compared by their digest (stream audio, truth and what was
    said) where both sides have one, else by the stream seed and each fold's
    keyword count and hours, which a change of background would pass. A recipe
    that re-synthesizes one engine's part changes that fold's streams only: the
    other folds still compare. Raises ``StudyMismatch`` when no fold does.
    """
    if a.get("stream_seed") != b.get("stream_seed"):
        raise StudyMismatch(f"stream seeds differ ({a.get('stream_seed')} vs {b.get('stream_seed')})")
    folds_b = {row["engine"]: row for row in b["folds"]}
    shared = [row for row in a["folds"] if row["engine"] in folds_b]
    if not shared:
        raise StudyMismatch("the studies share no held-out engine")
    same, differ, by_digest = [], [], True
    for row_a in shared:
        row_b = folds_b[row_a["engine"]]
        if "streams" in row_a and "streams" in row_b:
            equal = row_a["streams"] == row_b["streams"]
        else:
            by_digest = False
            equal = (row_a["keywords"], row_a["hours"]) == (row_b["keywords"], row_b["hours"])
        (same if equal else differ).append(row_a["engine"])
    if not same:
        raise StudyMismatch(f"the studies' streams differ on every shared fold ({', '.join(differ)}): "
                            "another corpus, background, stream count or length?")
    return same, differ, ("stream digests" if by_digest else "stream seed, keyword counts and hours (no digest on one side)")


def sample_sd(values: Sequence[float]) -> float:
    """Sample standard deviation; exactly 0 when every value is equal (no rounding residue to test on)."""
    import numpy as np

    array = np.asarray(values, dtype=float)
    if array.size < 2:
        return float("nan")
    return 0.0 if np.ptp(array) == 0 else float(array.std(ddof=1))


def difference(values_a: Sequence[float], values_b: Sequence[float]) -> dict[str, float]:
    """Mean and sample sd of each side, B − A, and Welch's two-sided p-value.

    ``p`` is ``nan`` when it cannot be computed: fewer than two values on a
    side, or no spread on either side (equal recalls for every seed of both
    recipes say nothing about how much a seed moves them).
    """
    from scipy import stats

    mean_a, mean_b = sum(values_a) / len(values_a), sum(values_b) / len(values_b)
    sd_a, sd_b = sample_sd(values_a), sample_sd(values_b)
    p = float("nan")
    if len(values_a) > 1 and len(values_b) > 1 and (sd_a > 0 or sd_b > 0):
        p = float(stats.ttest_ind_from_stats(mean_b, sd_b, len(values_b), mean_a, sd_a, len(values_a),
                                             equal_var=False).pvalue)
    return {"a": mean_a, "b": mean_b, "sd_a": sd_a, "sd_b": sd_b, "delta": mean_b - mean_a, "p": p}


def verdict(d: Mapping[str, float], p_key: str = "p") -> str:
    """What a difference says: B higher / B lower only when its p (``p_key``) is under ``SIGNIFICANCE``."""
    p = d[p_key]
    if math.isnan(p):
        return "no seed spread" if d["sd_a"] == 0 and d["sd_b"] == 0 else "not tested"
    if p < SIGNIFICANCE:
        return "B higher" if d["delta"] > 0 else "B lower"
    return "not shown"


def _adjust(rows: list[dict[str, Any]], targets: Sequence[str]) -> int:
    """Benjamini–Hochberg over every per-fold test (scipy): each cell gains ``p_adjusted``. Returns the count."""
    import numpy as np
    from scipy import stats

    cells = [row[key] for row in rows for key in targets]
    tested = [c for c in cells if not math.isnan(c["p"])]
    adjusted = stats.false_discovery_control(np.array([c["p"] for c in tested])) if tested else []
    for cell in cells:
        cell["p_adjusted"] = float("nan")
    for cell, p in zip(tested, adjusted):
        cell["p_adjusted"] = float(p)
    return len(tested)


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Pooled (primary), per fold and target (each seed's recall; adjusted p) and ensembles, A against B."""
    engines, differ, checked_by = same_stream_folds(a, b)
    folds_a = {row["engine"]: row for row in a["folds"]}
    folds_b = {row["engine"]: row for row in b["folds"]}
    targets = [key for key in folds_a[engines[0]] if key.startswith("recall_at_") and key in folds_b[engines[0]]]
    rows = []
    for engine in engines:
        row: dict[str, Any] = {"engine": engine}
        for key in targets:
            cell_a, cell_b = folds_a[engine][key], folds_b[engine][key]
            row[key] = difference(cell_a["seeds"], cell_b["seeds"])
            row[key]["ensemble"] = {combine: (cell_a["ensemble"][combine], cell_b["ensemble"][combine])
                                    for combine in cell_a["ensemble"] if combine in cell_b["ensemble"]}
        rows.append(row)
    tests = _adjust(rows, targets)
    pooled: dict[str, Any] = {}
    why_not = ""
    if differ:
        why_not = f"the streams of {', '.join(differ)} differ between the studies"
    elif not set(engines) == set(folds_a) == set(folds_b):
        why_not = "the studies do not hold the same folds"
    elif a["pooled"]["target"] != b["pooled"]["target"]:
        why_not = f"their pooled targets differ ({a['pooled']['target']:g} vs {b['pooled']['target']:g} FA/h)"
    else:
        pooled = difference([recall for _, recall in a["pooled"]["seeds"]], [recall for _, recall in b["pooled"]["seeds"]])
        pooled["target"] = a["pooled"]["target"]
        pooled["ensemble"] = {combine: (a["pooled"]["ensemble"][combine][1], b["pooled"]["ensemble"][combine][1])
                              for combine in a["pooled"]["ensemble"] if combine in b["pooled"]["ensemble"]}
    return {"engines": engines, "differ": differ, "targets": targets, "folds": rows, "pooled": pooled,
            "no_pooled_because": why_not,
            "tests": tests, "streams_checked_by": checked_by,
            "seeds": {"a": list(a["training_seeds"]), "b": list(b["training_seeds"])}}


def _target_label(key: str) -> str:
    return "≤ " + key.removeprefix("recall_at_").removesuffix("_fa_per_hour") + " FA/h"


def _signed(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:+.3f}"


def format_comparison(result: Mapping[str, Any], name_a: str = "A", name_b: str = "B") -> str:
    """The comparison as Markdown: the pooled (primary) line, then one exploratory table per false-alarm target."""
    f = evaluate._fmt  # noqa: SLF001 - one number format for every report
    lines = [f"A = {name_a} (seeds {', '.join(map(str, result['seeds']['a']))}), "
             f"B = {name_b} (seeds {', '.join(map(str, result['seeds']['b']))}); "
             f"same streams, checked by {result['streams_checked_by']}"
             + (f"; not compared, their streams differ: {', '.join(result['differ'])}" if result["differ"] else "")
             + ".", ""]
    pooled = result["pooled"]
    if pooled:
        ensembles = "; ".join(f"ensemble ({combine}) {f(x)} → {f(y)}" for combine, (x, y) in pooled["ensemble"].items())
        lines.append(f"**Pooled over every fold at ≤ {pooled['target']:g} FA/h** (the primary test), mean ± sd over "
                     f"seeds: A {f(pooled['a'])} ± {f(pooled['sd_a'])}, B {f(pooled['b'])} ± {f(pooled['sd_b'])}; "
                     f"B − A {_signed(pooled['delta'])}, Welch p {f(pooled['p'])}: {verdict(pooled)}. {ensembles}.")
    else:
        lines.append(f"No pooled comparison: {result['no_pooled_because']}.")
    lines += ["", f"Per fold (exploratory): Welch's t-test on the seeds' recalls, p adjusted for the "
              f"{result['tests']} tests (Benjamini–Hochberg); shown: adjusted p < {SIGNIFICANCE:g}.", ""]
    for key in result["targets"]:
        lines += [f"Recall at {_target_label(key)}:", "",
                  "| held-out engine | A: mean ± sd | B: mean ± sd | B − A | p | p adjusted | verdict | ensembles A → B |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in result["folds"]:
            d = row[key]
            ensembles = ", ".join(f"{combine} {f(x)} → {f(y)}" for combine, (x, y) in d["ensemble"].items())
            lines.append(f"| {row['engine']} | {f(d['a'])} ± {f(d['sd_a'])} | {f(d['b'])} ± {f(d['sd_b'])} | "
                         f"{_signed(d['delta'])} | {f(d['p'])} | {f(d['p_adjusted'])} | {verdict(d, 'p_adjusted')} | "
                         f"{ensembles} |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
