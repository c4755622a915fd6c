"""Is recipe B better than recipe A on unseen voices, beyond what a training seed alone moves?

A cross-engine seed study (``scripts/cross_engine.py --training-seeds ...``)
gives, for each held-out engine, the recall of several models trained from
different seeds on the same corpus and scored on the same streams. One recipe's
seeds differ by up to 0.35 recall at <= 1 FA/h (README, "Seeds and
ensembles"), so a single run per recipe cannot rank recipes. This module sets
two studies side by side: per fold and false-alarm target the two means, their
difference, and Welch's t-test on it (``scipy.stats.ttest_ind_from_stats``:
unequal variances, as few as two seeds each); the same for the pooled recall
(one threshold for every fold, per seed) and for each study's seed ensemble.

With three seeds a side the test is weak: a p-value under 0.05 needs a
difference of about three times the seeds' spread. The table says "not shown"
rather than "no effect" when it cannot tell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from audioconv import evaluate

SIGNIFICANCE = 0.05  # p below this: the difference is called shown


class StudyMismatch(ValueError):
    """Two seed studies that were not scored on the same streams: their recalls are not comparable."""


def read_study(folder: Path) -> dict[str, Any]:
    """A seed study's ``seeds.json`` (``folder`` or the file itself), with a one-line error naming it."""
    from audioconv.cross_engine import SEEDS_RESULTS_FILE

    path = folder / SEEDS_RESULTS_FILE if folder.is_dir() else folder
    try:
        study = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable seed study ({error})") from error
    if not isinstance(study, dict) or not {"folds", "pooled", "training_seeds"} <= set(study):
        raise ValueError(f"{path}: not a seed study (no folds, pooled and training_seeds): "
                         "was it written by cross_engine.py --training-seeds?")
    return study


def check_same_streams(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The engines both studies scored, after checking that each was scored on the same streams.

    Studies written since the stream digest was recorded are compared by it;
    older ones by the stream seed and each fold's keyword count and hours.
    """
    if a.get("stream_seed") != b.get("stream_seed"):
        raise StudyMismatch(f"stream seeds differ ({a.get('stream_seed')} vs {b.get('stream_seed')})")
    folds_b = {row["engine"]: row for row in b["folds"]}
    engines = [row["engine"] for row in a["folds"] if row["engine"] in folds_b]
    if not engines:
        raise StudyMismatch("the studies share no held-out engine")
    for row_a in a["folds"]:
        row_b = folds_b.get(row_a["engine"])
        if row_b is None:
            continue
        if "streams" in row_a and "streams" in row_b:
            same = row_a["streams"] == row_b["streams"]
        else:
            same = (row_a["keywords"], row_a["hours"]) == (row_b["keywords"], row_b["hours"])
        if not same:
            raise StudyMismatch(f"{row_a['engine']}: the studies' streams differ "
                                "(another corpus, stream count or length?)")
    return engines


def difference(values_a: Sequence[float], values_b: Sequence[float]) -> dict[str, float]:
    """Mean and sample sd of each side, B − A, and Welch's two-sided p-value (``nan`` when it cannot be computed)."""
    import numpy as np
    from scipy import stats

    a, b = np.asarray(values_a, dtype=float), np.asarray(values_b, dtype=float)
    p = float("nan")
    if a.size > 1 and b.size > 1 and (a.std(ddof=1) > 0 or b.std(ddof=1) > 0):
        p = float(stats.ttest_ind_from_stats(b.mean(), b.std(ddof=1), b.size, a.mean(), a.std(ddof=1), a.size,
                                             equal_var=False).pvalue)
    sd = lambda x: float(x.std(ddof=1)) if x.size > 1 else float("nan")  # noqa: E731
    return {"a": float(a.mean()), "b": float(b.mean()), "sd_a": sd(a), "sd_b": sd(b),
            "delta": float(b.mean() - a.mean()), "p": p}


def verdict(d: Mapping[str, float]) -> str:
    """What a difference says: shown higher / shown lower only when p < ``SIGNIFICANCE``."""
    if d["p"] == d["p"] and d["p"] < SIGNIFICANCE:  # p == p: not nan
        return "B higher" if d["delta"] > 0 else "B lower"
    return "not shown"


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Per fold and target (each seed's recall), pooled (each seed's pooled recall) and ensembles, A against B."""
    engines = check_same_streams(a, b)
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
    pooled = {}
    if set(engines) == set(folds_a) == set(folds_b):  # a pooled figure covers every fold of its study
        pooled = difference([recall for _, recall in a["pooled"]["seeds"]], [recall for _, recall in b["pooled"]["seeds"]])
        pooled["target"] = a["pooled"]["target"]
        pooled["ensemble"] = {combine: (a["pooled"]["ensemble"][combine][1], b["pooled"]["ensemble"][combine][1])
                              for combine in a["pooled"]["ensemble"] if combine in b["pooled"]["ensemble"]}
    return {"engines": engines, "targets": targets, "folds": rows, "pooled": pooled,
            "seeds": {"a": list(a["training_seeds"]), "b": list(b["training_seeds"])}}


def _target_label(key: str) -> str:
    return "≤ " + key.removeprefix("recall_at_").removesuffix("_fa_per_hour") + " FA/h"


def format_comparison(result: Mapping[str, Any], name_a: str = "A", name_b: str = "B") -> str:
    """The comparison as Markdown: one table per false-alarm target, then the pooled line."""
    f = evaluate._fmt  # noqa: SLF001 - one number format for every report
    lines = [f"A = {name_a} (seeds {', '.join(map(str, result['seeds']['a']))}), "
             f"B = {name_b} (seeds {', '.join(map(str, result['seeds']['b']))}); "
             f"p: Welch's t-test on the seeds' recalls; shown: p < {SIGNIFICANCE:g}.", ""]
    for key in result["targets"]:
        lines += [f"Recall at {_target_label(key)}:", "",
                  "| held-out engine | A: mean ± sd | B: mean ± sd | B − A | p | | ensembles A → B |",
                  "|---|---|---|---|---|---|---|"]
        for row in result["folds"]:
            d = row[key]
            ensembles = ", ".join(f"{combine} {f(x)} → {f(y)}" for combine, (x, y) in d["ensemble"].items())
            lines.append(f"| {row['engine']} | {f(d['a'])} ± {f(d['sd_a'])} | {f(d['b'])} ± {f(d['sd_b'])} | "
                         f"{d['delta']:+.3f} | {f(d['p'])} | "
                         f"{verdict(d)} | {ensembles} |")
        lines.append("")
    pooled = result["pooled"]
    if pooled:
        ensembles = "; ".join(f"ensemble ({combine}) {f(x)} → {f(y)}" for combine, (x, y) in pooled["ensemble"].items())
        lines.append(f"Pooled over every fold at ≤ {pooled['target']:g} FA/h, mean over seeds: A {f(pooled['a'])}, "
                     f"B {f(pooled['b'])} (B − A {pooled['delta']:+.3f}, p {f(pooled['p'])}: {verdict(pooled)}); "
                     f"{ensembles}.")
    else:
        lines.append("No pooled comparison: the studies do not hold the same folds.")
    return "\n".join(lines) + "\n"
