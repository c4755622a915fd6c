#!/usr/bin/env python
"""Propose confusable words for the keyword: the dictionary words that sound most like it (espeak-ng phonemes).

    python scripts/similar_words.py                          # the config's keyword and dictionary, 40 words
    python scripts/similar_words.py --count 80 -- data.corpus.keyword=jarvis data.corpus.exclude_substring=jarvis
    python scripts/similar_words.py --distances              # each word with its phoneme distance (0 = same sounds)

Prints a YAML line to put in conf/data/<your data>.yaml (or pass as an override):

    confusable_words: [webcam, welkin, whelk, ...]

Read it before you use it: a word that *is* the keyword in some accents is a
positive, not a negative. A new list changes the corpus texts, so every part is
synthesized again (its cache key changes). Takes ~20-40 s on 2 cores (espeak-ng
phonemizes ~45,000 words).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=40, help="how many words (default 40)")
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice whose pronunciations are compared")
    parser.add_argument("--distances", action="store_true", help="one word per line with its distance")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides of the config (after --)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be >= 1")
    from audioconv.config import corpus_settings
    from audioconv.corpus import similar, texts

    settings = corpus_settings(args.overrides, ROOT)
    try:
        words = texts.load_words(settings["dictionary"], tuple(settings["word_length"]), settings["exclude_substring"])
        found = similar.similar_words(settings["keyword"], words, args.count, settings["exclude_substring"],
                                      lambda w: similar.espeak_phonemes(w, args.voice))
    except (OSError, ValueError, RuntimeError) as error:
        print(f"error: {settings['dictionary']}: {error}", file=sys.stderr)
        return 2
    if args.distances:
        print("\n".join(f"{word}\t{distance:.3f}" for word, distance in found))
    else:
        print(f"confusable_words: [{', '.join(word for word, _ in found)}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
