#!/usr/bin/env python
"""Compare two cross-engine seed studies: does recipe B find more unseen-voice keywords than recipe A?

    python scripts/cross_engine.py --training-seeds 1234 7 42 --out runs/xe_seeds --count 6 --minutes 10 -- trainer.max_epochs=12
    python scripts/cross_engine.py --training-seeds 1234 7 42 --out runs/xe_new --count 6 --minutes 10 -- trainer.max_epochs=12 KEY=VALUE
    python scripts/compare_studies.py runs/xe_seeds runs/xe_new            # prints the table
    python scripts/compare_studies.py runs/xe_seeds runs/xe_new --out runs/xe_new/compare.md

Per held-out engine and false-alarm target: each study's mean recall over its
seeds, the difference, and Welch's t-test p-value (adjusted for the number of
folds and targets); before them the pooled recall (one
threshold for every fold) the same way, and each study's seed ensemble. Only
folds scored on the same streams are compared (checked by digest; a recipe that
re-synthesizes one engine's part changes that fold's streams, and it is left
out, with the pooled line). Exit status 2 with a one-line error when a study
cannot be read or no fold shares its streams.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="the baseline study (its folder, or its seeds.json)")
    parser.add_argument("b", type=Path, help="the candidate study")
    parser.add_argument("--out", type=Path, help="also write the table here (Markdown)")
    args = parser.parse_args(argv)
    from audioconv import compare
    from audioconv.files import write_text_atomically

    try:
        result = compare.compare(compare.read_study(args.a), compare.read_study(args.b))
    except compare.StudyMismatch as error:
        print(f"error: {args.a} vs {args.b}: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    table = compare.format_comparison(result, str(args.a), str(args.b))
    if args.out:
        write_text_atomically(args.out, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
