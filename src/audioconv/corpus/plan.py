"""The plan of one speech part: every utterance's text, voice, prosody, pieces, gaps, padding and level.

Everything is drawn from one generator seeded by (corpus seed, part name)
before any audio is made, so a part is a pure function of its settings:
byte-identical for any worker count, order or interruption, and unchanged
when another engine's settings change.
"""

from __future__ import annotations

import logging
import zlib
from types import ModuleType
from typing import Any, Collection, Mapping

import numpy as np

from audioconv.corpus import texts
from audioconv.corpus.engines.base import Item, Voice
from audioconv.corpus.settings import CorpusConfig

log = logging.getLogger(__name__)
UTTERANCE_KINDS = ("keyword", "speech", "confusable")


def part_rng(seed: int, part: str) -> np.random.Generator:
    """A generator for one part, stable across runs and Python versions (crc32, not hash())."""
    return np.random.default_rng([int(seed), zlib.crc32(part.encode())])


def counts(settings: Any) -> dict[str, int]:
    """Utterances of each kind an engine speaks (``utterances: {keyword, speech, confusable}``)."""
    wanted = dict(settings.utterances)
    unknown = sorted(set(wanted) - set(UTTERANCE_KINDS))
    if unknown:
        raise ValueError(f"utterances: unknown kinds {unknown}; known: {list(UTTERANCE_KINDS)}")
    return {kind: int(wanted.get(kind, 0)) for kind in UTTERANCE_KINDS}


def _cap_voices(voices: list[Voice], cap: int, rng: np.random.Generator) -> list[Voice]:
    """At most ``cap`` voices (a seeded choice), so that every voice speaks both classes."""
    if len(voices) <= cap or cap < 1:
        return voices
    chosen = sorted(int(i) for i in rng.choice(len(voices), cap, replace=False))
    log.info("using %d of %d %s voices: too few utterances to give every voice both classes",
             cap, len(voices), voices[0].engine)
    return [voices[i] for i in chosen]


def plan(cfg: CorpusConfig, engine: ModuleType, settings: Any, part: str | None = None,
         only_voices: Collection[str] | None = None) -> list[Item]:
    """Every file of one engine's part, decided from the seed alone (given the voices installed).

    ``part`` (default: the engine's name) seeds the draws, so an engine's extra part
    (``pico+speech``, ``pico+confusable``) says other sentences than its own part. ``only_voices`` (voice ids) keeps
    the voices to those: the extra part speaks with the voices of the engine's own part, which
    may use fewer than are installed (``_cap_voices``), so that no voice is heard only in
    negatives and no voice's split moves.
    """
    texts.validate(cfg)
    rng = part_rng(cfg.seed, part or engine.NAME)
    words = texts.words_for(cfg)
    wanted = counts(settings)
    contents: list[tuple[str, Any]] = [("keyword", texts.keyword_text(cfg, rng, words)) for _ in range(wanted["keyword"])]
    contents += [("speech", texts.speech_text(cfg, rng, words)) for _ in range(wanted["speech"])]
    contents += [("confusable", texts.confusable_text(cfg, rng, words)) for _ in range(wanted["confusable"])]
    negatives = wanted["speech"] + wanted["confusable"]
    if only_voices is None:
        voices = _cap_voices(engine.voices(settings), min(wanted["keyword"], negatives), rng)
    else:
        voices = [v for v in engine.voices(settings) if v.id in only_voices]
    if not voices:
        raise ValueError(f"{engine.NAME}: no voices")
    items: list[Item] = []
    for group in (contents[: wanted["keyword"]], contents[wanted["keyword"] :]):
        order = rng.permutation(len(voices))  # each class cycles through every voice in its own order
        for k, (kind, content) in enumerate(group):
            voice = voices[int(order[k % len(voices)])]
            items.append(_speech_item(cfg, rng, len(items), kind, content, voice, engine.params(settings, voice, rng)))
    return items


def _speech_item(
    cfg: CorpusConfig, rng: np.random.Generator, index: int, kind: str, content: Any, voice: Voice, params: Mapping
) -> Item:
    """Pieces, gaps, padding and level for one utterance.

    ``content`` is (before, keyword, after) for a positive, the text for a
    negative. Engines that speak in pieces synthesize each piece apart;
    festival speaks ``text`` whole and finds the keyword in its word times.
    """
    mark = cfg.punctuation[int(rng.integers(len(cfg.punctuation)))]
    if kind == "keyword":
        before, keyword, after = content
        pieces = tuple(p for p in (before, keyword, after) if p)
        keyword_piece: int | None = 1 if before else 0
    else:
        pieces = texts.split_pieces(content, rng, cfg.max_pieces)
        keyword_piece = None
    pieces = (*pieces[:-1], pieces[-1] + mark)
    gaps = tuple(texts.uniform(rng, cfg.piece_gap_seconds) for _ in pieces[1:])
    return Item(
        index=index,
        kind=kind,
        text=" ".join(pieces),
        engine=voice.engine,
        voice=voice.id,
        spec=voice.spec,
        pieces=pieces,
        keyword_piece=keyword_piece,
        gaps=gaps,
        params=dict(params),
        lead=texts.uniform(rng, cfg.lead_seconds),
        trail=texts.uniform(rng, cfg.trail_seconds),
        peak_dbfs=texts.uniform(rng, cfg.peak_dbfs),
    )
