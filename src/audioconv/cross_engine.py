"""Cross-engine validation: for each speech engine in turn, train without it and listen for its voices.

A detector is only as good as its recall on voices it never heard. For every
engine family E (espeak-ng, festival, Pico, Piper, Kokoro):

1. **train** with ``data.corpus.splits.heldout_engines=[E]`` (every voice of E moves
   to the held-out split; the corpus parts are reused, only the view changes),
   then, for each round of ``Mining``, mine hard negatives from the fold's own
   training negatives (every other engine's speech and confusables) and
   fine-tune on them: the recipe the shipped model follows, measured as shipped;
2. **compose** long streams from E's voices alone, with the conventions of
   ``scripts/make_streams.py`` (other speech and confusable words between the
   keywords, reverberation, gain) over noise and real music (test-split tracks
   of ``backgrounds``, never heard in training) at 5–20 dB SNR;
3. **evaluate** them as ``scripts/evaluate.py`` does (shared/DESIGN.md): recall at
   ≤ 1 and ≤ 0.5 false alarms per hour, recall and FA/h at a given threshold,
   per voice.

The folds share one sweep, so ``pooled_threshold`` finds the one threshold
that keeps every fold's false alarms, pooled, at or under a target: that is
how the shipped threshold is chosen (on voices the model did not train on).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from audioconv import corpus, evaluate, streams
from audioconv.config import corpus_manifest, data_settings
from audioconv.evaluate import ModelEvaluation
from audioconv.files import write_text_atomically
from audioconv.models.ensemble import COMBINE

RESULTS_FILE = "cross_engine.json"
TABLE_FILE = "cross_engine.md"
SEEDS_RESULTS_FILE = "seeds.json"
SEEDS_TABLE_FILE = "seeds.md"
ENSEMBLE_DIR = "ensemble"  # under a seed study's folder: the folds' seeds averaged, as a cross-engine table
SEED_TARGETS = (1.0, 5.0)  # false alarms per hour at which a seed study quotes recall (<= 5: less noisy)
ENSEMBLE_LABELS = {"probabilities": "probability", "logits": "logit"}  # Ensemble.combine -> table label


@dataclass(frozen=True)
class Mining:
    """Rounds of hard-negative mining after a fold's first training (0 rounds: none).

    Each round scans ``hours`` of the fold's training negatives with the last
    round's model, keeps every window firing at ``threshold`` (adding to the
    fold's ``mined/`` folder) and fine-tunes that model for ``epochs`` epochs
    with them (``data.user_folder``, ``init_from``) at peak learning rate ``lr``.
    """

    rounds: int = 0
    hours: float = 2.0
    threshold: float = 0.1
    epochs: int = 6
    lr: float = 0.001  # a third of training's: adjust the model, do not start over


@dataclass
class Fold:
    """One engine held out: where its runs, mined negatives, streams and evaluation live."""

    engine: str
    folder: Path
    rounds: int = 0  # mining rounds: the evaluated run is the last one

    def round_dir(self, round_: int) -> Path:
        """Round 0 is the first training (``run``); round r the r-th fine-tuning on mined negatives."""
        return self.folder / ("run" if round_ == 0 else f"run_mined{round_}")

    @property
    def run_dir(self) -> Path:
        return self.round_dir(self.rounds)

    @property
    def mined(self) -> Path:
        return self.folder / "mined"

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / "checkpoints" / "best.ckpt"

    @property
    def truth(self) -> Path:
        return self.folder / "streams" / "truth.csv"

    @property
    def said(self) -> Path:
        """Every utterance of the fold's streams (``streams.write_said``): what false alarms overlapped."""
        return self.folder / "streams" / "said.csv"

    @property
    def has_streams(self) -> bool:
        """Composed already (truth and words said written last): composing again would give the same ones."""
        return self.truth.is_file() and self.said.is_file()


def fold_overrides(engine: str, overrides: Sequence[str]) -> list[str]:
    """The Hydra overrides of a fold: the caller's, then ``engine`` held out (and no single held-out voice)."""
    return [*overrides, f"data.corpus.splits.heldout_engines=[{engine}]", "data.corpus.splits.heldout_voices=[]"]


