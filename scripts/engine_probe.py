"""Can the engine still be read from a detector's features? A linear probe on its time-mean ``embed``.

    python scripts/engine_probe.py data/corpus/view-XXXX/manifest.csv runs/xe_adv05/piper/run/checkpoints/best.ckpt [more checkpoints]

Takes ``--per-engine`` clean training utterances of each engine in the manifest
(``--split``, seeded), the first ``--seconds`` of each (zero-padded), and prints
for every checkpoint the probe's cross-validated accuracy beside chance. Used to
check what domain-adversarial training (``adversary.weight``) removed.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np
import torch

from audioconv import audio, corpus
from audioconv.adversary import engine_probe
from audioconv.checkpoints import CheckpointError, load_detector


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="a corpus view's manifest.csv")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="train.py checkpoints or .safetensors weights")
    parser.add_argument("--split", default="train")
    parser.add_argument("--per-engine", type=int, default=120)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rows = [r for r in corpus.read_manifest(args.manifest) if r["split"] == args.split and r["kind"] != "noise"]
    by_engine: dict[str, list[dict]] = collections.defaultdict(list)
    for row in rows:
        by_engine[row["engine"]].append(row)
    if len(by_engine) < 2:
        sys.exit(f"{args.manifest}: the {args.split} split has {len(by_engine)} engine(s); a probe needs two")
    rng = np.random.default_rng(args.seed)
    picked = [rs[i] for _, rs in sorted(by_engine.items()) for i in rng.choice(len(rs), min(args.per_engine, len(rs)), replace=False)]
    length = int(args.seconds * audio.SAMPLE_RATE)
    waves = torch.from_numpy(np.stack([np.pad(w[:length], (0, length - len(w[:length])))
                                       for w in (audio.load(r["path"]) for r in picked)])).float()
    engines = [r["engine"] for r in picked]
    chance = max(collections.Counter(engines).values()) / len(engines)
    failed = 0
    for path in args.checkpoints:
        try:
            model, _ = load_detector(path)
        except (CheckpointError, OSError, ValueError) as error:
            print(f"{path}: {error}", file=sys.stderr)
            failed += 1
            continue
        accuracy = engine_probe(model, waves, engines, seed=args.seed)
        print(f"{path}: engine read from the features {accuracy:.3f} of the time (chance {chance:.3f}, {len(engines)} clips)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
