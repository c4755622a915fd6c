"""What every speech engine shares: voices, planned items, trimming, and speaking in pieces.

An engine module (``espeak``, ``festival``, ``pico``, ``piper``, ``kokoro``)
provides a small interface, read by ``audioconv.corpus.build``:

* ``Settings`` — a frozen dataclass of its ``engines.<name>`` config section;
* ``unavailable() -> str | None`` — why it cannot run here (None when it can);
* ``voices(settings) -> list[Voice]`` — every voice id it offers;
* ``params(settings, voice, rng) -> dict`` — per-utterance prosody, drawn from the plan's generator;
* ``synthesize(items, settings, shared, workdir) -> list[Synthesized]`` — audio for a batch of items;
* optionally ``prepare() -> None`` — one-time set-up run in the building process before any worker
  starts (e.g. a model cache that parallel workers would otherwise all try to write at once).

Most engines cannot say where a word starts, so utterances are assembled from
pieces ("you are" | "welcome" | "back") synthesized separately, trimmed to
their sound and joined by short planned gaps (``assemble``): the keyword span
is then exact to the sample, and negatives are cut the same way so piece
joins are no cue. Festival, which reports word times, speaks whole texts.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import soundfile as sf

from audioconv import audio

# What an engine returns for one utterance: trimmed 16 kHz audio and the keyword span in samples (or None).
Synthesized = tuple[np.ndarray, "tuple[int, int] | None"]


class SynthesisError(RuntimeError):
    """An utterance that could not be made; the message names voice and text."""


@dataclass(frozen=True)
class Voice:
    """A voice id as it appears in the manifest, and how to ask its engine for it."""

    id: str  # "espeak:en-us+klatt", "kokoro:jf_alpha+jm_kumo"
    engine: str
    spec: str  # the engine's own name for it (espeak -v argument, festival voice, pico language, ...)


@dataclass
class Item:
    """One file of a corpus part, fully decided before synthesis."""

    index: int
    kind: str  # keyword | speech | confusable | noise
    text: str
    engine: str
    voice: str
    spec: str
    pieces: tuple[str, ...] = ()  # texts synthesized separately, in order (piece engines)
    keyword_piece: int | None = None  # positives: which piece is the keyword
    gaps: tuple[float, ...] = ()  # silence between pieces, seconds
    params: dict = field(default_factory=dict)  # engine parameters (recorded in the manifest)
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


def samples(seconds: float) -> int:
    return int(round(seconds * audio.SAMPLE_RATE))


def active_span(wave: np.ndarray, trim_db: float, pad: int) -> tuple[int, int]:
    """[start, end) of the samples within ``trim_db`` of the peak, widened by ``pad`` samples.

    Synthetic speech has (near) digital silence around it, so a sample
    threshold finds the sound; the pad keeps the soft tails just below it.
    """
    magnitude = np.abs(wave)
    peak = float(magnitude.max()) if wave.size else 0.0
    if peak <= 0.0 or not np.isfinite(peak):
        raise SynthesisError("silent output")
    loud = np.flatnonzero(magnitude > peak * 10 ** (-trim_db / 20))
    return max(int(loud[0]) - pad, 0), min(int(loud[-1]) + 1 + pad, wave.size)


def to_16k(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 at the corpus rate."""
    wave = np.asarray(wave, dtype=np.float32)
    return audio.resample(wave if wave.ndim == 1 else wave.mean(axis=1), int(sample_rate))


def wav_bytes_to_16k(data: bytes) -> np.ndarray:
    wave, sr = sf.read(io.BytesIO(data), dtype="float32")
    return to_16k(wave, int(sr))


def assemble(item: Item, say: Callable[[str], np.ndarray], trim_db: float, trim_pad_seconds: float) -> Synthesized:
    """Speak ``item.pieces`` one by one with ``say`` (16 kHz audio), trim each, join with the planned gaps.

    Returns the joined audio and the keyword piece's exact span (None for negatives).
    """
    pad = samples(trim_pad_seconds)
    parts, span, cursor = [], None, 0
    for i, piece in enumerate(item.pieces):
        if i:
            gap = np.zeros(samples(item.gaps[i - 1]), np.float32)
            parts.append(gap)
            cursor += gap.size
        try:
            wave = say(piece)
            a, b = active_span(wave, trim_db, pad)
        except SynthesisError as error:
            raise SynthesisError(f"{item.voice}: {item.text!r}: piece {piece!r}: {error}") from None
        parts.append(wave[a:b])
        if i == item.keyword_piece:
            span = (cursor, cursor + b - a)
        cursor += b - a
    return np.concatenate(parts), span


def pick(available: Sequence[str], wanted: Sequence[str] | None, what: str) -> list[str]:
    """``wanted`` (in available order) or everything; a wanted name that is not available is an error."""
    if wanted is None:
        return list(available)
    absent = sorted(set(wanted) - set(available))
    if absent:
        raise ValueError(f"{what} not available here: {absent}; available: {list(available)}")
    return [name for name in available if name in set(wanted)]
