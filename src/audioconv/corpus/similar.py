"""Words that sound like the keyword: hard negatives found in the dictionary by their phonemes.

The false alarms that set the threshold on an unseen voice are words sharing
the keyword's sounds ("welding", "Malcolm", "welkin" for "welcome", README
"What fires"). The hand-written ``confusable_words`` list of
``conf/data/welcome.yaml`` covers one keyword; for any other keyword this
module proposes such a list: every dictionary word is turned into phonemes by
espeak-ng (``--ipa``, one word per line, the voice that drives the engines),
and the words nearest the keyword in a weighted edit distance over phonemes
are kept — a vowel for another vowel costs half, because vowels are what
voices and accents bend most. ``scripts/similar_words.py`` prints the list as
YAML for the config, where a person can read it and strike a real homophone.

Only plain-text tools run here: no model, no download.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Callable, Sequence

# IPA symbols that are vowels (espeak-ng's English output); a length mark joins the symbol before it
VOWELS = frozenset("aeiouyæɑɒɔəɚɛɜɝɪʊʌʏøœɐᵻɨɵ")
IGNORED = frozenset("ˈˌ ‿-")  # stress marks, spaces and links say nothing of which sounds are said
INFLECTIONS = ("s", "es", "ed", "d", "ing", "er", "ers", "est", "ly")  # "welds" adds little to "weld": one word per family

Phonemizer = Callable[[Sequence[str]], list[str]]


def espeak_phonemes(words: Sequence[str], voice: str = "en-us", timeout: float = 600.0) -> list[str]:
    """IPA of each word, from one espeak-ng process (one word per line in, one line out).

    Raises ``RuntimeError`` with one line saying what went wrong (not installed, unknown voice, timed out).
    """
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (Debian package espeak-ng): needed to find similar words")
    if any(not w or w.strip() != w or "\n" in w for w in words):
        raise ValueError("words must be non-empty, one line each, without surrounding spaces")
    try:
        done = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", voice], input="\n".join(words) + "\n",
                              capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"espeak-ng took over {timeout:g} s for {len(words)} words") from error
    except subprocess.CalledProcessError as error:
        said = " ".join((error.stderr or error.stdout or "").split()) or f"exit status {error.returncode}"
        raise RuntimeError(f"espeak-ng -v {voice} failed: {said}") from error
    lines = done.stdout.splitlines()
    if len(lines) != len(words):
        raise RuntimeError(f"espeak-ng returned {len(lines)} lines for {len(words)} words")
    return [line.strip() for line in lines]


def phoneme_symbols(ipa: str) -> tuple[str, ...]:
    """An IPA string as symbols: stress marks dropped, a length mark kept with its vowel ("iː")."""
    symbols: list[str] = []
    for char in ipa:
        if char in IGNORED:
            continue
        if char == "ː" and symbols:
            symbols[-1] += char
        else:
            symbols.append(char)
    return tuple(symbols)


def _is_vowel(symbol: str) -> bool:
    return symbol[0] in VOWELS


def substitution_cost(a: str, b: str) -> float:
    """0 for the same symbol, 0.5 for one vowel for another, else 1."""
    if a == b:
        return 0.0
    return 0.5 if _is_vowel(a) and _is_vowel(b) else 1.0


def phoneme_distance(a: Sequence[str], b: Sequence[str]) -> float:
    """Weighted edit distance (insert and delete 1, substitution ``substitution_cost``) divided by the
    longer length: 0 for the same sounds, 1 for nothing in common."""
    if not a or not b:
        return 1.0
    previous = [float(j) for j in range(len(b) + 1)]
    for i, x in enumerate(a, start=1):
        current = [float(i)]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + substitution_cost(x, y)))
        previous = current
    return previous[-1] / max(len(a), len(b))


def word_family(word: str, vocabulary: set[str]) -> str:
    """The stem whose inflection ``word`` is ("welds", "welders" -> "weld") when the stem is a word too, else itself.

    A spelling heuristic, not morphology: the stem must be a word of at least
    three letters and half the word, which keeps "only" apart from "on" but
    still joins "forest" to "for" now and then (one confusable lost, no harm).
    """
    for suffix in INFLECTIONS:
        stem = word[: -len(suffix)]
        if word.endswith(suffix) and len(stem) >= max(3, len(word) / 2) and stem in vocabulary:
            return word_family(stem, vocabulary)
    return word


def similar_words(
    keyword: str,
    words: Sequence[str],
    count: int,
    exclude_substring: str = "",
    phonemize: Phonemizer = espeak_phonemes,
) -> list[tuple[str, float]]:
    """The ``count`` words nearest ``keyword`` in sound, nearest first, with their distances.

    Never the keyword, a word holding ``exclude_substring`` (or the keyword),
    a word that sounds exactly like it (a homophone is a positive, not a
    negative), and one word per family (the nearest of "weld", "welded",
    "welding": ``word_family``). Many words tie on the distance; among them
    the word nearer the keyword's *onset* (its first half of sounds) comes
    first — the false alarms that set the threshold are mostly words that
    begin like the keyword ("wel-": README, "What fires") — then the shorter,
    then alphabetical: the same dictionary gives the same list.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    excluded = exclude_substring or keyword
    vocabulary = set(words)
    candidates = sorted({w for w in vocabulary if w != keyword and excluded not in w and keyword not in w})
    ipa = phonemize([keyword, *candidates])
    target = phoneme_symbols(ipa[0])
    onset = target[: max(1, len(target) // 2)]

    def rank(word: str, phonemes: str) -> tuple[float, float, int, str]:
        symbols = phoneme_symbols(phonemes)
        return (round(phoneme_distance(symbols, target), 9), phoneme_distance(symbols[: len(onset)], onset), len(word), word)

    scored = sorted(rank(w, p) for w, p in zip(candidates, ipa[1:]))
    chosen: list[tuple[str, float]] = []
    families: set[str] = set()
    for distance, _, _, word in scored:
        family = word_family(word, vocabulary)
        if distance == 0.0 or family in families:
            continue
        chosen.append((word, round(distance, 3)))
        families.add(family)
        if len(chosen) == count:
            break
    return chosen