def _finished(run_dir: Path) -> bool:
    return (run_dir / "metrics.json").is_file() and (run_dir / "checkpoints" / "best.ckpt").is_file()


def train_fold(fold: Fold, overrides: Sequence[str], train_script: Path, mining: Mining = Mining()) -> Path:
    """Train one fold with ``train.py`` in child processes (their own Hydra runs), mining rounds included;
    return the last round's best checkpoint.

    A finished run (its ``metrics.json`` exists) is not trained again, so an
    interrupted sweep resumes where it stopped.
    """
    root = train_script.parent
    first = fold.round_dir(0)
    if not _finished(first):
        subprocess.run([sys.executable, str(train_script), *fold_overrides(fold.engine, overrides),
                        f"hydra.run.dir={first}"], check=True, cwd=root)
    for round_ in range(1, fold.rounds + 1):
        run_dir, previous = fold.round_dir(round_), fold.round_dir(round_ - 1) / "checkpoints" / "best.ckpt"
        if _finished(run_dir):
            continue
        subprocess.run([sys.executable, str(root / "scripts" / "mine_negatives.py"), *fold_overrides(fold.engine, overrides),
                        "--out", str(fold.mined), "--checkpoint", str(previous), "--threshold", str(mining.threshold),
                        "--hours", str(mining.hours), "--seed", str(round_), "--quiet"], check=True, cwd=root)
        subprocess.run([sys.executable, str(train_script), *fold_overrides(fold.engine, overrides),
                        f"data.user_folder={fold.mined}", f"init_from={previous}",
                        f"trainer.max_epochs={mining.epochs}", f"optim.lr={mining.lr}",
                        f"hydra.run.dir={run_dir}"], check=True, cwd=root)
    return fold.checkpoint


def music_rows(data: dict[str, Any], cache_root: Path, split: str = "test") -> list[dict[str, Any]]:
    """Real background excerpts (Debian music and ambience) of one split, as noise rows for streams.

    Their source tracks never give training excerpts (``backgrounds`` splits by file), so the
    streams carry music the model never heard. Empty when backgrounds are disabled or missing.
    """
    from audioconv import backgrounds

    config = data.get("backgrounds")
    if not config or not config.get("enabled", False):
        return []
    folder = backgrounds.build(backgrounds.BackgroundSettings.from_config(config), cache_root)
    if folder is None:
        return []
    index = json.loads((folder / "index.json").read_text())
    return [{"kind": "noise", "label": 0, "path": str(folder / e["file"]), "voice": "background"}
            for e in index["excerpts"] if e["split"] == split]


def make_fold_streams(
    fold: Fold, rows: Sequence[dict], config: streams.StreamConfig, count: int, seed: int,
    extra_noise: Sequence[dict] = (),
) -> dict[str, list[streams.Keyword]]:
    """Long streams of the held-out engine's voices (``rows``: the fold's view), with their truth CSV.

    The background is drawn from the corpus's held-out noise files and ``extra_noise`` (real music).
    """
    speech, noise_rows = streams.split_rows(rows, "heldout")
    noise_rows = [*noise_rows, *extra_noise]
    if not speech:
        raise ValueError(f"{fold.engine}: the held-out split is empty (is the engine in data.corpus.use?)")
    truth: dict[str, list[streams.Keyword]] = {}
    said: dict[str, list[streams.Utterance]] = {}
    fold.truth.parent.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        name = f"stream_{index:03d}.flac"
        said[name] = []
        wave, keywords = streams.compose_stream(speech, config, seed=[seed, index], noise_rows=noise_rows, said=said[name])
        streams.save_stream(fold.truth.parent / name, wave, config.sample_rate)
        truth[name] = keywords
    streams.write_said(fold.said, said)
    streams.write_truth(fold.truth, truth)
    return truth


