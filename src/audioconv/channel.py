"""Channel effects: what a microphone, a line or a recorder does to a waveform (numpy, per clip).

Random EQ and spectral tilt (``random_eq``), low-pass band-limiting
(``band_limit``), a telephone line with an optional mu-law codec
(``telephone``, ``mu_law``), clipping (``clip_distortion``) and slow level
changes (``gain_ramp``). Each keeps the clip's length and moves nothing in
time (zero-phase filters, applied as magnitudes in the frequency domain,
zero-padded against wrap-around), so a keyword's span stays right. Random
choices come from the ``numpy.random.Generator`` passed in; which effects a
training clip gets, and with what settings, is ``augment.channel`` /
``augment.level`` (``AugmentConfig``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.fft


def _biquad(kind: str, freq: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """One RBJ-cookbook biquad (peaking, lowshelf or highshelf) as an sos row."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * freq / sample_rate
    cos, alpha = np.cos(w0), np.sin(w0) / (2 * q)
    if kind == "peaking":
        b = [1 + alpha * a, -2 * cos, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos, 1 - alpha / a]
    else:
        sign = 1 if kind == "lowshelf" else -1
        root = 2 * np.sqrt(a) * alpha
        b = [
            a * ((a + 1) - sign * (a - 1) * cos + root),
            sign * 2 * a * ((a - 1) - sign * (a + 1) * cos),
            a * ((a + 1) - sign * (a - 1) * cos - root),
        ]
        den = [(a + 1) + sign * (a - 1) * cos + root, -sign * 2 * ((a - 1) + sign * (a + 1) * cos), (a + 1) + sign * (a - 1) * cos - root]
    return np.concatenate([b, den]) / den[0]


