"""Noise-only files (colored noise, mains hum, tones, sweeps, synthetic music), made with numpy.

They are negatives ("no speech") and, within their split, the background pool
that training and evaluation streams mix under speech. Each file is a pure
function of (kind, seconds, seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from audioconv import audio
from audioconv.corpus.engines.base import Item, samples
from audioconv.corpus.texts import integer, uniform

NAME = "noise"
KINDS = ("white", "pink", "brown", "hum", "tone", "sweep", "music")


@dataclass(frozen=True)
class Settings:
    count: int
    kinds: tuple[str, ...]
    seconds: tuple[float, float]
    peak_dbfs: tuple[float, float]
    hum_hz: tuple[float, ...]  # mains frequency, with harmonics
    hum_harmonics: int
    tone_hz: tuple[float, float]  # pure tones and the ends of sweeps (log-uniform)
    music_midi: tuple[int, int]
    music_note_seconds: tuple[float, float]
    music_harmonics: int
    music_polyphony: int
    music_attack_seconds: float


def plan(settings: Settings, rng: np.random.Generator) -> list[Item]:
    """Noise files with kinds balanced; their split is decided by the view, per file."""
    unknown = sorted(set(settings.kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown noise kinds {unknown}; known: {' '.join(KINDS)}")
    kinds = [settings.kinds[i % len(settings.kinds)] for i in range(settings.count)]
    kinds = [kinds[int(i)] for i in rng.permutation(len(kinds))]
    return [
        Item(
            index=index,
            kind="noise",
            text="",
            engine=NAME,
            voice=f"noise:{kind}",
            spec=kind,
            params={"seconds": uniform(rng, settings.seconds), "seed": int(rng.integers(2**32))},
            peak_dbfs=uniform(rng, settings.peak_dbfs),
        )
        for index, kind in enumerate(kinds)
    ]


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


def _music(n: int, settings: Settings, rng: np.random.Generator) -> np.ndarray:
    """Random notes (a few at once) of additive harmonics, each with a short attack and an exponential decay."""
    out = np.zeros(n)
    attack = max(samples(settings.music_attack_seconds), 1)
    for _ in range(settings.music_polyphony):
        cursor = 0
        while cursor < n:
            length = min(samples(uniform(rng, settings.music_note_seconds)), n - cursor)
            t = np.arange(length) / audio.SAMPLE_RATE
            freq = 440.0 * 2 ** ((integer(rng, settings.music_midi) - 69) / 12)
            envelope = np.minimum(np.arange(length) / attack, 1.0) * np.exp(-3.0 * t / max(t[-1], 1e-3))
            out[cursor : cursor + length] += envelope * _harmonic_tone(freq, t, settings.music_harmonics, rng)
            cursor += length
    return out


def make_noise(kind: str, seconds: float, seed: int, settings: Settings) -> np.ndarray:
    """One noise-only signal (before level scaling), a pure function of (kind, seconds, seed)."""
    rng = np.random.default_rng(seed)
    n = samples(seconds)
    t = np.arange(n) / audio.SAMPLE_RATE
    if kind in ("white", "pink", "brown"):
        return _colored_noise(n, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind], rng)
    if kind == "hum":
        mains = float(settings.hum_hz[int(rng.integers(len(settings.hum_hz)))])
        return _harmonic_tone(mains, t, settings.hum_harmonics, rng) + 0.01 * rng.standard_normal(n)
    if kind == "tone":
        return np.sin(2 * np.pi * _log_uniform(rng, settings.tone_hz) * t + rng.uniform(0, 2 * np.pi))
    if kind == "sweep":
        f0, f1 = _log_uniform(rng, settings.tone_hz), _log_uniform(rng, settings.tone_hz)
        freq = f0 * (f1 / f0) ** (t / max(seconds, 1e-3))
        return np.sin(2 * np.pi * np.cumsum(freq) / audio.SAMPLE_RATE)
    if kind == "music":
        return _music(n, settings, rng)
    raise ValueError(f"unknown noise kind {kind!r}; known: {' '.join(KINDS)}")