def compose_streams(engines: Sequence[str], overrides: Sequence[str], out: Path, repo_root: Path,
                    stream_config: streams.StreamConfig, count: int, seed: int,
                    progress: Callable[[str], None] = print) -> list[Path]:
    """Each fold's streams alone, nothing trained: ``out/<engine>/streams/``, composed as ``run`` composes a
    fold's (its view's held-out voices, real music of the held-out tracks), e.g. under another
    ``stream_config`` (phone-band speech) to score a study's models on (``warp_probe.py --streams``).
    Streams already there are kept. Returns the truth files."""
    data = data_settings(overrides, repo_root)
    music = music_rows(data, repo_root / "data" / "backgrounds")
    truths = []
    for engine in engines:
        fold = Fold(engine, out / engine)
        if not fold.has_streams:
            view = corpus_manifest(fold_overrides(engine, overrides), root=repo_root)
            make_fold_streams(fold, corpus.read_manifest(view), stream_config, count, seed, music)
            progress(f"[{engine}] composed {count} stream(s) in {fold.truth.parent}")
        truths.append(fold.truth)
    return truths


SOURCE_KINDS = ("keyword", "confusable", "speech")  # what a false alarm can overlap; "background" when nothing


def _source_kind(event: Any, said: dict[str, list[streams.Utterance]]) -> tuple[str, list[streams.Utterance]]:
    """What one false alarm overlapped: the first of ``SOURCE_KINDS`` under it, else "background"; and the utterances."""
    under = [u for u in said.get(event.file, ()) if u.start < event.end and u.end > event.start]
    kinds = {u.kind for u in under}
    return next((k for k in SOURCE_KINDS if k in kinds), "background"), under


def recall_not_counting(e: ModelEvaluation, kinds: Sequence[str], excluded: str, target: float = 1.0) -> float:
    """Recall at ≤ ``target`` FA/h if false alarms of kind ``excluded`` (e.g. "confusable") were not counted.

    What the figure would be if the streams held no such words: how much of
    the gap they make. ``kinds`` are those of ``e.false_alarms`` (the highest
    ones, each as the sweep counts it), so only thresholds at or above the
    lowest listed alarm are tried when the list is full (below it, unlisted
    alarms could hide). With nothing excluded this is the sweep's own recall
    at the target.
    """
    alarms = [(event.score, kind) for event, kind in zip(e.false_alarms, kinds)]
    floor = min((score for score, _ in alarms), default=0.0) if len(alarms) >= evaluate.TOP_FALSE_ALARMS else 0.0
    best = 0.0
    for point in e.points:
        if point.threshold < floor or e.hours <= 0:
            continue
        counted = sum(1 for score, kind in alarms if score >= point.threshold and kind != excluded)
        if counted / e.hours <= target and e.keywords:
            best = max(best, point.hits / e.keywords)
    return best


def false_alarm_sources(e: ModelEvaluation, said: dict[str, list[streams.Utterance]], top: int = 10) -> dict[str, Any]:
    """What the highest-scoring false alarms overlapped: counts by kind, the ``top`` ones with their words,
    and the recall at ≤ 1 FA/h if confusable-word alarms were not counted (``recall_not_counting``).

    A false alarm on a keyword utterance is a second firing on it (on the words
    after it, or a lesser peak of a keyword that a higher one already hit); on
    nothing, it fired on the background alone. Counts are over ``e.false_alarms`` (the highest-scoring).
    """
    counts = {kind: 0 for kind in (*SOURCE_KINDS, "background")}
    listed, kinds = [], []
    for event in e.false_alarms:
        kind, under = _source_kind(event, said)
        counts[kind] += 1
        kinds.append(kind)
        if len(listed) < top:
            listed.append({"file": event.file, "start": event.start, "score": event.score,
                           "said": [f"{u.kind}: {u.text}" for u in under]})
    return {"counted": len(e.false_alarms), "by_kind": counts, "top": listed,
            "recall_at_1_not_counting_confusables": recall_not_counting(e, kinds, "confusable", 1.0)}


def evaluate_fold(fold: Fold, threshold: float | None) -> ModelEvaluation:
    """Scan the fold's streams with its best checkpoint (at ``threshold``, else the checkpoint's own)."""
    from audioconv import checkpoints, detect

    model, info = checkpoints.load_detector(fold.checkpoint)
    return _evaluate_on_streams(fold.engine, model, detect.detection_settings(info, threshold), fold.truth)


