"""The ``data.corpus`` settings: what the texts are, how files are finished, and the keys that cache them.

The corpus is built in **parts**, one per speech engine (plus one of noise, and
one of extra utterances per engine and kind in ``extra_keyword`` / ``extra_speech`` /
``extra_confusable``: ``<engine>+keyword``, ``<engine>+speech``, ``<engine>+confusable``),
each cached under ``<corpus_root>/<part>-<key>/`` where the key hashes only
what changes that part's audio: the seed, the shared text and finishing
settings, and that engine's own section. A **view** (``view-<key>/``) then
joins the parts that a run uses and assigns splits. So holding out an engine,
or changing the split fractions, writes one small CSV instead of synthesizing
an hour of speech again, and a slow engine is synthesized once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

# Bump when a change to the corpus code changes the audio or manifest it produces:
# it is part of every key, so old corpora are not mistaken for new ones.
BUILDER_VERSION = 2
# Settings that change how fast the corpus is built, not what it contains: left out of every key.
EXECUTION_KEYS = ("timeout_seconds", "chunk")
# Sections of the corpus settings that are not shared text/finishing settings.
SECTION_KEYS = ("engines", "noise", "use", "splits", "extra_keyword", "extra_speech", "extra_confusable")
# More utterances of one kind from an engine's voices (keywords, or negatives): a part of its own per engine and
# kind, "pico+keyword", "pico+speech" or "pico+confusable", sized by the section named here (utterances per engine).
EXTRA_KINDS = {"keyword": "extra_keyword", "speech": "extra_speech", "confusable": "extra_confusable"}


@dataclass(frozen=True)
class CorpusConfig:
    """Shared settings of every part: texts, pieces and finishing. Documented in ``conf/data/welcome.yaml``.

    A dataclass rather than a dict so a missing or misspelt setting fails at
    once, with its name, instead of deep inside a worker.
    """

    seed: int
    keyword: str
    exclude_substring: str
    keyword_alone_fraction: float
    keyword_context_fraction: float
    context_words: tuple[int, int]
    carriers: tuple[str, ...]
    dictionary: str
    word_length: tuple[int, int]
    negative_words: tuple[int, int]
    sentence_fraction: float
    sentence_templates: tuple[str, ...]
    confusable_words: tuple[str, ...]
    confusable_phrases: tuple[str, ...]
    confusable_phrase_fraction: float
    confusable_context_fraction: float
    punctuation: tuple[str, ...]
    max_pieces: int
    piece_gap_seconds: tuple[float, float]
    lead_seconds: tuple[float, float]
    trail_seconds: tuple[float, float]
    peak_dbfs: tuple[float, float]
    trim_db: float
    trim_pad_seconds: float
    max_seconds: float
    timeout_seconds: float

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> "CorpusConfig":
        """The shared keys of the corpus settings; unknown or missing keys raise with their names."""
        values = {k: v for k, v in plain(cfg).items() if k not in SECTION_KEYS}
        return from_plain(cls, values, "corpus settings")


def from_plain(cls: type, values: Mapping[str, Any], what: str) -> Any:
    """Build dataclass ``cls`` from a plain mapping: lists become tuples, unknown/missing keys raise.

    A field with a default may be left out: that is how a new, optional
    setting joins an engine without changing the cache key (the config
    section, hashed as written) of every corpus built before it.
    """
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    required = {f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    unknown, missing = sorted(set(values) - names), sorted(required - set(values))
    if unknown or missing:
        raise ValueError(f"{what}: unknown {unknown}, missing {missing} (see conf/data/welcome.yaml)")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def plain(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict from a dict or an OmegaConf node (interpolations resolved)."""
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover - omegaconf comes with hydra
        pass
    return json.loads(json.dumps(dict(cfg)))


def _without_execution(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in EXECUTION_KEYS}


def _digest(payload: Mapping[str, Any]) -> str:
    blob = json.dumps({"builder": BUILDER_VERSION, **payload}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def shared_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The settings every part depends on (texts, finishing, seed), without execution-only keys."""
    return _without_execution({k: v for k, v in plain(cfg).items() if k not in SECTION_KEYS})


def engine_of(part: str) -> str:
    """The engine that speaks a part: ``pico`` for ``pico`` and for its extra utterances ``pico+speech``."""
    return part.split("+", 1)[0]


def extra_kind(part: str) -> str | None:
    """What an extra part says (``speech`` for ``pico+speech``); None for an engine's own part or the noise."""
    return part.split("+", 1)[1] if "+" in part else None


def extra_parts(cfg: Mapping[str, Any]) -> list[str]:
    """The extra parts a view joins: for each kind in ``EXTRA_KINDS``, the engines of its section with a
    count > 0 that the view uses and does not hold out.

    A held-out engine's extra utterances would only land in the held-out split, where the cross-engine streams
    are composed from; leaving them out keeps those streams what they were without them.
    """
    values = plain(cfg)
    heldout = set(values.get("splits", {}).get("heldout_engines", ()))
    parts = []
    for kind, section in EXTRA_KINDS.items():
        wanted = values.get(section) or {}
        bad = {engine: count for engine, count in wanted.items() if type(count) is not int or count < 0}
        if bad:  # checked here, where every view key and part list passes
            raise ValueError(f"corpus.{section}: counts must be whole numbers >= 0, got {bad}")
        parts += [f"{engine}+{kind}" for engine, count in wanted.items()
                  if count > 0 and engine in values["use"] and engine not in heldout]
    return parts


def part_section(cfg: Mapping[str, Any], part: str) -> dict[str, Any]:
    """One part's own settings: ``noise``, ``engines.<part>``, or for ``<engine>+<kind>`` the engine's
    section speaking ``extra_<kind>.<engine>`` utterances of that kind (keywords, ordinary speech or
    confusable words) and nothing else."""
    values = plain(cfg)
    if part == "noise":
        return values["noise"]
    engine = engine_of(part)
    if engine not in values.get("engines", {}):
        raise ValueError(f"corpus.use names {engine!r}, which has no section under corpus.engines")
    section = values["engines"][engine]
    if part == engine:
        return section
    kind = extra_kind(part)
    if kind not in EXTRA_KINDS:
        raise ValueError(f"{part!r}: an extra part says one of {list(EXTRA_KINDS)}, not {kind!r}")
    count = int((values.get(EXTRA_KINDS[kind]) or {}).get(engine, 0))
    return {**section, "utterances": {"keyword": 0, "speech": 0, "confusable": 0, kind: count}}


def part_key(cfg: Mapping[str, Any], part: str) -> str:
    """Short sha1 of what one part's audio depends on: shared settings and its own section."""
    values = plain(cfg)
    return _digest({"part": part, "shared": shared_settings(values), "own": _without_execution(part_section(values, part))})


def view_key(cfg: Mapping[str, Any]) -> str:
    """Short sha1 of a whole corpus view: the keys of the parts it joins and its split settings."""
    values = plain(cfg)
    parts = {name: part_key(values, name) for name in (*values["use"], *extra_parts(values), "noise")}
    return _digest({"parts": parts, "splits": values["splits"], "seed": values["seed"]})
