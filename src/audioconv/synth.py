"""The synthetic corpus: spoken "welcome" and everything that is not it.

Two speech engines, nothing else: espeak-ng (every English voice that
synthesizes here, times every variant) and festival (kal_diphone, ked_diphone,
cmu_us_slt_arctic_hts). Noise-only files (coloured noise, mains hum, tones,
sweeps, synthetic music) are generated with numpy. The result is a folder of
16 kHz wavs and a ``manifest.csv``; see ``data/README.md``.

Design choices, and why:

* **Planned up front, then synthesized.** Every utterance's text, voice,
  engine parameters, gaps, padding and level are drawn from one
  ``numpy.random.default_rng(seed)`` before any audio is made, so the corpus is
  a pure function of the settings: byte-identical for any worker count, order
  or interruption.
* **Exact keyword boundaries.** espeak-ng utterances are assembled from pieces
  synthesized separately ("you are" | "welcome" | "back"), each trimmed to its
  sound, joined by short silent gaps: the keyword span is known to the sample.
  Negatives are assembled the same way so piece joins are no cue. Festival
  speaks the whole text and reports word start/end times from its Word
  relation.
* **Voice-disjoint splits.** Each voice id lives in exactly one split, so
  val/test/heldout scores measure voices the model never heard.
* **Crash-safe and resumable.** Each wav is written atomically with a small
  JSON side file (samples, keyword span); a rerun skips items that have both.
  ``manifest.csv`` is written last, via a temporary name, so it exists only for
  a complete corpus. A lock file serializes builders of one corpus folder.
"""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import soundfile as sf

from audioconv import audio

log = logging.getLogger(__name__)

# Bump when a change to this module changes the audio or manifest it produces:
# it is part of the corpus key, so old corpora are not mistaken for new ones.
BUILDER_VERSION = 1
MANIFEST_COLUMNS = ("path", "label", "kind", "text", "kw_start", "kw_end", "engine", "voice", "split", "duration")
KINDS = ("keyword", "speech", "confusable", "noise")
SPLITS = ("train", "val", "test", "heldout")
# Settings that change how fast the corpus is built, not what it contains: left out of the key.
EXECUTION_KEYS = ("festival_chunk", "timeout_seconds")
# Audio files accepted in a user's own recordings folder.
USER_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
USER_SUBFOLDERS = {"positive": "keyword", "negative": "speech", "background": "noise"}
# Scheduling only (output never depends on it): tasks per worker, for load balance.
_TASKS_PER_WORKER = 4
_PROGRESS_REPORTS = 10
# Listing and probing voices: a few milliseconds each; the limit only catches a hung engine.
_PROBE_TIMEOUT_SECONDS = 60.0
_SECONDS_DECIMALS = 4


class SynthesisError(RuntimeError):
    """An utterance that could not be made; the message names voice and text."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class CorpusConfig:
    """The ``corpus:`` section of ``conf/data/welcome.yaml``; every field is documented there.

    A dataclass rather than a dict so a missing or misspelt setting fails at
    once, with its name, instead of deep inside a worker.
    """

    seed: int
    keyword: str
    exclude_substring: str
    num_positives: int
    num_negative_speech: int
    num_confusable: int
    num_noise: int
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
    festival_fraction: float
    espeak_language: str
    espeak_voices: tuple[str, ...] | None
    espeak_variants: tuple[str, ...] | None
    espeak_plain: bool
    espeak_speed: tuple[int, int]
    espeak_pitch: tuple[int, int]
    espeak_word_gap: tuple[int, int]
    espeak_max_pieces: int
    piece_gap_seconds: tuple[float, float]
    festival_voices: tuple[str, ...]
    festival_stretch: tuple[float, float]
    festival_semitones: tuple[float, float]
    festival_hts_semitones: tuple[float, float]
    festival_chunk: int
    heldout_voices: tuple[str, ...]
    val_voices: tuple[str, ...]
    test_voices: tuple[str, ...]
    val_fraction: float
    test_fraction: float
    lead_seconds: tuple[float, float]
    trail_seconds: tuple[float, float]
    peak_dbfs: tuple[float, float]
    trim_db: float
    trim_pad_seconds: float
    max_seconds: float
    noise_kinds: tuple[str, ...]
    noise_seconds: tuple[float, float]
    noise_peak_dbfs: tuple[float, float]
    hum_hz: tuple[float, ...]
    hum_harmonics: int
    tone_hz: tuple[float, float]
    music_midi: tuple[int, int]
    music_note_seconds: tuple[float, float]
    music_harmonics: int
    music_polyphony: int
    music_attack_seconds: float
    timeout_seconds: float

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> "CorpusConfig":
        """Lists become tuples (hashable, immutable); unknown or missing keys raise with their names."""
        values = _plain(cfg)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = sorted(set(values) - names), sorted(names - set(values))
        if unknown or missing:
            raise ValueError(f"corpus settings: unknown {unknown}, missing {missing} (see conf/data/welcome.yaml)")
        converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**converted)


def _plain(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict from a dict or an OmegaConf node (interpolations resolved)."""
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover - omegaconf comes with hydra
        pass
    return json.loads(json.dumps(dict(cfg)))