def evaluate_on_streams(models: Mapping[str, tuple[Any, dict[str, Any]]], truth_csv: Path,
                        targets: Sequence[float] = evaluate.FA_TARGETS,
                        progress: Callable[[str], None] | None = None) -> list[ModelEvaluation]:
    """Every detector in ``models`` (name -> (detector, settings)) over a fold's streams, one read of each file."""
    truth = streams.read_truth(truth_csv)
    files = streams.truth_paths(truth_csv, list(truth))
    return evaluate.evaluate_models(models, files, truth, targets=targets, progress=progress)


def _evaluate_on_streams(name: str, model: Any, settings: dict[str, Any], truth_csv: Path) -> ModelEvaluation:
    return evaluate_on_streams({name: (model, settings)}, truth_csv)[0]


def _counts_at(e: ModelEvaluation, threshold: float) -> tuple[int, int]:
    """(hits, false alarms) of one fold when events scoring >= ``threshold`` are kept.

    Sweep points sit at event scores, so the counts at any threshold are those
    of the first point at or above it (none above: nothing is kept).
    """
    point = min((p for p in e.points if p.threshold >= threshold), key=lambda p: p.threshold, default=None)
    return (point.hits, point.false_alarms) if point is not None else (0, 0)


def pooled_threshold(evaluations: Sequence[ModelEvaluation], max_false_alarms_per_hour: float) -> tuple[float, float]:
    """(threshold, pooled recall): the lowest swept threshold whose false alarms over every fold's
    streams, pooled, stay at or under the target (the lowest keeps the most recall)."""
    keywords = sum(e.keywords for e in evaluations)
    hours = sum(e.hours for e in evaluations)
    for threshold in sorted({p.threshold for e in evaluations for p in e.points}):
        counts = [_counts_at(e, threshold) for e in evaluations]
        if hours > 0 and sum(a for _, a in counts) / hours <= max_false_alarms_per_hour:
            return threshold, sum(h for h, _ in counts) / keywords if keywords else float("nan")
    return float("nan"), 0.0


def fold_row(engine: str, e: ModelEvaluation, metrics: dict[str, Any], sources: dict[str, Any] | None = None) -> dict[str, Any]:
    recall_1, threshold_1 = e.at_targets.get(1.0, (float("nan"), float("nan")))
    recall_05, _ = e.at_targets.get(0.5, (float("nan"), float("nan")))
    return {
        "engine": engine,
        "keywords": e.keywords,
        "hours": e.hours,
        "recall_at_1_fa_per_hour": recall_1,
        "threshold_at_1_fa_per_hour": threshold_1,
        "recall_at_0.5_fa_per_hour": recall_05,
        "threshold": e.settings["threshold"],
        "recall_at_threshold": e.default.recall,
        "false_alarms_per_hour_at_threshold": e.default.false_alarms_per_hour,
        "heldout_clip_auroc": metrics.get("heldout/auroc", float("nan")),
        "voices": e.voices,
        "false_alarm_sources": sources,
    }


