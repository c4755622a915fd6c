#!/usr/bin/env python
"""Cross-engine validation: train without each speech engine in turn, then detect in long streams of its voices.

    python scripts/cross_engine.py                                  # every engine in data.corpus.use, defaults
    python scripts/cross_engine.py --engines piper kokoro -- trainer.max_epochs=12
    python scripts/cross_engine.py --out runs/xe --count 2 --minutes 5 -- model=conv1d
    python scripts/cross_engine.py --mine-rounds 1 -- trainer.max_epochs=12   # each fold mined and fine-tuned once
    python scripts/cross_engine.py --training-seeds 1234 7 42 -- trainer.max_epochs=12  # each fold from 3 seeds, averaged

Writes OUT/<engine>/run (the training run), OUT/<engine>/streams (streams and
truth.csv), OUT/cross_engine.json and OUT/cross_engine.md (the README table:
recall at <= 1 and <= 0.5 FA/h, recall and FA/h at a threshold, per voice, and
the threshold that keeps all folds pooled at <= 1 FA/h). A finished fold is not
trained again. Hydra overrides for every fold's training go after ``--``.

With ``--training-seeds``, the whole run is repeated per training seed under
OUT/seed<N>/ (same corpus, same streams), and OUT/seeds.md gives each fold's
recall for every seed, their mean and spread, and that of the seeds' models
averaged into one (OUT/ensemble/cross_engine.md: its full table).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--engines", nargs="+", help="engines to hold out, one fold each (default: every engine in data.corpus.use)")
    add("--out", type=Path, default=ROOT / "runs" / "cross_engine", help="output folder")
    add("--count", type=int, default=2, help="streams per held-out engine")
    add("--minutes", type=float, default=5.0, help="length of each stream")
    add("--seed", type=int, default=0, help="stream seed")
    add("--training-seeds", type=int, nargs="+", metavar="SEED",
        help="every fold trained once per seed (OUT/seed<N>), then the seeds' models averaged (OUT/ensemble); "
             "--seed stays the streams' seed")
    add("--threshold", type=float, help="threshold for the recall / FA/h columns (default: each fold's own)")
    add("--target", type=float, default=1.0, help="false alarms per hour for the pooled threshold")
    add("--mine-rounds", type=int, default=0, help="rounds of hard-negative mining and fine-tuning per fold (default 0)")
    add("--mine-hours", type=float, default=2.0, help="hours of the fold's training negatives scanned per round")
    add("--mine-threshold", type=float, default=0.1, help="windows scoring at least this are mined")
    add("--mine-epochs", type=int, default=6, help="fine-tuning epochs per mining round")
    add("--narrowband", type=float, default=0.0, metavar="P",
        help="share of the streams' utterances heard through a telephone line under a wideband background")
    add("--streams-only", action="store_true",
        help="compose each fold's streams in OUT/<engine>/streams and stop (no training): other streams to score "
             "a study's models on, with scripts/warp_probe.py --streams OUT")
    add("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides for training (after --)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.minutes <= 0:
        parser.error("--count must be >= 1 and --minutes > 0")
    if args.mine_rounds < 0 or args.mine_hours <= 0 or args.mine_epochs < 1 or not 0.0 <= args.mine_threshold <= 1.0:
        parser.error("need --mine-rounds >= 0, --mine-hours > 0, --mine-epochs >= 1 and --mine-threshold in [0, 1]")
    if not 0.0 <= args.narrowband <= 1.0:
        parser.error("--narrowband must be in [0, 1]")
    if args.streams_only and (args.training_seeds or args.mine_rounds):
        parser.error("--streams-only trains nothing: it excludes --training-seeds and --mine-rounds")
    seeds = args.training_seeds
    if seeds is not None and (len(set(seeds)) != len(seeds) or len(seeds) < 2):
        parser.error("--training-seeds needs at least two distinct seeds")
    if seeds is not None and any(o.split("=", 1)[0].lstrip("+~") == "seed" for o in args.overrides):
        parser.error("--training-seeds sets each run's seed: leave seed=... out of the overrides")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from audioconv import cross_engine, streams
    from audioconv.config import corpus_settings

    settings = corpus_settings(args.overrides, ROOT)
    engines = args.engines or settings["use"]
    config = streams.StreamConfig(seconds=args.minutes * 60, keyword=settings["keyword"], narrowband_prob=args.narrowband)
    mining = cross_engine.Mining(args.mine_rounds, args.mine_hours, args.mine_threshold, args.mine_epochs)
    progress = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    if args.streams_only:
        try:
            truths = cross_engine.compose_streams(engines, args.overrides, args.out, ROOT, config, args.count, args.seed,
                                                  progress=progress)
        except (ValueError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print("\n".join(str(truth) for truth in truths))
        return 0
    try:
        if args.training_seeds:
            result = cross_engine.run_seeds(engines, args.overrides, args.out, ROOT, config, args.count, args.seed,
                                            args.training_seeds, args.threshold, args.target, progress=progress,
                                            mining=mining)
        else:
            result, _ = cross_engine.run(engines, args.overrides, args.out, ROOT, config, args.count, args.seed,
                                         args.threshold, args.target, progress=progress, mining=mining)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    table = cross_engine.SEEDS_TABLE_FILE if args.training_seeds else cross_engine.TABLE_FILE
    print((args.out / table).read_text())
    return 0 if result["folds"] else 1


if __name__ == "__main__":
    sys.exit(main())
