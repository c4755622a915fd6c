"""SVOX Pico (PyPI ``ttspico``): the small unit-selection-like engine of Android's past, en-US and en-GB.

Natural-sounding, two voices; pitch and rate (percent) vary the speaker and
the tempo. Fast: far quicker than real time. Pico's output depends on what
the same engine said before, so every piece gets a fresh engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from audioconv.corpus.engines.base import Item, SynthesisError, Synthesized, Voice, assemble, pick, to_16k
from audioconv.corpus.texts import integer

NAME = "pico"
LANGUAGES = ("en-US", "en-GB")
SAMPLE_RATE = 16_000  # Pico speaks 16-bit PCM at 16 kHz


@dataclass(frozen=True)
class Settings:
    utterances: dict
    voices: tuple[str, ...] | None
    pitch: tuple[int, int]  # percent of the voice's own
    rate: tuple[int, int]  # percent


def unavailable() -> str | None:
    try:
        import ttspico  # noqa: F401
    except ImportError:
        return "ttspico is not installed (pip install ttspico; it builds with gcc and the Python headers)"
    return None


def _engine(language: str):
    """A fresh engine per piece: Pico's output depends on what it said before (a few ms to make)."""
    import ttspico

    return ttspico.TtsEngine(language)


def voices(settings: Settings) -> list[Voice]:
    return [Voice(f"pico:{lang}", NAME, lang) for lang in pick(LANGUAGES, settings.voices, "pico voices")]


def params(settings: Settings, voice: Voice, rng: np.random.Generator) -> dict:
    return {"pitch": integer(rng, settings.pitch), "rate": integer(rng, settings.rate)}


def _say(language: str, text: str, pitch: int, rate: int) -> np.ndarray:
    engine = _engine(language)
    engine.pitch, engine.rate = pitch, rate
    pcm = engine.speak(text)
    if not pcm:
        raise SynthesisError("no audio")
    return to_16k(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0, SAMPLE_RATE)


def synthesize(items: Sequence[Item], settings: Settings, shared, workdir: Path) -> Iterator[Synthesized]:
    for item in items:
        p = item.params
        yield assemble(item, lambda t: _say(item.spec, t, p["pitch"], p["rate"]), shared.trim_db,
                       shared.trim_pad_seconds)