def format_table(rows: Sequence[dict[str, Any]], pooled: dict[str, Any]) -> str:
    """The README table: one line per held-out engine, then the pooled threshold."""
    f = evaluate._fmt  # noqa: SLF001 - one number format for every report
    lines = [
        "| held-out engine | keywords | hours | recall @ ≤1 FA/h | recall @ ≤0.5 FA/h | threshold | recall @ threshold "
        "| FA/h @ threshold | clip AUROC |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['engine']} | {r['keywords']} | {r['hours']:.2f} | {f(r['recall_at_1_fa_per_hour'])} "
            f"| {f(r['recall_at_0.5_fa_per_hour'])} | {r['threshold']:.2f} | {f(r['recall_at_threshold'])} "
            f"| {f(r['false_alarms_per_hour_at_threshold'], '.1f')} | {f(r['heldout_clip_auroc'], '.4f')} |"
        )
    lines.append("")
    lines.append(f"Pooled over every fold: threshold {f(pooled['threshold'])} keeps ≤ {pooled['target']:g} FA/h "
                 f"with recall {f(pooled['recall'])}.")
    lines.append("")
    lines.append("| held-out engine | voice | keywords | recall @ threshold | recall @ ≤1 FA/h |")
    lines.append("|---|---|---|---|---|")
    for r in rows:
        for v in r["voices"]:
            lines.append(f"| {r['engine']} | {v['voice']} | {v['keywords']} | {f(v['recall'])} "
                         f"| {f(v.get('recall_at_1_fa_per_hour', float('nan')))} |")
    sourced = [r for r in rows if r.get("false_alarm_sources")]
    if sourced:
        lines += ["", "What fires: the highest-scoring false alarms of each fold, by what they overlapped "
                  "(keyword: a second firing on a keyword utterance, below the peak that hit it or outside its hit window).", "",
                  "| held-out engine | false alarms | " + " | ".join((*SOURCE_KINDS, "background"))
                  + " | recall @ ≤1 FA/h not counting confusable-word alarms | the three highest |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in sourced:
            src = r["false_alarm_sources"]
            top = "; ".join(f"{a['score']:.3f} " + " + ".join(f"\"{s.split(': ', 1)[-1]}\"" for s in a["said"])
                            for a in src["top"][:3])
            lines.append(f"| {r['engine']} | {src['counted']} | "
                         + " | ".join(str(src["by_kind"][k]) for k in (*SOURCE_KINDS, "background"))
                         + f" | {f(src.get('recall_at_1_not_counting_confusables', float('nan')))} | {top} |")
    return "\n".join(lines) + "\n"


def run(
    engines: Sequence[str],
    overrides: Sequence[str],
    out: Path,
    repo_root: Path,
    stream_config: streams.StreamConfig,
    count: int,
    seed: int,
    threshold: float | None,
    target: float = 1.0,
    progress: Callable[[str], None] = print,
    mining: Mining = Mining(),
) -> tuple[dict[str, Any], list[ModelEvaluation]]:
    """Every fold end to end; writes ``cross_engine.json`` and ``cross_engine.md`` into ``out``.

    Returns what the JSON holds and each fold's evaluation (its sweep: recall at any false-alarm rate).
    """
    rows, evaluations = [], []
    data = data_settings(overrides, repo_root)
    music = music_rows(data, repo_root / "data" / "backgrounds")
    for engine in engines:
        fold = Fold(engine, out / engine, mining.rounds)
        view = corpus_manifest(fold_overrides(engine, overrides), root=repo_root)
        progress(f"[{engine}] training without it (view {view.parent.name}), {mining.rounds} mining round(s)")
        train_fold(fold, overrides, repo_root / "train.py", mining)
        if not fold.has_streams:
            make_fold_streams(fold, corpus.read_manifest(view), stream_config, count, seed, music)
        progress(f"[{engine}] scanning {count} stream(s) of its voices")
        evaluation = evaluate_fold(fold, threshold)
        metrics = json.loads((fold.run_dir / "metrics.json").read_text())
        sources = false_alarm_sources(evaluation, streams.read_said(fold.said)) if fold.said.is_file() else None
        rows.append(fold_row(engine, evaluation, metrics.get("metrics", metrics), sources))
        evaluations.append(evaluation)
        progress(f"[{engine}] recall at <=1 FA/h {rows[-1]['recall_at_1_fa_per_hour']:.3f}")
    pooled_value, pooled_recall = pooled_threshold(evaluations, target)
    pooled = {"target": target, "threshold": pooled_value, "recall": pooled_recall}
    result = {"overrides": list(overrides), "mining": asdict(mining), "folds": rows, "pooled": pooled}
    write_results(out, result)
    return result, evaluations


def write_results(out: Path, result: dict[str, Any]) -> None:
    """A cross-engine run's ``cross_engine.json`` and its table ``cross_engine.md``, each written atomically."""
    write_text_atomically(out / RESULTS_FILE, json.dumps(evaluate.jsonable(result), indent=2) + "\n")
    write_text_atomically(out / TABLE_FILE, format_table(result["folds"], result["pooled"]))


# --------------------------------------------------------------------------- seeds and their ensemble


def seed_folder(out: Path, seed: int) -> Path:
    """Where one training seed's folds live in a seed study: ``out/seed<N>``, a cross-engine run of its own."""
    return out / f"seed{seed}"


def evaluate_ensemble(engine: str, folds: Sequence[Fold], threshold: float | None,
                      combine: str = "probabilities") -> ModelEvaluation:
    """The same fold trained from several seeds, as one ``Ensemble`` (``combine``: how), scanned over the fold's streams.

    The streams come from the corpus view and the stream seed, neither of which
    follows the training seed, so every seed's fold composed the same ones:
    checked by their digests (``streams_digest``: truth, words said, audio) before anything is scanned.
    """
    from audioconv import checkpoints, detect

    if len({streams_digest(fold.truth.parent) for fold in folds}) != 1:
        raise ValueError(f"{engine}: the seeds' streams differ ({', '.join(str(f.truth) for f in folds)}); "
                         "were they trained on different corpora (data.corpus.seed)?")
    model, info = checkpoints.load_ensemble([fold.checkpoint for fold in folds], combine)
    return _evaluate_on_streams(engine, model, detect.detection_settings(info, threshold), folds[0].truth)


def streams_digest(folder: Path) -> str:
    """A fold's streams named by what they hold: the SHA-1 of its truth (where the keywords are), what was
    said around them, and every stream file's bytes (the background too). Equal digests: the same audio."""
    import hashlib

    digest = hashlib.sha1()
    truth = folder / "truth.csv"
    audio = sorted(set(streams.truth_paths(truth, list(streams.read_truth(truth))).values()))
    for path in [truth, folder / "said.csv", *audio]:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"(missing)")
    return digest.hexdigest()[:12]


