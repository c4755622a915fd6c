#!/usr/bin/env python
"""Propose confusable words for the keyword: the dictionary words that sound most like it (espeak-ng phonemes).

    python scripts/similar_words.py                          # the config's keyword and dictionary, 40 words
    python scripts/similar_words.py --count 80 -- data.corpus.keyword=jarvis data.corpus.exclude_substring=jarvis
    python scripts/similar_words.py --distances              # each word with its phoneme distance (0 = same sounds)

Prints a YAML line to put in conf/data/<your data>.yaml (or pass as an override):

    confusable_words: ["welkin", "webcam", "whelk", ...]

Read it before you use it: a word that *is* the keyword in some accents is a
positive, not a negative. A new list changes the corpus texts, so every part is
synthesized again (its cache key changes). Takes ~30-45 s on 2 cores (espeak-ng
phonemizes ~45,000 words). Exit status 2 with one line on stderr when the
dictionary or espeak-ng fails.
"""

from __future__ import annotations

import argparse
import json
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
    dictionary = settings["dictionary"]
    try:
        words = texts.load_words(dictionary, tuple(settings["word_length"]), settings["exclude_substring"])
    except (OSError, ValueError) as error:
        message = str(error) if dictionary in str(error) else f"{dictionary}: {error}"
        print(f"error: {message}", file=sys.stderr)
        return 2
    try:
        found = similar.similar_words(settings["keyword"], words, args.count, settings["exclude_substring"],
                                      lambda w: similar.espeak_phonemes(w, args.voice))
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.distances:
        print("\n".join(f"{word}\t{distance:.3f}" for word, distance in found))
    else:  # quoted: YAML would read the dictionary's "no", "on", "null" as false, true and none
        print(f"confusable_words: {json.dumps([word for word, _ in found])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
