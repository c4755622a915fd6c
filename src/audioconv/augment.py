"""Waveform augmentation for training clips (numpy, per example, in DataLoader workers).

Every function takes an explicit ``numpy.random.Generator`` so that a clip's
augmentation depends only on (seed, epoch, index), never on which worker made
it or in what order: the same config and seed give the same data.

librosa does the offline-quality signal work (pitch shift that keeps duration);
scipy convolves the reverberation; everything else is a line of numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np
from scipy.signal import fftconvolve


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges; the defaults live in conf/data/welcome.yaml."""

    context_prob: float = 0.0  # surround the utterance with other speech (ClipDataset.add_context)
    context_gap_range: tuple[float, float] = (0.03, 0.8)
    speed_prob: float = 0.5
    speed_range: tuple[float, float] = (0.9, 1.1)
    pitch_prob: float = 0.3
    pitch_semitones: float = 2.0
    reverb_prob: float = 0.3
    reverb_t60_range: tuple[float, float] = (0.15, 0.8)
    noise_prob: float = 0.8
    snr_range_db: tuple[float, float] = (0.0, 25.0)
    gain_range_db: tuple[float, float] = (-18.0, 6.0)
    sample_rate: int = 16_000


def change_speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (tempo and pitch together), by linear interpolation.

    Linear interpolation is enough for a ±10 % change and costs one pass.
    """
    length = max(1, int(round(len(wave) / factor)))
    positions = np.arange(length) * factor
    return np.interp(positions, np.arange(len(wave)), wave).astype(np.float32)


def shift_pitch(wave: np.ndarray, semitones: float, sample_rate: int) -> np.ndarray:
    """Pitch shift that keeps the duration (and therefore the keyword's position)."""
    return librosa.effects.pitch_shift(wave, sr=sample_rate, n_steps=semitones, res_type="soxr_mq").astype(np.float32)


def synthetic_room(rng: np.random.Generator, t60: float, sample_rate: int) -> np.ndarray:
    """Impulse response of a simple room: a direct path, then exponentially decaying noise.

    The amplitude falls by 60 dB over ``t60`` seconds; the direct path sits at
    index 0 so convolving does not move the keyword in time.
    """
    length = max(2, int(t60 * sample_rate))
    time = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.9 * time / t60)
    tail[: int(0.002 * sample_rate)] = 0.0  # first reflections arrive after a few ms
    response = tail * rng.uniform(0.1, 0.5) / (np.sqrt(np.sum(tail**2)) + 1e-9)
    response[0] = 1.0
    return response.astype(np.float32)


def reverberate(wave: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Convolve with a room response, keeping the length and the overall level."""
    wet = fftconvolve(wave, response)[: len(wave)]
    return (wet * rms(wave) / (rms(wet) + 1e-9)).astype(np.float32)


def rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)) + 1e-12))


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float, reference_rms: float | None = None) -> np.ndarray:
    """Add ``noise`` so that (reference) signal power / noise power = ``snr_db``.

    ``reference_rms`` lets a positive clip set the SNR against the keyword's own
    level rather than against a clip that is mostly silence.
    """
    reference = reference_rms if reference_rms is not None else rms(signal)
    scale = reference / (rms(noise) * 10 ** (snr_db / 20))
    return (signal + scale * noise).astype(np.float32)


def random_crop(wave: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A ``length``-sample piece at a random place; shorter waves are placed at random in zeros."""
    if len(wave) >= length:
        start = int(rng.integers(0, len(wave) - length + 1))
        return wave[start : start + length].copy()
    out = np.zeros(length, dtype=np.float32)
    start = int(rng.integers(0, length - len(wave) + 1))
    out[start : start + len(wave)] = wave
    return out


def apply_gain(wave: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale by ``gain_db``; a clip pushed past full scale is scaled back rather than clipped."""
    out = wave * 10 ** (gain_db / 20)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > 1.0:
        out = out / peak
    return out.astype(np.float32)
