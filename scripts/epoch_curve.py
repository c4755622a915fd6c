#!/usr/bin/env python
"""Recall on unseen engines after every epoch of a cross-engine study: how long to train for voices never heard.

    python scripts/cross_engine.py --training-seeds 1234 7 --out runs/xe_curve --count 6 --minutes 10 -- \
        trainer.max_epochs=12 checkpoint.every_epoch=true
    python scripts/epoch_curve.py runs/xe_curve                      # prints the table
    python scripts/epoch_curve.py runs/xe_curve --out runs/xe_curve/epochs.md
    python scripts/epoch_curve.py runs/xe_curve --epochs 2 4 6 8 10 12     # every other epoch: half the time

Every epoch's weights (``checkpoint.every_epoch=true`` keeps them) are scanned
over their fold's streams, as ``cross_engine`` scans the best checkpoint; the
table gives each held-out engine's recall at <= 1 false alarm per hour, the
pooled recall at <= 1 and <= 5 (one threshold for every fold), and the
in-domain validation loss, per epoch, averaged over the study's seeds. The
numbers also go to a ``.json`` beside ``--out``. Exit status 2 with a
one-line error when the folder holds no per-epoch checkpoints.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path, help="a cross-engine study folder (seed<N>/ folders, or one run's folds)")
    parser.add_argument("--engines", nargs="+", help="folds to score (default: every fold with streams)")
    parser.add_argument("--epochs", nargs="+", type=int, help="score only these epochs (counted from 1), e.g. 2 4 6 8 10 12")
    parser.add_argument("--out", type=Path, help="also write the table here (Markdown), and the numbers beside it (.json)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if args.out is not None and args.out.suffix == ".json":
        parser.error(f"--out {args.out}: the table is Markdown (the numbers go to a .json beside it); name it .md")
    from audioconv import epoch_curve, evaluate
    from audioconv.files import write_text_atomically

    if not args.study.is_dir():
        print(f"error: {args.study}: not a folder", file=sys.stderr)
        return 2
    progress = (lambda _: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        curve = epoch_curve.study_curve(args.study, args.engines, epochs=args.epochs, progress=progress)
    except (ValueError, OSError) as error:  # CurveError, CheckpointError, AudioError name their file
        print(f"error: {str(error).splitlines()[0] if str(error) else type(error).__name__}", file=sys.stderr)
        return 2
    table = epoch_curve.format_curve(curve)
    if args.out:
        write_text_atomically(args.out, table)
        write_text_atomically(args.out.with_suffix(".json"), json.dumps(evaluate.jsonable(curve), indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