def _sos_magnitude(sos: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """|H(e^{j omega})| of biquads in series (rows b0 b1 b2 a0=1 a1 a2), without complex arithmetic."""
    cos1, cos2 = np.cos(omega), np.cos(2 * omega)
    power = np.ones_like(omega)
    for b0, b1, b2, a0, a1, a2 in sos:
        numerator = b0 * b0 + b1 * b1 + b2 * b2 + 2 * (b0 * b1 + b1 * b2) * cos1 + 2 * b0 * b2 * cos2
        denominator = a0 * a0 + a1 * a1 + a2 * a2 + 2 * (a0 * a1 + a1 * a2) * cos1 + 2 * a0 * a2 * cos2
        power *= numerator / denominator
    return np.sqrt(np.maximum(power, 0.0))


def random_eq(
    wave: np.ndarray,
    rng: np.random.Generator,
    sample_rate: int,
    bands: Sequence[int] = (1, 4),
    gain_db: float = 8.0,
    tilt_db_per_octave: float = 2.0,
) -> np.ndarray:
    """A random microphone / loudspeaker coloring: a few biquads and a spectral tilt, zero phase.

    Peaking filters (100 Hz .. 0.8 Nyquist, log-uniform; Q 0.5 .. 3) and low /
    high shelves, each with a gain uniform in +-``gain_db``, plus a tilt of
    up to +-``tilt_db_per_octave`` around 1 kHz (flat below 100 Hz). The
    summed magnitude response is applied in the frequency domain with zero
    phase (the clip is zero-padded against wrap-around), so nothing is delayed.
    """
    n = len(wave)
    size = scipy.fft.next_fast_len(n + 2048, real=True)  # 128 ms of zeros take the filters' ringing
    freqs = np.fft.rfftfreq(size, 1 / sample_rate)
    sections = []
    for _ in range(int(rng.integers(bands[0], bands[1] + 1))):
        kind = rng.choice(["peaking", "peaking", "lowshelf", "highshelf"])
        if kind == "peaking":
            freq, q = float(np.exp(rng.uniform(np.log(100.0), np.log(0.4 * sample_rate)))), float(rng.uniform(0.5, 3.0))
        elif kind == "lowshelf":
            freq, q = float(rng.uniform(100.0, 600.0)), 0.707
        else:
            freq, q = float(rng.uniform(2000.0, 0.4 * sample_rate)), 0.707
        sections.append(_biquad(str(kind), freq, float(rng.uniform(-gain_db, gain_db)), q, sample_rate))
    grid = np.linspace(0, sample_rate / 2, 1025)  # smooth responses: computed on a 7.8 Hz grid, interpolated
    response = _sos_magnitude(np.array(sections).reshape(-1, 6), 2 * np.pi * grid / sample_rate)
    tilt = float(rng.uniform(-tilt_db_per_octave, tilt_db_per_octave))
    response *= 10 ** (tilt * np.log2(np.maximum(grid, 100.0) / 1000.0) / 20)
    spectrum = scipy.fft.rfft(wave, size)
    spectrum *= np.interp(freqs, grid, response)
    out = scipy.fft.irfft(spectrum, size)[:n]
    return out.astype(np.float32)


def _fft_size(samples: int) -> int:
    """An even, fast FFT length with 128 ms (at 16 kHz) of zeros after the clip to take the filters' ringing."""
    return 2 * scipy.fft.next_fast_len((samples + 2048 + 1) // 2, real=True)


def _butterworth(freqs: np.ndarray, cutoff_hz: float, order: int, highpass: bool = False) -> np.ndarray:
    """Magnitude of an order-``order`` Butterworth filter run forwards and backwards: 1 / (1 + (f/fc)^(2 order))."""
    ratio = cutoff_hz / np.maximum(freqs, 1e-3) if highpass else freqs / cutoff_hz
    return 1.0 / (1.0 + ratio ** (2 * order))


def band_limit(wave: np.ndarray, cutoff_hz: float, sample_rate: int, highpass_hz: float | None = None) -> np.ndarray:
    """Zero-phase low-pass at ``cutoff_hz`` (Butterworth order 12, forwards-backwards), optional order-4 high-pass.

    Applied as a magnitude in the frequency domain (one FFT pair, zero-padded
    against wrap-around): a few times cheaper than filtering in time, and
    nothing is delayed.
    """
    size = _fft_size(len(wave))
    freqs = np.fft.rfftfreq(size, 1 / sample_rate)
    gain = _butterworth(freqs, cutoff_hz, 12)
    if highpass_hz:
        gain = gain * _butterworth(freqs, highpass_hz, 4, highpass=True)
    return scipy.fft.irfft(scipy.fft.rfft(wave, size) * gain, size)[: len(wave)].astype(np.float32)


def mu_law(wave: np.ndarray, bits: int = 8) -> np.ndarray:
    """Quantize to ``bits``-bit mu-law (G.711-like, mu = 2**bits - 1) and back: fine steps near 0, coarse at the top."""
    mu = 2.0**bits - 1
    x = np.clip(wave, -1.0, 1.0)
    coded = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    coded = np.round((coded + 1) / 2 * mu) / mu * 2 - 1
    return (np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(mu)) / mu).astype(np.float32)


def telephone(
    wave: np.ndarray,
    rng: np.random.Generator,
    sample_rate: int,
    lowpass_hz: Sequence[float] = (3000.0, 3700.0),
    highpass_hz: Sequence[float] = (200.0, 400.0),
    mulaw_prob: float = 0.7,
) -> np.ndarray:
    """A telephone line: band-pass (random edges, nothing at or above 4 kHz), optionally 8-bit mu-law at 8 kHz.

    The band-pass (steep order-16 low-pass, order-4 high-pass, both zero-phase)
    is applied in the frequency domain, where everything at or above the 8 kHz
    line's Nyquist frequency is also zeroed. The signal is then exactly
    representable at 8 kHz: for the mu-law codec it is decimated to 8 kHz
    (every ``sample_rate // 8000``-th sample), quantized, and brought back to
    ``sample_rate`` by ideal (spectral zero-padding) interpolation, band-passed
    again as the receiving end would. Without the codec, the 8 kHz round trip
    is the identity and is skipped. Length and timing are kept.
    """
    line_rate = 8000
    ratio = sample_rate // line_rate
    if ratio * line_rate != sample_rate:
        raise ValueError(f"telephone needs a sample rate that is a multiple of {line_rate} Hz, not {sample_rate}")
    n, size = len(wave), _fft_size(len(wave))
    freqs = np.fft.rfftfreq(size, 1 / sample_rate)
    cutoff = min(float(rng.uniform(*lowpass_hz)), 0.95 * line_rate / 2)
    gain = _butterworth(freqs, cutoff, 16) * _butterworth(freqs, float(rng.uniform(*highpass_hz)), 4, highpass=True)
    gain[freqs >= line_rate / 2] = 0.0
    spectrum = scipy.fft.rfft(wave, size) * gain
    if rng.random() < mulaw_prob:
        line = scipy.fft.irfft(spectrum, size)[::ratio]  # exact: nothing is left at or above 4 kHz
        peak = float(np.max(np.abs(line[: -(-n // ratio)]))) + 1e-9
        level = float(rng.uniform(0.1, 1.0))  # where the line's full scale sits relative to this clip
        line = mu_law(line * (level / peak)) * (peak / level)
        narrow = scipy.fft.rfft(line)
        spectrum = np.zeros(size // 2 + 1, dtype=narrow.dtype)
        spectrum[: len(narrow)] = narrow * ratio
        spectrum *= gain
    return scipy.fft.irfft(spectrum, size)[:n].astype(np.float32)


def clip_distortion(wave: np.ndarray, level: float, soft: bool) -> np.ndarray:
    """Clip at ``level`` times the clip's peak: hard (flat tops) or soft (tanh saturation)."""
    threshold = level * (float(np.max(np.abs(wave))) + 1e-9)
    if soft:
        return (threshold * np.tanh(wave / threshold)).astype(np.float32)
    return np.clip(wave, -threshold, threshold).astype(np.float32)


def gain_ramp(wave: np.ndarray, rng: np.random.Generator, range_db: float) -> np.ndarray:
    """Slow level changes: a gain in dB interpolated linearly between 2-4 random knots across the clip."""
    knots = int(rng.integers(2, 5))
    gains = rng.uniform(-range_db / 2, range_db / 2, size=knots)
    envelope = np.interp(np.arange(len(wave)), np.linspace(0, len(wave) - 1, knots), gains)
    return (wave * 10 ** (envelope / 20)).astype(np.float32)
