#!/usr/bin/env python
"""Hard-negative mining: keep the windows of keyword-free audio where a detector fires, as training negatives.

    python scripts/mine_negatives.py --out data/mined                        # default model, train negatives of the corpus
    python scripts/mine_negatives.py --out data/mined --checkpoint outputs/conv1d/RUN/checkpoints/best.ckpt --threshold 0.3
    python scripts/mine_negatives.py --out data/mined --folder ~/recordings/no_keyword --no-corpus
    python train.py data.user_folder=data/mined                              # then train with them

Sources: the corpus's non-keyword utterances of one split (default train),
each used once, joined into 10-minute streams (``--hours`` caps how much),
and/or every audio file below each ``--folder`` (it must hold no keyword).
The corpus is the default config's (Hydra overrides such as
``experiment=tiny`` may follow the options) unless ``--manifest`` names one;
its keyword (``data.corpus.keyword``) is never spelled across a join.
Each event at the threshold (peak-picked, one per event) gives one clip of
the training clip length (``data.clips.clip_seconds``), the firing window in
its middle, written to ``OUT/negative/<source>/``; ``OUT/mined.csv`` indexes
them. Prints one summary line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audioconv.cli.detect import probability  # torch-free: the argument types of audioconv-detect
from audioconv.registry import MODEL_NAMES

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides choosing the corpus and clip length")
    add("--out", type=Path, required=True, help="output folder, laid out as a user folder (negative/...)")
    add("--model", choices=MODEL_NAMES, help="shipped weights (default: the one src/audioconv/weights/default.txt names)")
    add("--checkpoint", type=Path, help=".safetensors or train.py .ckpt; overrides --model")
    add("--threshold", type=probability, help="fire threshold (default: the model's own)")
    add("--folder", type=Path, action="append", default=[], help="a folder of your own keyword-free audio (repeatable)")
    add("--no-corpus", action="store_true", help="do not mine the corpus (only --folder)")
    add("--manifest", type=Path, help="a corpus manifest.csv instead of the default config's corpus")
    add("--split", default="train", choices=("train", "val", "test", "heldout"), help="corpus split to mine (default train)")
    add("--hours", type=float, help="mine at most this much corpus audio")
    add("--max", type=int, dest="max_windows", help="keep only the highest-scoring N windows")
    add("--clip-seconds", type=float, help="clip length (default: data.clips.clip_seconds of the config)")
    add("--seed", type=int, default=0, help="order in which corpus utterances are joined")
    add("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if args.no_corpus and not args.folder:
        parser.error("--no-corpus needs at least one --folder")
    if args.max_windows is not None and args.max_windows < 0:
        parser.error("--max must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import itertools

    from audioconv import audio, checkpoints, config, corpus, detect, mining

    def progress(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    try:
        path = args.checkpoint or checkpoints.shipped_weights(args.model)
        model, info = checkpoints.load_detector(path)
        settings = detect.detection_settings(info, args.threshold)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    clip_seconds = args.clip_seconds
    needs_config = clip_seconds is None or not args.no_corpus  # the clip length; the corpus and its keyword
    data = config.data_settings(args.overrides, ROOT) if needs_config else {}
    if clip_seconds is None:
        clip_seconds = float(data["clips"]["clip_seconds"])
    clip_samples = int(round(clip_seconds * model.sample_rate))

    sources = []
    if not args.no_corpus:
        manifest = args.manifest or corpus.build_corpus(data["corpus"], ROOT / "data" / "corpus")
        rows = corpus.read_manifest(manifest)
        max_seconds = args.hours * 3600 if args.hours is not None else None
        sources.append(mining.corpus_negative_streams(rows, args.split, args.seed, max_seconds=max_seconds,
                                                      sample_rate=model.sample_rate,
                                                      keyword=data["corpus"]["keyword"]))
        progress(f"corpus: split {args.split} of {manifest}")
    for folder in args.folder:
        sources.append(mining.folder_sources(folder, sample_rate=model.sample_rate))
    progress(f"model: {path}, threshold {settings['threshold']:.2f}, clips of {clip_seconds:g} s")
    try:
        summary = mining.mine(
            model,
            itertools.chain(*sources),
            args.out,
            clip_samples=clip_samples,
            max_windows=args.max_windows,
            progress=progress,
            **settings,  # threshold, smoothing, refractory period
        )
    except (audio.AudioError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary.line() + f"; train with data.user_folder={args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
