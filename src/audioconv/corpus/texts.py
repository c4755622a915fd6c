"""What is said: keyword utterances, other speech and confusable words, drawn from a seeded generator.

The same texts feed every engine, so engines differ only in how they speak.
Positives are (before, keyword, after) triples so that engines that speak in
pieces can synthesize the keyword on its own and know its span to the sample.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from audioconv.corpus.settings import CorpusConfig


def uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def integer(rng: np.random.Generator, bounds: Sequence[int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


@lru_cache(maxsize=4)
def load_words(path: str, length: tuple[int, int], exclude: str) -> tuple[str, ...]:
    """Plain lowercase alphabetic dictionary words of a sane length, none containing ``exclude``."""
    words = Path(path).read_text(encoding="utf-8", errors="replace").split()
    keep = sorted({w for w in words if w.isascii() and w.isalpha() and w.islower() and exclude not in w})
    keep = [w for w in keep if length[0] <= len(w) <= length[1]]
    if not keep:
        raise ValueError(f"no usable words in {path}")
    return tuple(keep)


def _random_words(rng: np.random.Generator, words: Sequence[str], count: int) -> list[str]:
    return [words[int(i)] for i in rng.integers(0, len(words), count)]


def _fill_template(template: str, rng: np.random.Generator, words: Sequence[str]) -> str:
    """Each ``{}`` in a sentence template becomes a random dictionary word."""
    return re.sub(r"\{\}", lambda _: _random_words(rng, words, 1)[0], template)


def keyword_text(cfg: CorpusConfig, rng: np.random.Generator, words: Sequence[str]) -> tuple[str, str, str]:
    """(before, keyword, after) of a positive: alone, in a carrier phrase, or amid random words."""
    mode = rng.random()
    if mode < cfg.keyword_alone_fraction:
        return "", cfg.keyword, ""
    if mode < cfg.keyword_alone_fraction + cfg.keyword_context_fraction:
        before, after = 0, 0
        while before + after == 0:
            before, after = integer(rng, cfg.context_words), integer(rng, cfg.context_words)
        return " ".join(_random_words(rng, words, before)), cfg.keyword, " ".join(_random_words(rng, words, after))
    carrier = cfg.carriers[int(rng.integers(len(cfg.carriers)))]
    before, _, after = carrier.partition(cfg.keyword)
    return before.strip(), cfg.keyword, after.strip()


def speech_text(cfg: CorpusConfig, rng: np.random.Generator, words: Sequence[str]) -> str:
    """A negative: a short templated sentence or a few random dictionary words."""
    if rng.random() < cfg.sentence_fraction:
        template = cfg.sentence_templates[int(rng.integers(len(cfg.sentence_templates)))]
        return _fill_template(template, rng, words)
    return " ".join(_random_words(rng, words, integer(rng, cfg.negative_words)))


def confusable_text(cfg: CorpusConfig, rng: np.random.Generator, words: Sequence[str]) -> str:
    """A hard negative: a word sharing sounds with the keyword, alone, in a phrase, or amid random words."""
    mode = rng.random()
    if mode < cfg.confusable_phrase_fraction:
        return cfg.confusable_phrases[int(rng.integers(len(cfg.confusable_phrases)))]
    word = cfg.confusable_words[int(rng.integers(len(cfg.confusable_words)))]
    if mode < cfg.confusable_phrase_fraction + cfg.confusable_context_fraction:
        before, after = integer(rng, cfg.context_words), integer(rng, cfg.context_words)
        return " ".join(_random_words(rng, words, before) + [word] + _random_words(rng, words, after))
    return word


def split_pieces(text: str, rng: np.random.Generator, max_pieces: int) -> tuple[str, ...]:
    """Cut a negative into 1..max_pieces runs of words, as positives are cut around the keyword."""
    tokens = text.split()
    count = integer(rng, (1, min(max_pieces, len(tokens))))
    cuts = sorted(int(c) for c in rng.choice(np.arange(1, len(tokens)), count - 1, replace=False)) if count > 1 else []
    bounds = [0, *cuts, len(tokens)]
    return tuple(" ".join(tokens[a:b]) for a, b in zip(bounds[:-1], bounds[1:]))


def validate(cfg: CorpusConfig) -> None:
    """Carriers hold the keyword once; no negative source holds the excluded substring."""
    for carrier in cfg.carriers:
        if carrier.split().count(cfg.keyword) != 1:
            raise ValueError(f"carrier {carrier!r} must contain the word {cfg.keyword!r} exactly once")
    for text in (*cfg.confusable_words, *cfg.confusable_phrases, *cfg.sentence_templates):
        if cfg.exclude_substring in text.lower():
            raise ValueError(f"negative text {text!r} contains {cfg.exclude_substring!r}")


def words_for(cfg: CorpusConfig) -> tuple[str, ...]:
    return load_words(cfg.dictionary, tuple(cfg.word_length), cfg.exclude_substring)