def corpus_key(cfg: Mapping[str, Any]) -> str:
    """Short sha1 of every setting that changes the output (seed included) and the builder version."""
    values = {k: v for k, v in _plain(cfg).items() if k not in EXECUTION_KEYS}
    blob = json.dumps({"builder": BUILDER_VERSION, "corpus": values}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def corpus_dir(cfg: Mapping[str, Any], root: str | Path) -> Path:
    """``root/<key>``: one folder per distinct corpus, so differently-configured corpora never mix."""
    return Path(root) / corpus_key(cfg)


# --------------------------------------------------------------------------- voices


@dataclass(frozen=True)
class Voice:
    """A voice id as it appears in the manifest, and how to ask its engine for it."""

    id: str  # "espeak:en-us+klatt", "festival:kal_diphone"
    engine: str  # "espeak" | "festival"
    spec: str  # espeak-ng -v argument, or the festival voice name


def _run_espeak(spec: str, text: str, args: Sequence[str] = (), timeout: float = _PROBE_TIMEOUT_SECONDS) -> bytes:
    """espeak-ng's wav bytes for ``text`` (fed on stdin, so text is never taken for an option)."""
    done = subprocess.run(
        ["espeak-ng", "-v", spec, *args, "--stdout"], input=text.encode(), capture_output=True, timeout=timeout
    )
    if done.returncode != 0 or len(done.stdout) <= 44:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise SynthesisError(f"espeak:{spec}: {text!r}: {reason[0] if reason else f'exit {done.returncode}, no audio'}")
    return done.stdout


def _parse_espeak_list(listing: str) -> list[tuple[str, str]]:
    """(language, file) per line of ``espeak-ng --voices=...``; file names may contain spaces."""
    pattern = re.compile(r"^\s*\d+\s+(\S+)\s+\S+\s+\S+\s+(.+?)\s*(\(.*\))?\s*$")
    rows = []
    for line in listing.splitlines()[1:]:
        match = pattern.match(line)
        if match:
            rows.append((match.group(1), match.group(2)))
    return rows


@lru_cache(maxsize=None)
def espeak_base_voices(language: str) -> tuple[tuple[str, str], ...]:
    """(name, -v spec) of every ``language`` voice that actually synthesizes here.

    The name is the language code ("en-us"), or the file name when that code
    is already taken by a higher-priority voice; mbrola voices ("mb/...") fail
    without mbrola installed and are skipped with a log line.
    """
    listing = subprocess.run(["espeak-ng", f"--voices={language}"], capture_output=True, text=True, check=True).stdout
    voices: list[tuple[str, str]] = []
    taken: set[str] = set()
    skipped: dict[str, str] = {}
    for code, file in _parse_espeak_list(listing):
        if code == "variant":
            continue
        name = code.lower() if code.lower() not in taken else Path(file).name.lower()
        try:
            _run_espeak(file, "test")
        except (SynthesisError, subprocess.TimeoutExpired) as error:
            skipped[file] = str(error).split(": ")[-1]
            continue
        taken.add(name)
        voices.append((name, file))
    if skipped:
        first = next(iter(skipped.values()))
        names = " ".join(skipped)
        log.info("espeak: %d voices do not synthesize here, skipped (%s ...): %s", len(skipped), first, names)
    log.info("espeak voices: %s", " ".join(name for name, _ in voices))
    return tuple(voices)


@lru_cache(maxsize=None)
def espeak_variants(probe_spec: str) -> tuple[str, ...]:
    """Names of the espeak-ng variants that change the voice (an unknown variant is silently ignored by espeak)."""
    listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    plain = _run_espeak(probe_spec, "test")
    names, skipped = set(), {}
    for _, file in _parse_espeak_list(listing):
        name = file.split("/", 1)[-1]
        try:
            if re.search(r"\s", name):
                skipped[name] = "space in the name"
            elif _run_espeak(f"{probe_spec}+{name}", "test") == plain:
                skipped[name] = "no effect"
            else:
                names.add(name)
        except (SynthesisError, subprocess.TimeoutExpired) as error:
            skipped[name] = str(error)
    if skipped:
        log.info("espeak: %d variants skipped: %s", len(skipped), ", ".join(f"{k!r} ({v})" for k, v in skipped.items()))
    return tuple(sorted(names))


def _pick(available: Sequence[str], wanted: Sequence[str] | None, what: str) -> list[str]:
    """``wanted`` (in available order) or everything; a wanted name that is not available is an error."""
    if wanted is None:
        return list(available)
    absent = sorted(set(wanted) - set(available))
    if absent:
        raise ValueError(f"{what} not available here: {absent}; available: {list(available)}")
    return [name for name in available if name in set(wanted)]


def espeak_voice_list(cfg: CorpusConfig) -> list[Voice]:
    """Every espeak voice id the settings allow: base voice x (variants, plus the plain voice)."""
    bases = espeak_base_voices(cfg.espeak_language)
    if not bases:
        raise SynthesisError(f"no espeak-ng voice for language {cfg.espeak_language!r} synthesizes on this machine")
    spec_of = dict(bases)
    names = _pick([name for name, _ in bases], cfg.espeak_voices, "espeak voices")
    variants = _pick(espeak_variants(bases[0][1]), cfg.espeak_variants, "espeak variants")
    voices = []
    for name in names:
        if cfg.espeak_plain:
            voices.append(Voice(f"espeak:{name}", "espeak", spec_of[name]))
        voices += [Voice(f"espeak:{name}+{v}", "espeak", f"{spec_of[name]}+{v}") for v in variants]
    return voices


def festival_voice_list(cfg: CorpusConfig) -> list[Voice]:
    return [Voice(f"festival:{name}", "festival", name) for name in cfg.festival_voices]


def _is_hts(festival_voice: str) -> bool:
    """HTS voices ignore Duration_Stretch and int_lr_params: speed goes through hts_engine, pitch is shifted offline."""
    return festival_voice.endswith("_hts")


# --------------------------------------------------------------------------- plan


@dataclass
class Item:
    """One file of the corpus, fully decided before synthesis."""

    index: int
    kind: str
    text: str
    engine: str  # espeak | festival | noise
    voice: str
    spec: str  # engine voice argument (espeak -v, festival voice name) or noise kind
    split: str
    pieces: tuple[str, ...] = ()  # espeak: texts synthesized separately, in order
    keyword_piece: int | None = None  # espeak positives: which piece is the keyword
    gaps: tuple[float, ...] = ()  # espeak: silence between pieces, seconds
    params: dict[str, float] = field(default_factory=dict)  # engine parameters
    lead: float = 0.0
    trail: float = 0.0
    peak_dbfs: float = 0.0

    @property
    def label(self) -> int:
        return int(self.kind == "keyword")

    @property
    def wav(self) -> str:
        return f"wav/{self.index:06d}.wav"

    @property
    def meta(self) -> str:
        return f"meta/{self.index:06d}.json"


def _uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _integer(rng: np.random.Generator, bounds: Sequence[int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def load_words(path: str, length: Sequence[int], exclude: str) -> list[str]:
    """Plain lowercase alphabetic dictionary words of a sane length, none containing ``exclude``."""
    words = Path(path).read_text(encoding="utf-8", errors="replace").split()
    keep = sorted({w for w in words if w.isascii() and w.isalpha() and w.islower() and exclude not in w})
    keep = [w for w in keep if length[0] <= len(w) <= length[1]]
    if not keep:
        raise ValueError(f"no usable words in {path}")
    return keep


def _random_words(rng: np.random.Generator, words: Sequence[str], count: int) -> list[str]:
    return [words[int(i)] for i in rng.integers(0, len(words), count)]


def _fill_template(template: str, rng: np.random.Generator, words: Sequence[str]) -> str:
    """Each ``{}`` in a sentence template becomes a random dictionary word."""
    return re.sub(r"\{\}", lambda _: _random_words(rng, words, 1)[0], template)


def _keyword_text(cfg: CorpusConfig, rng: np.random.Generator, words: Sequence[str]) -> tuple[str, str, str]:
    """(before, keyword, after) of a positive: alone, in a carrier phrase, or amid random words."""
    mode = rng.random()
    if mode < cfg.keyword_alone_fraction:
        return "", cfg.keyword, ""
    if mode < cfg.keyword_alone_fraction + cfg.keyword_context_fraction:
        before, after = 0, 0
        while before + after == 0:
            before, after = _integer(rng, cfg.context_words), _integer(rng, cfg.context_words)
        return " ".join(_random_words(rng, words, before)), cfg.keyword, " ".join(_random_words(rng, words, after))
    carrier = cfg.carriers[int(rng.integers(len(cfg.carriers)))]
    before, _, after = carrier.partition(cfg.keyword)
    return before.strip(), cfg.keyword, after.strip()


def _speech_text(cfg: CorpusConfig, rng: np.random.Generator, words: Sequence[str]) -> str:
    """A negative: a short templated sentence or a few random dictionary words."""
    if rng.random() < cfg.sentence_fraction:
        template = cfg.sentence_templates[int(rng.integers(len(cfg.sentence_templates)))]
        return _fill_template(template, rng, words)
    return " ".join(_random_words(rng, words, _integer(rng, cfg.negative_words)))


def _confusable_text(cfg: CorpusConfig, rng: np.random.Generator, words: Sequence[str]) -> str:
    """A hard negative: a word sharing sounds with the keyword, alone, in a phrase, or amid random words."""
    mode = rng.random()
    if mode < cfg.confusable_phrase_fraction:
        return cfg.confusable_phrases[int(rng.integers(len(cfg.confusable_phrases)))]
    word = cfg.confusable_words[int(rng.integers(len(cfg.confusable_words)))]
    if mode < cfg.confusable_phrase_fraction + cfg.confusable_context_fraction:
        before, after = _integer(rng, cfg.context_words), _integer(rng, cfg.context_words)
        return " ".join(_random_words(rng, words, before) + [word] + _random_words(rng, words, after))
    return word


def _split_pieces(text: str, rng: np.random.Generator, max_pieces: int) -> tuple[str, ...]:
    """Cut a negative into 1..max_pieces runs of words, as positives are cut around the keyword."""
    tokens = text.split()
    count = _integer(rng, (1, min(max_pieces, len(tokens))))
    cuts = sorted(int(c) for c in rng.choice(np.arange(1, len(tokens)), count - 1, replace=False)) if count > 1 else []
    bounds = [0, *cuts, len(tokens)]
    return tuple(" ".join(tokens[a:b]) for a, b in zip(bounds[:-1], bounds[1:]))


def _validate_texts(cfg: CorpusConfig) -> None:
    """Carriers hold the keyword once; no negative source holds the excluded substring."""
    for carrier in cfg.carriers:
        if carrier.split().count(cfg.keyword) != 1:
            raise ValueError(f"carrier {carrier!r} must contain the word {cfg.keyword!r} exactly once")
    for text in (*cfg.confusable_words, *cfg.confusable_phrases, *cfg.sentence_templates):
        if cfg.exclude_substring in text.lower():
            raise ValueError(f"negative text {text!r} contains {cfg.exclude_substring!r}")


def _engine_order(rng: np.random.Generator, count: int, festival_fraction: float) -> list[str]:
    festival = int(round(count * festival_fraction))
    engines = np.array(["festival"] * festival + ["espeak"] * (count - festival))
    rng.shuffle(engines)
    return engines.tolist()


def assign_splits(
    espeak: Sequence[Voice], festival: Sequence[Voice], cfg: CorpusConfig, rng: np.random.Generator
) -> dict[str, str]:
    """Voice id -> split. Explicit lists first; other festival voices train; espeak voices shuffled by fraction."""
    ids = [v.id for v in (*espeak, *festival)]
    split_of: dict[str, str] = {}
    for split, listed in (("heldout", cfg.heldout_voices), ("val", cfg.val_voices), ("test", cfg.test_voices)):
        for voice in listed:
            if voice not in ids:
                raise ValueError(f"{split} voice {voice!r} is not among the corpus voices")
            if voice in split_of:
                raise ValueError(f"voice {voice!r} listed for both {split_of[voice]} and {split}")
            split_of[voice] = split
    for voice in festival:
        split_of.setdefault(voice.id, "train")
    free = [v.id for v in espeak if v.id not in split_of]
    order = [free[int(i)] for i in rng.permutation(len(free))]
    n_val = max(1, round(len(order) * cfg.val_fraction)) if cfg.val_fraction > 0 else 0
    n_test = max(1, round(len(order) * cfg.test_fraction)) if cfg.test_fraction > 0 else 0
    if len(order) - n_val - n_test < 1:
        raise ValueError(f"{len(order)} espeak voices cannot fill train, val and test: raise the utterance counts")
    for i, voice in enumerate(order):
        split_of[voice] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    return split_of


def _cap_espeak(voices: list[Voice], cap: int, rng: np.random.Generator) -> list[Voice]:
    """At most ``cap`` espeak voices (a seeded choice), so every voice speaks both classes."""
    if cap < 1:
        raise ValueError("no espeak utterances planned: lower festival_fraction or raise the counts")
    if len(voices) <= cap:
        return voices
    chosen = sorted(int(i) for i in rng.choice(len(voices), cap, replace=False))
    log.info("using %d of %d espeak voices: too few utterances to give every voice both classes", cap, len(voices))
    return [voices[i] for i in chosen]


def plan(cfg: CorpusConfig) -> list[Item]:
    """Every file of the corpus, decided from the seed alone (given the voices installed)."""
    _validate_texts(cfg)
    rng = np.random.default_rng(cfg.seed)
    words = load_words(cfg.dictionary, cfg.word_length, cfg.exclude_substring)
    positives = [("keyword", _keyword_text(cfg, rng, words)) for _ in range(cfg.num_positives)]
    negatives = [("speech", _speech_text(cfg, rng, words)) for _ in range(cfg.num_negative_speech)]
    negatives += [("confusable", _confusable_text(cfg, rng, words)) for _ in range(cfg.num_confusable)]
    pos_engines = _engine_order(rng, len(positives), cfg.festival_fraction)
    neg_engines = _engine_order(rng, cfg.num_negative_speech, cfg.festival_fraction)
    neg_engines += _engine_order(rng, cfg.num_confusable, cfg.festival_fraction)
    festival = festival_voice_list(cfg)
    for engines, what in ((pos_engines, "keyword"), (neg_engines, "negative")):
        if festival and engines.count("festival") < len(festival):
            raise ValueError(f"fewer festival {what} utterances than festival voices: raise the counts")
    cap = min(pos_engines.count("espeak"), neg_engines.count("espeak"))
    espeak = _cap_espeak(espeak_voice_list(cfg), cap, rng)
    split_of = assign_splits(espeak, festival, cfg, rng)

    items: list[Item] = []
    cycles = {"espeak": espeak, "festival": festival}
    for group, engines in ((positives, pos_engines), (negatives, neg_engines)):
        orders = {e: rng.permutation(len(v)) for e, v in cycles.items()}
        counters = {e: 0 for e in cycles}
        for (kind, content), engine in zip(group, engines):
            pool = cycles[engine]
            voice = pool[int(orders[engine][counters[engine] % len(pool)])]
            counters[engine] += 1
            items.append(_speech_item(cfg, rng, len(items), kind, content, voice, split_of[voice.id]))
    items += _noise_items(cfg, rng, len(items))
    return items


def _speech_item(
    cfg: CorpusConfig, rng: np.random.Generator, index: int, kind: str, content: Any, voice: Voice, split: str
) -> Item:
    """Engine parameters, pieces, gaps, padding and level for one utterance.

    ``content`` is (before, keyword, after) for a positive, the text for a negative.
    """
    mark = cfg.punctuation[int(rng.integers(len(cfg.punctuation)))]
    if kind == "keyword":
        before, keyword, after = content
        pieces = tuple(p for p in (before, keyword, after) if p)
        keyword_piece: int | None = 1 if before else 0
    else:
        pieces = _split_pieces(content, rng, cfg.espeak_max_pieces)
        keyword_piece = None
    pieces = (*pieces[:-1], pieces[-1] + mark)
    text = " ".join(pieces)
    if voice.engine == "espeak":
        params = {
            "speed": _integer(rng, cfg.espeak_speed),
            "pitch": _integer(rng, cfg.espeak_pitch),
            "word_gap": _integer(rng, cfg.espeak_word_gap),
        }
        gaps = tuple(_uniform(rng, cfg.piece_gap_seconds) for _ in pieces[1:])
    else:
        # HTS voices are pitch-shifted offline, which moves the formants too: a narrower range keeps them natural
        semitones = cfg.festival_hts_semitones if _is_hts(voice.spec) else cfg.festival_semitones
        params = {"stretch": _uniform(rng, cfg.festival_stretch), "semitones": _uniform(rng, semitones)}
        pieces, keyword_piece, gaps = (text,), None, ()
    return Item(
        index=index,
        kind=kind,
        text=text,
        engine=voice.engine,
        voice=voice.id,
        spec=voice.spec,
        split=split,
        pieces=pieces,
        keyword_piece=keyword_piece,
        gaps=gaps,
        params=params,
        lead=_uniform(rng, cfg.lead_seconds),
        trail=_uniform(rng, cfg.trail_seconds),
        peak_dbfs=_uniform(rng, cfg.peak_dbfs),
    )


def _noise_items(cfg: CorpusConfig, rng: np.random.Generator, start: int) -> list[Item]:
    """Noise files: kinds balanced, split drawn at random (voice-disjointness does not apply to noise)."""
    kinds = [cfg.noise_kinds[i % len(cfg.noise_kinds)] for i in range(cfg.num_noise)]
    kinds = [kinds[int(i)] for i in rng.permutation(len(kinds))]
    items = []
    for offset, kind in enumerate(kinds):
        u = rng.random()
        split = "val" if u < cfg.val_fraction else "test" if u < cfg.val_fraction + cfg.test_fraction else "train"
        params = {"seconds": _uniform(rng, cfg.noise_seconds), "seed": int(rng.integers(2**32))}
        items.append(
            Item(
                index=start + offset,
                kind="noise",
                text="",
                engine="noise",
                voice=f"noise:{kind}",
                spec=kind,
                split=split,
                params=params,
                peak_dbfs=_uniform(rng, cfg.noise_peak_dbfs),
            )
        )
    return items


# --------------------------------------------------------------------------- signal helpers


def active_span(wave: np.ndarray, trim_db: float, pad: int) -> tuple[int, int]:
    """[start, end) of the samples within ``trim_db`` of the peak, widened by ``pad`` samples.

    Synthetic speech has digital silence around it, so a sample threshold finds
    the sound exactly; the pad keeps the soft tails that fall just below it.
    """
    magnitude = np.abs(wave)
    peak = float(magnitude.max()) if wave.size else 0.0
    if peak <= 0.0:
        raise SynthesisError("silent output")
    loud = np.flatnonzero(magnitude > peak * 10 ** (-trim_db / 20))
    return max(int(loud[0]) - pad, 0), min(int(loud[-1]) + 1 + pad, wave.size)


def _read_wav_bytes(data: bytes) -> np.ndarray:
    wave, sr = sf.read(io.BytesIO(data), dtype="float32")
    return audio.resample(wave if wave.ndim == 1 else wave.mean(axis=1), int(sr))


def _seconds(seconds: float) -> int:
    return int(round(seconds * audio.SAMPLE_RATE))


# --------------------------------------------------------------------------- engines


# What an engine returns for one utterance: trimmed 16 kHz audio and the keyword span in samples (or None).
Synthesized = tuple[np.ndarray, tuple[int, int] | None]


def synth_espeak(item: Item, cfg: CorpusConfig) -> Synthesized:
    """Pieces synthesized one by one, trimmed, joined with the planned gaps; keyword span exact."""
    p = item.params
    args = ["-s", str(p["speed"]), "-p", str(p["pitch"]), "-g", str(p["word_gap"])]
    pad = _seconds(cfg.trim_pad_seconds)
    parts, span, cursor = [], None, 0
    for i, piece in enumerate(item.pieces):
        if i:
            gap = np.zeros(_seconds(item.gaps[i - 1]), np.float32)
            parts.append(gap)
            cursor += gap.size
        try:
            wave = _read_wav_bytes(_run_espeak(item.spec, piece, args, cfg.timeout_seconds))
            a, b = active_span(wave, cfg.trim_db, pad)
        except (SynthesisError, subprocess.TimeoutExpired) as error:
            raise SynthesisError(f"{item.voice}: {item.text!r}: piece {piece!r}: {error}") from None
        parts.append(wave[a:b])
        if i == item.keyword_piece:
            span = (cursor, cursor + b - a)
        cursor += b - a
    return np.concatenate(parts), span


_FESTIVAL_PRELUDE = """
(define (ac_report idx utt out)
  (utt.synth utt)
  (utt.save.wave utt out 'riff)
  (mapcar (lambda (w)
            (format t "@@W %s %s %f %f\\n" idx (item.name w) (item.feat w 'word_start) (item.feat w 'word_end)))
          (utt.relation.items utt 'Word))
  (format t "@@OK %s\\n" idx))
(define (ac_lr base factor)
  (list (list 'target_f0_mean (* factor (car (cdr (assoc 'target_f0_mean base)))))
        (list 'target_f0_std (* factor (car (cdr (assoc 'target_f0_std base)))))
        (list 'model_f0_mean (car (cdr (assoc 'model_f0_mean base))))
        (list 'model_f0_std (car (cdr (assoc 'model_f0_std base))))))
(define (ac_diphone idx utt out stretch factor)
  (Parameter.set 'Duration_Stretch stretch)
  (set! int_lr_params (ac_lr ac_base_lr factor))
  (ac_report idx utt out))
(define (ac_hts idx utt out rate)
  (set! hts_engine_params (append ac_base_hts (list (list "-r" rate))))
  (ac_report idx utt out))
"""


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def festival_script(voice: str, items: Sequence[Item], workdir: Path) -> str:
    """One festival batch script for a chunk of one voice: every parameter set afresh per utterance.

    Setting everything per utterance keeps each result independent of which
    other utterances share the process, so chunking never changes the audio.
    """
    hts = _is_hts(voice)
    lines = [_FESTIVAL_PRELUDE, f"(voice_{voice})"]
    lines.append("(set! ac_base_hts hts_engine_params)" if hts else "(set! ac_base_lr int_lr_params)")
    for item in items:
        out = _scheme_string(str(workdir / f"{item.index}.wav"))
        utt = f"(Utterance Text {_scheme_string(item.text)})"
        stretch = item.params["stretch"]
        if hts:
            lines.append(f'(ac_hts "{item.index}" {utt} {out} {1.0 / stretch:.6f})')
        else:
            factor = 2 ** (item.params["semitones"] / 12)
            lines.append(f'(ac_diphone "{item.index}" {utt} {out} {stretch:.6f} {factor:.6f})')
    return "\n".join(lines) + "\n"


def _parse_festival(stdout: str) -> tuple[dict[str, list[tuple[str, float, float]]], set[str]]:
    words: dict[str, list[tuple[str, float, float]]] = {}
    done = set()
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == "@@W":
            words.setdefault(parts[1], []).append((parts[2].lower(), float(parts[3]), float(parts[4])))
        elif len(parts) == 2 and parts[0] == "@@OK":
            done.add(parts[1])
    return words, done


def synth_festival(items: Sequence[Item], cfg: CorpusConfig, work_root: Path) -> list[Synthesized]:
    """A chunk of one festival voice in ONE festival process (it is slow to start)."""
    voice = items[0].spec
    work_root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="festival-", dir=work_root))
    try:
        script = workdir / "batch.scm"
        script.write_text(festival_script(voice, items, workdir))
        done = subprocess.run(
            ["festival", "-b", str(script)], capture_output=True, text=True, cwd=workdir, timeout=cfg.timeout_seconds
        )
        words, ok = _parse_festival(done.stdout)
        return [_festival_result(item, words, ok, workdir, done.stderr, cfg) for item in items]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _festival_result(item: Item, words: dict, ok: set, workdir: Path, stderr: str, cfg: CorpusConfig) -> Synthesized:
    """Trimmed 16 kHz audio and keyword span (samples) of one festival utterance; loud failure otherwise."""
    path = workdir / f"{item.index}.wav"
    key = str(item.index)
    if key not in ok or not path.exists():
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        raise SynthesisError(f"{item.voice}: {item.text!r}: festival produced no audio ({tail or 'no message'})")
    wave, sr = sf.read(str(path), dtype="float32")
    wave = audio.resample(wave if wave.ndim == 1 else wave.mean(axis=1), int(sr))
    if _is_hts(item.spec) and item.params["semitones"]:
        import librosa

        shift = item.params["semitones"]
        wave = librosa.effects.pitch_shift(wave, sr=audio.SAMPLE_RATE, n_steps=shift).astype(np.float32)
    pad = _seconds(cfg.trim_pad_seconds)
    try:
        a, b = active_span(wave, cfg.trim_db, pad)
    except SynthesisError as error:
        raise SynthesisError(f"{item.voice}: {item.text!r}: {error}") from None
    spoken = words.get(key, [])
    if spoken:  # diphone voices keep recorded room noise in their pauses: cut to the words
        a = max(a, _seconds(spoken[0][1]) - pad)
        b = min(b, _seconds(spoken[-1][2]) + pad)
    span = None
    if item.kind == "keyword":
        hits = [(s, e) for name, s, e in spoken if name == cfg.keyword.lower()]
        if len(hits) != 1:
            raise SynthesisError(f"{item.voice}: {item.text!r}: keyword found {len(hits)} times in festival's words")
        s, e = hits[0]
        span = (min(max(_seconds(s) - a, 0), b - a), min(max(_seconds(e) - a, 0), b - a))
        if span[1] <= span[0]:
            raise SynthesisError(f"{item.voice}: {item.text!r}: empty keyword span {hits[0]}")
    return wave[a:b], span


# --------------------------------------------------------------------------- noise


def _colored_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent: 0 white, 1 pink, 2 brown."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 1 else 1.0
    return np.fft.irfft(spectrum / freqs ** (exponent / 2), n)


def _log_uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def _harmonic_tone(freq: float, t: np.ndarray, harmonics: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of harmonics k*freq with amplitudes ~1/k and random phases, none above Nyquist."""
    out = np.zeros_like(t)
    for k in range(1, harmonics + 1):
        if k * freq < audio.SAMPLE_RATE / 2:
            out += rng.uniform(0.5, 1.0) / k * np.sin(2 * np.pi * k * freq * t + rng.uniform(0, 2 * np.pi))
    return out


def _music(n: int, cfg: CorpusConfig, rng: np.random.Generator) -> np.ndarray:
    """Random notes (a few at once) of additive harmonics, each with a short attack and an exponential decay."""
    out = np.zeros(n)
    attack = max(_seconds(cfg.music_attack_seconds), 1)
    for _ in range(cfg.music_polyphony):
        cursor = 0
        while cursor < n:
            length = min(_seconds(_uniform(rng, cfg.music_note_seconds)), n - cursor)
            t = np.arange(length) / audio.SAMPLE_RATE
            freq = 440.0 * 2 ** ((_integer(rng, cfg.music_midi) - 69) / 12)
            envelope = np.minimum(np.arange(length) / attack, 1.0) * np.exp(-3.0 * t / max(t[-1], 1e-3))
            out[cursor : cursor + length] += envelope * _harmonic_tone(freq, t, cfg.music_harmonics, rng)
            cursor += length
    return out


def make_noise(kind: str, seconds: float, seed: int, cfg: CorpusConfig) -> np.ndarray:
    """One noise-only signal (before level scaling), a pure function of (kind, seconds, seed)."""
    rng = np.random.default_rng(seed)
    n = _seconds(seconds)
    t = np.arange(n) / audio.SAMPLE_RATE
    if kind in ("white", "pink", "brown"):
        return _colored_noise(n, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind], rng)
    if kind == "hum":
        mains = float(cfg.hum_hz[int(rng.integers(len(cfg.hum_hz)))])
        return _harmonic_tone(mains, t, cfg.hum_harmonics, rng) + 0.01 * rng.standard_normal(n)
    if kind == "tone":
        return np.sin(2 * np.pi * _log_uniform(rng, cfg.tone_hz) * t + rng.uniform(0, 2 * np.pi))
    if kind == "sweep":
        f0, f1 = _log_uniform(rng, cfg.tone_hz), _log_uniform(rng, cfg.tone_hz)
        freq = f0 * (f1 / f0) ** (t / max(seconds, 1e-3))
        return np.sin(2 * np.pi * np.cumsum(freq) / audio.SAMPLE_RATE)
    if kind == "music":
        return _music(n, cfg, rng)
    raise ValueError(f"unknown noise kind {kind!r}; known: white pink brown hum tone sweep music")


# --------------------------------------------------------------------------- finishing and writing


def _peak_normalize(wave: np.ndarray, dbfs: float) -> np.ndarray:
    peak = float(np.max(np.abs(wave)))
    return (wave * (10 ** (dbfs / 20) / peak)).astype(np.float32) if peak > 0 else wave.astype(np.float32)


def _fit_padding(item: Item, speech_samples: int, cfg: CorpusConfig) -> tuple[int, int]:
    """Planned lead/trail silence, shrunk proportionally when the file would exceed max_seconds."""
    lead, trail = _seconds(item.lead), _seconds(item.trail)
    room = _seconds(cfg.max_seconds) - speech_samples
    if lead + trail > room:
        scale = max(room, 0) / (lead + trail)
        lead, trail = int(lead * scale), int(trail * scale)
        if room < 0:
            seconds = speech_samples / audio.SAMPLE_RATE
            log.warning("%s %s: %.2f s of speech is longer than max_seconds", item.voice, item.wav, seconds)
    return lead, trail


def _write_item(root: Path, item: Item, wave: np.ndarray, span: tuple[int, int] | None, cfg: CorpusConfig) -> None:
    """Pad, normalize and save one file, then its side file (so a side file vouches for a finished wav)."""
    lead, trail = _fit_padding(item, wave.size, cfg) if item.engine != "noise" else (0, 0)
    wave = np.concatenate([np.zeros(lead, np.float32), wave.astype(np.float32), np.zeros(trail, np.float32)])
    audio.save(root / item.wav, _peak_normalize(wave, item.peak_dbfs))
    meta = {"samples": int(wave.size), "kw": [span[0] + lead, span[1] + lead] if span else None}
    _atomic_write_text(root / item.meta, json.dumps(meta))


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _run_task(root: str, cfg: CorpusConfig, items: Sequence[Item]) -> int:
    """Synthesize and write a batch of items (all festival items of one batch share one voice)."""
    base = Path(root)
    if items[0].engine == "festival":
        results = synth_festival(items, cfg, base / ".work")
        for item, (wave, span) in zip(items, results):
            _write_item(base, item, wave, span, cfg)
        return len(items)
    for item in items:
        if item.engine == "espeak":
            wave, span = synth_espeak(item, cfg)
        else:
            wave, span = make_noise(item.spec, item.params["seconds"], item.params["seed"], cfg), None
        if item.kind == "keyword" and span is None:
            raise SynthesisError(f"{item.voice}: {item.text!r}: no keyword span")
        _write_item(base, item, wave, span, cfg)
    return len(items)


def _worker_init() -> None:
    """Workers die with their parent (Linux), so a killed build leaves no writers behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _tasks(items: Sequence[Item], cfg: CorpusConfig, workers: int) -> list[list[Item]]:
    """Festival chunks (one voice each, slowest first), then espeak/noise batches sized for load balance."""
    tasks: list[list[Item]] = []
    for voice in sorted({i.spec for i in items if i.engine == "festival"}, key=lambda v: (not _is_hts(v), v)):
        mine = [i for i in items if i.engine == "festival" and i.spec == voice]
        tasks += [mine[k : k + cfg.festival_chunk] for k in range(0, len(mine), cfg.festival_chunk)]
    rest = [i for i in items if i.engine != "festival"]
    size = max(1, math.ceil(len(rest) / (workers * _TASKS_PER_WORKER)))
    tasks += [rest[k : k + size] for k in range(0, len(rest), size)]
    return tasks


def _execute(root: Path, cfg: CorpusConfig, tasks: list[list[Item]], workers: int) -> None:
    """Run the tasks inline (one worker) or on a process pool; the first failure stops the build."""
    total, done, started = sum(len(t) for t in tasks), 0, time.monotonic()
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            _run_task(str(root), cfg, task)
        log.info("synthesized %d files in %.1f s", total, time.monotonic() - started)
        return
    step, reported = max(total // _PROGRESS_REPORTS, 1), 0
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
        pending = {pool.submit(_run_task, str(root), cfg, task) for task in tasks}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                if future.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise future.exception()  # type: ignore[misc]
                done += future.result()
            if done - reported >= step or not pending:
                reported = done
                log.info("synthesized %d / %d files (%.0f s)", done, total, time.monotonic() - started)


def _clean_leftovers(root: Path) -> None:
    """Remove what a killed build can leave: temporary files and festival work folders."""
    shutil.rmtree(root / ".work", ignore_errors=True)
    for pattern in ("wav/.*.tmp", "meta/.*.tmp", ".*.tmp"):
        for path in root.glob(pattern):
            path.unlink(missing_ok=True)


def _manifest_row(root: Path, item: Item) -> dict[str, str]:
    meta = json.loads((root / item.meta).read_text())
    samples, kw = meta["samples"], meta["kw"]
    duration = round(samples / audio.SAMPLE_RATE, _SECONDS_DECIMALS)
    scale = 10**_SECONDS_DECIMALS
    kw_start = kw_end = ""
    if kw:  # rounded outwards, so the stated interval still holds the whole keyword
        kw_start = f"{math.floor(kw[0] / audio.SAMPLE_RATE * scale) / scale:.{_SECONDS_DECIMALS}f}"
        kw_end = f"{min(math.ceil(kw[1] / audio.SAMPLE_RATE * scale) / scale, duration):.{_SECONDS_DECIMALS}f}"
    return {
        "path": item.wav,
        "label": str(item.label),
        "kind": item.kind,
        "text": item.text,
        "kw_start": kw_start,
        "kw_end": kw_end,
        "engine": item.engine,
        "voice": item.voice,
        "split": item.split,
        "duration": f"{duration:.{_SECONDS_DECIMALS}f}",
    }


def _write_manifest(root: Path, items: Sequence[Item]) -> Path:
    """All rows to a temporary file, then one rename: a manifest only ever describes a whole corpus."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_manifest_row(root, item) for item in items)
    path = root / "manifest.csv"
    _atomic_write_text(path, buffer.getvalue())
    return path


def _complete(manifest: Path) -> bool:
    """A manifest whose every file is present: nothing to build."""
    if not manifest.exists():
        return False
    with manifest.open(newline="") as handle:
        return all((manifest.parent / row["path"]).exists() for row in csv.DictReader(handle))


def build_corpus(cfg: Mapping[str, Any], root: str | Path, workers: int | None = None) -> Path:
    """Build (or finish) the corpus for ``cfg`` under ``corpus_dir(cfg, root)``; return its manifest path.

    Items whose wav and side file exist are skipped; ``workers`` (default: all
    usable cores) changes only the speed, never the result. Workers are
    *spawned* processes (safe next to torch's threads), so a script calling this
    needs the usual ``if __name__ == "__main__":`` guard.
    """
    settings = CorpusConfig.from_mapping(cfg)
    folder = corpus_dir(cfg, root)
    manifest = folder / "manifest.csv"
    if _complete(manifest):
        return manifest
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per folder; the kernel frees it if we are killed
        if _complete(manifest):
            return manifest
        _clean_leftovers(folder)
        _atomic_write_text(folder / "config.json", json.dumps(_plain(cfg), indent=2, sort_keys=True) + "\n")
        items = plan(settings)
        todo = [i for i in items if not ((folder / i.wav).exists() and (folder / i.meta).exists())]
        workers = workers or len(os.sched_getaffinity(0))
        log.info("corpus %s: %d files planned, %d to synthesize on %d workers", folder, len(items), len(todo), workers)
        if todo:
            _execute(folder, settings, _tasks(todo, settings, workers), workers)
        path = _write_manifest(folder, items)
        _clean_leftovers(folder)
        return path


# --------------------------------------------------------------------------- reading


def _typed(row: Mapping[str, str], base: Path) -> dict[str, Any]:
    """Manifest strings to Python values: path absolute, label int, times float (None when empty)."""
    out: dict[str, Any] = dict(row)
    out["path"] = str(base / row["path"])
    out["label"] = int(row["label"])
    for key in ("kw_start", "kw_end"):
        out[key] = float(row[key]) if row[key] not in ("", None) else None
    out["duration"] = float(row["duration"])
    return out


def read_manifest(path: str | Path) -> list[dict]:
    """Rows of a manifest.csv with typed fields; ``path`` is made absolute (relative to the manifest's folder)."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames}, expected {list(MANIFEST_COLUMNS)}")
        return [_typed(row, path.parent.resolve()) for row in reader]


def summarize(rows: Iterable[Mapping[str, Any]]) -> str:
    """A small table of counts per split x label and per split x engine, for people."""
    rows = list(rows)
    lines = [f"{len(rows)} files, {sum(float(r['duration']) for r in rows) / 3600:.2f} h"]
    splits = [s for s in SPLITS if any(r["split"] == s for r in rows)]
    engines = sorted({r["engine"] for r in rows})
    header = ["split", "keyword", "other", *engines, "voices"]
    lines.append("".join(f"{h:>10}" for h in header))
    for split in splits:
        mine = [r for r in rows if r["split"] == split]
        counts = [sum(int(r["label"]) == 1 for r in mine), sum(int(r["label"]) == 0 for r in mine)]
        counts += [sum(r["engine"] == e for r in mine) for e in engines]
        voices = len({r["voice"] for r in mine if r["engine"] != "noise"})
        lines.append("".join(f"{v:>10}" for v in [split, *counts, voices]))
    return "\n".join(lines)


# --------------------------------------------------------------------------- users' recordings


def _read_keyword_times(path: Path) -> dict[str, tuple[float, float]]:
    """positive/keywords.csv: file,kw_start,kw_end (file relative to positive/)."""
    if not path.exists():
        return {}
    times = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                times[Path(row["file"]).as_posix()] = (float(row["kw_start"]), float(row["kw_end"]))
            except (KeyError, TypeError, ValueError):
                log.warning("%s: skipping bad line %s", path, dict(row))
    return times


def _hash_fraction(seed: int, name: str) -> float:
    """A stable number in [0, 1) from (seed, name): the same file always lands in the same split."""
    digest = hashlib.sha1(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def user_corpus_rows(folder: str | Path, seed: int, val_fraction: float = 0.15) -> list[dict]:
    """Manifest-style rows (absolute paths) for a user's folder of positive/, negative/ and background/ recordings.

    Each file is checked with ``audio.load``; an unusable file is skipped with a
    one-line warning naming it. Voice is ``user:<first subfolder>`` or
    ``user:<file stem>``; the split (train/val) is a seeded hash of the file's
    relative path, so adding files never moves the others.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"user recordings folder {folder} does not exist")
    times = _read_keyword_times(folder / "positive" / "keywords.csv")
    rows = []
    for sub, kind in USER_SUBFOLDERS.items():
        base = folder / sub
        files = sorted(base.rglob("*")) if base.is_dir() else []
        for path in (p for p in files if p.is_file() and p.suffix.lower() in USER_AUDIO_SUFFIXES):
            row = _user_row(path, base, folder, kind, times, seed, val_fraction)
            if row is not None:
                rows.append(row)
    return rows


def _user_row(
    path: Path, base: Path, folder: Path, kind: str, times: Mapping, seed: int, val_fraction: float
) -> dict | None:
    """One validated row, or None (with a warning naming the file) when the file cannot be used."""
    relative = path.relative_to(base)
    try:
        wave = audio.load(path)
    except audio.AudioError as error:
        log.warning("skipping user file %s", error)
        return None
    duration = wave.size / audio.SAMPLE_RATE
    kw_start = kw_end = None
    if kind == "keyword":
        kw_start, kw_end = times.get(relative.as_posix(), (0.0, duration))
        if not 0.0 <= kw_start < kw_end <= duration + 1.0 / audio.SAMPLE_RATE:
            log.warning("skipping user file %s: keyword %s..%s s outside 0..%.3f s", path, kw_start, kw_end, duration)
            return None
        kw_end = min(kw_end, duration)
    voice = relative.parts[0] if len(relative.parts) > 1 else path.stem
    name = path.relative_to(folder).as_posix()
    return {
        "path": str(path.resolve()),
        "label": int(kind == "keyword"),
        "kind": kind,
        "text": "",
        "kw_start": kw_start,
        "kw_end": kw_end,
        "engine": "user",
        "voice": f"user:{voice}",
        "split": "val" if _hash_fraction(seed, name) < val_fraction else "train",
        "duration": duration,
    }