def _spread(values: Sequence[float]) -> dict[str, float]:
    import numpy as np

    from audioconv.compare import sample_sd  # exactly 0 for equal values, as the t-test reads them

    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), "sd": sample_sd(array), "min": float(array.min()), "max": float(array.max())}


def seed_row(engine: str, per_seed: Sequence[ModelEvaluation], ensembles: Mapping[str, ModelEvaluation],
             targets: Sequence[float] = SEED_TARGETS) -> dict[str, Any]:
    """One fold of a seed study: recall at each false-alarm target for every seed, their spread, and each
    ensemble's (``ensembles``: combine mode -> its evaluation)."""
    first = next(iter(ensembles.values()))
    row: dict[str, Any] = {"engine": engine, "keywords": first.keywords, "hours": first.hours}
    for target in targets:
        recalls = [evaluate.recall_at(e.points, target)[0] for e in per_seed]
        row[f"recall_at_{target:g}_fa_per_hour"] = {
            "seeds": recalls, **_spread(recalls),
            "ensemble": {combine: evaluate.recall_at(e.points, target)[0] for combine, e in ensembles.items()},
        }
    return row


def format_seed_table(seeds: Sequence[int], rows: Sequence[dict[str, Any]], pooled: dict[str, Any],
                      targets: Sequence[float] = SEED_TARGETS) -> str:
    """The README table of a seed study: per fold and target, each seed, mean ± sample sd, and the ensembles."""
    f = evaluate._fmt  # noqa: SLF001 - one number format for every report
    combines = list(pooled["ensemble"])
    lines = []
    for target in targets:
        lines += [f"Recall at ≤ {target:g} FA/h:", "",
                  "| held-out engine | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± sd (sample) | "
                  + " | ".join(f"ensemble, mean {ENSEMBLE_LABELS[c]}" for c in combines) + " |",
                  "|---|" + "---|" * (len(seeds) + 1 + len(combines))]
        for r in rows:
            cell = r[f"recall_at_{target:g}_fa_per_hour"]
            lines.append(f"| {r['engine']} | " + " | ".join(f(v) for v in cell["seeds"])
                         + f" | {f(cell['mean'])} ± {f(cell['sd'])} | "
                         + " | ".join(f(cell["ensemble"][c]) for c in combines) + " |")
        lines.append("")
    lines.append(f"Pooled over every fold at ≤ {pooled['target']:g} FA/h: "
                 + ", ".join(f"seed {s} {f(r)} (threshold {f(t)})" for s, (t, r) in zip(seeds, pooled["seeds"]))
                 + "".join(f"; ensemble, mean {ENSEMBLE_LABELS[c]}, {f(r)} (threshold {f(t)})"
                           for c, (t, r) in pooled["ensemble"].items()) + ".")
    return "\n".join(lines) + "\n"


