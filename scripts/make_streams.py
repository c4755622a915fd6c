#!/usr/bin/env python
"""Compose long evaluation streams with keyword truth from one split of the corpus.

    python scripts/make_streams.py --split heldout --count 3 --minutes 5 --seed 0 --out data/streams/heldout
    python scripts/make_streams.py --split test --manifest data/corpus/<key>/manifest.csv --out /tmp/streams
    python scripts/make_streams.py --split heldout --keywords-per-minute 0 --out /tmp/negative   # no keyword at all

Writes ``OUT/stream_000.wav`` ... (``--format flac`` for half the size) and
``OUT/truth.csv`` with columns ``file,start,end,voice,text``: one row per
keyword, times in seconds, ``file`` relative to the folder of truth.csv (a
stream with no keyword gets one row with empty times). ``scripts/evaluate.py
--truth OUT/truth.csv`` reads it. The corpus is the default config's
(``conf/config.yaml``; Hydra overrides such as ``experiment=tiny`` may follow
the options), built first if missing, unless ``--manifest`` names another;
the keyword that no two joined utterances may spell across their junction is
always the config's (``data.corpus.keyword``).
The same corpus, options and seed give the same streams.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides choosing the corpus (e.g. experiment=tiny)")
    add("--split", default="heldout", choices=("test", "heldout", "val", "train"),
        help="corpus split the speech comes from (default heldout: voices never trained on)")
    add("--count", type=int, default=3, help="number of streams")
    add("--minutes", type=float, default=5.0, help="length of each stream")
    add("--seed", type=int, default=0)
    add("--out", type=Path, required=True, help="output folder (stream files and truth.csv)")
    add("--manifest", type=Path, help="a corpus manifest.csv instead of the default config's corpus")
    add("--format", choices=("wav", "flac"), default="wav", help="16-bit PCM WAV or FLAC (lossless, ~half the size)")
    add("--keywords-per-minute", type=float, help="mean keyword rate (default: StreamConfig's)")
    add("--snr", type=float, nargs=2, metavar=("LOW", "HIGH"), help="speech-to-background SNR range in dB")
    add("--no-background", action="store_true", help="no background noise")
    add("--narrowband", type=float, default=0.0, metavar="P",
        help="share of utterances heard through a telephone line, under a wideband background (default 0)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.minutes <= 0:
        parser.error("--count must be >= 1 and --minutes > 0")
    if not 0.0 <= args.narrowband <= 1.0:
        parser.error("--narrowband must be in [0, 1]")
    if args.keywords_per_minute is not None and args.keywords_per_minute < 0:
        parser.error("--keywords-per-minute must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from dataclasses import replace

    from audioconv import corpus, streams
    from audioconv.config import corpus_settings

    settings = corpus_settings(args.overrides, root=ROOT)
    manifest = args.manifest or corpus.build_corpus(settings, ROOT / "data" / "corpus")
    rows, noise_rows = streams.split_rows(corpus.read_manifest(manifest), args.split)
    if not rows:
        print(f"error: {manifest}: split {args.split!r} is empty", file=sys.stderr)
        return 2
    config = streams.StreamConfig(seconds=args.minutes * 60, background=not args.no_background,
                                  keyword=settings["keyword"], narrowband_prob=args.narrowband)
    if args.keywords_per_minute is not None:
        config = replace(config, keywords_per_minute=args.keywords_per_minute)
    if args.snr is not None:
        config = replace(config, snr_range_db=tuple(sorted(args.snr)))

    truth: dict[str, list[streams.Keyword]] = {}
    for index in range(args.count):
        name = f"stream_{index:03d}.{args.format}"
        try:
            wave, keywords = streams.compose_stream(rows, config, seed=[args.seed, index], noise_rows=noise_rows)
        except ValueError as error:
            print(f"error: {manifest} split {args.split}: {error}", file=sys.stderr)
            return 2
        streams.save_stream(args.out / name, wave, config.sample_rate)
        truth[name] = keywords
        voices = Counter(k.voice for k in keywords)
        print(f"{args.out / name}: {wave.size / config.sample_rate / 60:.1f} min, {len(keywords)} keywords "
              f"from {len(voices)} voice(s)")
    streams.write_truth(args.out / "truth.csv", truth)
    total = sum(len(k) for k in truth.values())
    print(f"{args.out / 'truth.csv'}: {total} keywords in {args.count} stream(s) "
          f"of split {args.split} of {manifest}, seed {args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
