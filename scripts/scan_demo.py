#!/usr/bin/env python
"""Draw the "a CNN is a scanned detector" figures: `python scripts/scan_demo.py --out docs/figures`.

Writes scan.png (a recording with two keywords: waveform, log-mel, first-layer
feature maps, frame scores, the window behind the best frames), shift.png
(the same word at several offsets: the scores shift, their max does not) and
receptive_field.png (receptive field and hop, layer by layer, both models).

Weights: --checkpoint when given, else the shipped weights (src/audioconv/weights/), else the
newest outputs/<model>/*/checkpoints/best.ckpt, else random weights (said
loudly in every title). The logic lives in audioconv.figures.
"""

from __future__ import annotations

import argparse
import logging
import sys

from audioconv import figures
from audioconv.checkpoints import CheckpointError
from audioconv.registry import MODEL_NAMES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for scan.png, shift.png, receptive_field.png")
    parser.add_argument("--model", choices=MODEL_NAMES, help="which detector (default: the shipped default)")
    parser.add_argument("--checkpoint", help="a .safetensors or train.py .ckpt file (overrides --model)")
    parser.add_argument("--seed", type=int, default=0, help="picks the voice, utterances, gaps and noise (default 0)")
    parser.add_argument("--source", choices=figures.SOURCES, default="auto",
                        help="where the demo speech comes from: the corpus test split, espeak-ng, or auto (corpus if any)")
    parser.add_argument("--corpus", help="a corpus folder or its manifest.csv (default: the first under data/corpus/)")
    args = parser.parse_args(argv)
    logging.basicConfig(format="scan_demo: %(message)s")
    try:
        paths, notes = figures.make_figures(args.out, args.model, args.checkpoint, args.seed, args.source, args.corpus)
    except (CheckpointError, FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"scan_demo: {error}", file=sys.stderr)
        return 2
    for note in notes:
        print(note, file=sys.stderr)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