def run_seeds(
    engines: Sequence[str],
    overrides: Sequence[str],
    out: Path,
    repo_root: Path,
    stream_config: streams.StreamConfig,
    count: int,
    seed: int,
    training_seeds: Sequence[int],
    threshold: float | None,
    target: float = 1.0,
    progress: Callable[[str], None] = print,
    mining: Mining = Mining(),
) -> dict[str, Any]:
    """The cross-engine folds once per training seed (``out/seed<N>``, same corpus, same streams), then each
    fold's seeds averaged into one ``Ensemble`` and scored again (``out/ensemble``).

    One run per recipe cannot rank recipes when a seed moves a fold by more than
    the recipes differ: the study gives each fold's mean and spread over seeds,
    and what averaging the seeds' models buys. Writes ``seeds.json`` and ``seeds.md``.
    """
    if len(set(training_seeds)) != len(training_seeds) or len(training_seeds) < 2:
        raise ValueError(f"a seed study needs at least two distinct seeds, got {list(training_seeds)}")
    per_seed: list[list[ModelEvaluation]] = []
    for training_seed in training_seeds:
        progress(f"seed {training_seed}")
        _, evaluations = run(engines, [*overrides, f"seed={training_seed}"], seed_folder(out, training_seed),
                             repo_root, stream_config, count, seed, threshold, target, progress, mining)
        per_seed.append(evaluations)
    rows, ensemble_rows = [], []
    ensembles: dict[str, list[ModelEvaluation]] = {combine: [] for combine in COMBINE}
    for index, engine in enumerate(engines):
        folds = [Fold(engine, seed_folder(out, s) / engine, mining.rounds) for s in training_seeds]
        progress(f"[{engine}] the {len(folds)} seeds' models averaged, on the same streams")
        fold_ensembles = {combine: evaluate_ensemble(engine, folds, threshold, combine) for combine in COMBINE}
        for combine, evaluation in fold_ensembles.items():
            ensembles[combine].append(evaluation)
        rows.append({**seed_row(engine, [evaluations[index] for evaluations in per_seed], fold_ensembles),
                     "streams": streams_digest(folds[0].truth.parent)})  # what compare.py checks two studies by
        ensemble = fold_ensembles[COMBINE[0]]  # the default way of averaging gets the full table
        sources = false_alarm_sources(ensemble, streams.read_said(folds[0].said)) if folds[0].said.is_file() else None
        ensemble_rows.append(fold_row(engine, ensemble, {}, sources))
    pooled = {"target": target, "seeds": [pooled_threshold(e, target) for e in per_seed],
              "ensemble": {combine: pooled_threshold(e, target) for combine, e in ensembles.items()}}
    ensemble_pooled = pooled["ensemble"][COMBINE[0]]
    result = {"overrides": list(overrides), "training_seeds": list(training_seeds), "stream_seed": seed,
              "folds": rows, "pooled": pooled}
    write_text_atomically(out / SEEDS_RESULTS_FILE, json.dumps(evaluate.jsonable(result), indent=2) + "\n")
    write_text_atomically(out / SEEDS_TABLE_FILE, format_seed_table(training_seeds, rows, pooled))
    write_results(out / ENSEMBLE_DIR, {
        "overrides": list(overrides), "training_seeds": list(training_seeds), "combine": COMBINE[0],
        "folds": ensemble_rows, "pooled": {"target": target, "threshold": ensemble_pooled[0], "recall": ensemble_pooled[1]},
    })
    return result
