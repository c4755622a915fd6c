#!/usr/bin/env python
"""Print the layer-zoo ablation as a Markdown table, from the runs of

    python train.py -m experiment=ablation "+ablation=glob(*)"

Each run folder (multirun/ablation/<name>/) holds the metrics.json that train.py writes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COLUMNS = [
    ("parameters", "params", "{:,.0f}"),
    ("macs_per_second", "MACs/s", "{:.2e}"),
    ("receptive_field", "RF (ms)", "{:.0f}"),
    ("test/accuracy", "test acc", "{:.3f}"),
    ("test/auroc", "test AUROC", "{:.4f}"),
    ("test/false_alarms_per_hour", "test FA/h", "{:.1f}"),
    ("heldout/auroc", "held-out AUROC", "{:.4f}"),
    ("heldout/false_alarms_per_hour", "held-out FA/h", "{:.1f}"),
    ("fit_seconds", "train (s)", "{:.0f}"),
]


def row(report: dict, sample_rate: int = 16_000) -> list[str]:
    values = {**report, **report["metrics"], "receptive_field": 1000 * report["receptive_field"] / sample_rate}
    return [fmt.format(values[key]) if key in values else "-" for key, _, fmt in COLUMNS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, nargs="?", default=Path("multirun/ablation"))
    args = parser.parse_args(argv)
    reports = sorted(args.folder.glob("*/metrics.json"))
    if not reports:
        print(f"error: {args.folder}: no */metrics.json (run the multirun first)", file=sys.stderr)
        return 1
    print("| variant | " + " | ".join(title for _, title, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for path in reports:
        print(f"| {path.parent.name} | " + " | ".join(row(json.loads(path.read_text()))) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
