"""Waveform augmentation for training clips (numpy, per example, in DataLoader workers).

Every function takes an explicit ``numpy.random.Generator`` so that a clip's
augmentation depends only on (seed, epoch, index), never on which worker made
it or in what order: the same config and seed give the same data.

librosa does the offline-quality signal work (pitch shift that keeps duration);
scipy convolves the reverberation; everything else is a line of numpy. The
channel effects themselves (EQ, band-limit, telephone, clipping, gain ramp)
live in ``audioconv.channel``; this module draws and chains them.

Augmentations that change the speaker (formant warp), the room (rooms simulated
with pyroomacoustics) and the channel (random EQ and tilt, band-limiting, a
telephone line, clipping, slow gain changes) all keep the clip's length and
move nothing in time, so the keyword's span in the clip stays right. The
``speaker``, ``room``, ``channel`` and ``level`` functions at the end apply them
in the order a real recording meets them; each draws nothing from the generator
when its probability is 0, so a config with them off gives exactly the clips it
gave before they existed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import librosa
import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import fftconvolve

from audioconv.channel import band_limit, clip_distortion, gain_ramp, random_eq, telephone
from audioconv.files import write_atomically

log = logging.getLogger(__name__)


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
    # --- part of the keyword, not all of it: a positive made a negative (ClipDataset.make_clip)
    partial_keyword_prob: float = 0.0
    partial_keyword_cut: tuple[float, float] = (0.3, 0.7)  # where the word is cut, as a fraction of its span
    partial_keyword_fill_prob: float = 0.0  # of those: the cut part is other speech of the same voice, not silence
    # --- speaker: spectral-envelope (formant) warp, pitch and timing kept; >1 = shorter vocal tract
    formant_prob: float = 0.0
    formant_range: tuple[float, float] = (0.85, 1.15)
    # --- rooms simulated with pyroomacoustics (a seeded bank, cached on disk); exclusive with reverb_prob
    rir_prob: float = 0.0
    rir_count: int = 64
    rir_rt60_range: tuple[float, float] = (0.2, 1.0)
    rir_room_size_range: tuple[float, float] = (3.0, 10.0)  # floor length and width, metres
    rir_room_height_range: tuple[float, float] = (2.4, 4.0)
    rir_seed: int = 0
    # --- speech that arrives band-limited (a phone call, a recording played back) over a wideband background:
    # the speech alone goes through a telephone line before the noise is mixed in
    narrowband_speech_prob: float = 0.0
    # --- channel, after the noise: EQ, clipping, then telephone line or band-limit
    eq_prob: float = 0.0
    eq_bands: tuple[int, int] = (1, 4)  # peaking / shelving biquads per clip
    eq_gain_db: float = 8.0  # each filter's gain is uniform in +-this
    eq_tilt_db_per_octave: float = 2.0  # plus a spectral tilt uniform in +-this (0 dB at 1 kHz)
    clipping_prob: float = 0.0
    clipping_level_range: tuple[float, float] = (0.1, 0.6)  # fraction of the clip's peak where clipping starts
    clipping_soft_prob: float = 0.5  # tanh saturation instead of a hard clip
    telephone_prob: float = 0.0  # 8 kHz line: band-pass, optional mu-law, back to the clip's rate
    telephone_lowpass_hz: tuple[float, float] = (3000.0, 3700.0)
    telephone_highpass_hz: tuple[float, float] = (200.0, 400.0)
    telephone_mulaw_prob: float = 0.7
    bandlimit_prob: float = 0.0  # low-pass only (clips that did not go through the telephone)
    bandlimit_cutoff_hz: tuple[float, float] = (3000.0, 4000.0)
    gain_ramp_prob: float = 0.0  # slow level changes across the clip
    gain_ramp_db: float = 12.0  # the level wanders within a range this wide
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


# --------------------------------------------------------------------------- speaker


def _stft(wave: np.ndarray, n_fft: int, hop: int, window: np.ndarray) -> np.ndarray:
    """[frames, n_fft // 2 + 1]: frames centered on multiples of ``hop`` (zero padding at the ends)."""
    padded = np.pad(wave, n_fft // 2)
    return scipy.fft.rfft(sliding_window_view(padded, n_fft)[::hop] * window, axis=-1)


def _istft(spec: np.ndarray, n_fft: int, hop: int, window: np.ndarray, length: int) -> np.ndarray:
    """Weighted overlap-add inverse of ``_stft`` (``hop`` must divide ``n_fft``): exact when ``spec`` is unchanged."""
    frames = scipy.fft.irfft(spec, n_fft, axis=-1)
    frames *= window
    parts, count = n_fft // hop, len(frames)
    chunks, weights = frames.reshape(count, parts, hop), (window**2).reshape(parts, hop)
    out = np.zeros((count + parts - 1, hop), dtype=frames.dtype)
    norm = np.zeros((count + parts - 1, hop), dtype=frames.dtype)
    for k in range(parts):  # chunk k of frame f lands in output block f + k
        out[k : k + count] += chunks[:, k]
        norm[k : k + count] += weights[k]
    out, norm = out.ravel(), norm.ravel()
    return (out / np.maximum(norm, 1e-8))[n_fft // 2 : n_fft // 2 + length]


def shift_formants(wave: np.ndarray, factor: float, sample_rate: int, lifter_seconds: float = 0.0015) -> np.ndarray:
    """Move the formants by ``factor`` (a vocal-tract-length change) keeping pitch, timing and phase.

    Each STFT frame's log magnitude is split into a smooth envelope (cepstrum
    liftered below ``lifter_seconds``, shorter than any pitch period) and the
    fine structure (the harmonics). Only the envelope is warped along frequency
    (new envelope at f = old envelope at f / factor); the harmonics and the
    phase stay where they are, so the result is resynthesized with the
    original phase and nothing moves in time. Per-bin gain changes are bounded
    to +-24 dB so that empty bands are not blown up.
    """
    n_fft, hop = 512, 128
    if len(wave) < n_fft or factor == 1.0:
        return wave.astype(np.float32)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)  # periodic Hann
    spec = _stft(wave.astype(np.float32), n_fft, hop, window)  # [frames, bins]
    bins = spec.shape[1]
    # a log-magnitude spectrum (rfft bins) is real and even: its cepstrum is its DCT-I
    log_mag = np.abs(spec)
    log_mag += 1e-7
    cepstrum = scipy.fft.dct(np.log(log_mag, out=log_mag), type=1, axis=-1)
    cepstrum[:, max(2, int(lifter_seconds * sample_rate)) :] = 0.0
    envelope = scipy.fft.idct(cepstrum, type=1, axis=-1)
    source = np.clip(np.arange(bins) / factor, 0, bins - 1)  # the warped envelope at bin k is the old one at k / factor
    low = np.floor(source).astype(np.int64)
    weight = (source - low).astype(np.float32)
    change = envelope[:, low]  # becomes the log gain per frame and bin (in place: these arrays are large)
    change *= 1 - weight
    upper = envelope[:, np.minimum(low + 1, bins - 1)]
    upper *= weight
    change += upper
    change -= envelope
    limit = 24.0 / 20.0 * np.log(10.0)
    spec *= np.exp(np.clip(change, -limit, limit, out=change), out=change)
    return _istft(spec, n_fft, hop, window, len(wave)).astype(np.float32)


# --------------------------------------------------------------------------- rooms


def simulate_rir(
    rng: np.random.Generator,
    sample_rate: int,
    rt60_range: Sequence[float],
    size_range: Sequence[float],
    height_range: Sequence[float],
    max_order: int = 60,
) -> np.ndarray:
    """A shoebox room's impulse response (pyroomacoustics image sources), direct path at index 0.

    Random room size, target RT60 (wall absorption by Sabine's formula), source
    and microphone at least 0.5 m from the walls and from each other. The
    leading delay (distance / c, plus the fractional-delay filter's half
    length) is cut and the response scaled so that its first sample, the
    direct path, is 1: convolving with it does not move the keyword in time.
    The tail is cut at the target RT60 (there it is 60 dB down).
    """
    import pyroomacoustics as pra

    for _ in range(100):
        dims = np.array([rng.uniform(*size_range), rng.uniform(*size_range), rng.uniform(*height_range)])
        rt60 = float(rng.uniform(*rt60_range))
        source, mic = (rng.uniform(0.5, dims - 0.5) for _ in range(2))
        if np.linalg.norm(source - mic) < 0.5:
            continue
        try:
            absorption, order = pra.inverse_sabine(rt60, dims)
        except ValueError:  # this room cannot be that reverberant (absorption would be < 0): draw another
            continue
        room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption), max_order=min(order, max_order))
        room.add_source(source)
        room.add_microphone(mic)
        room.compute_rir()
        response = np.asarray(room.rir[0][0], dtype=np.float64)
        direct = np.linalg.norm(source - mic) / pra.constants.get("c") * sample_rate
        expected = int(round(direct)) + pra.constants.get("frac_delay_length") // 2
        lo = max(0, expected - 3)
        peak = lo + int(np.argmax(np.abs(response[lo : expected + 4])))
        response = response[peak : peak + max(2, int(rt60 * sample_rate))]
        return (response / response[0]).astype(np.float32)
    raise RuntimeError(f"no room found for RT60 {rt60_range} and sizes {size_range} x {height_range}")


_RIR_BANKS: dict[str, list[np.ndarray]] = {}
_RIR_VERSION = 1


def rir_bank_key(aug: AugmentConfig) -> str:
    settings = {
        "version": _RIR_VERSION,
        "count": aug.rir_count,
        "rt60": list(aug.rir_rt60_range),
        "size": list(aug.rir_room_size_range),
        "height": list(aug.rir_room_height_range),
        "seed": aug.rir_seed,
        "sample_rate": aug.sample_rate,
    }
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def rir_bank(aug: AugmentConfig, cache_dir: str | os.PathLike | None = None) -> list[np.ndarray]:
    """``aug.rir_count`` simulated room responses, seeded by ``aug.rir_seed`` (response i from [seed, i]).

    Computed once per process (memoized by settings) and, with ``cache_dir``,
    once per machine: ``cache_dir/<key>.npz``, written atomically. Without
    pyroomacoustics, one warning and an empty bank (the synthetic rooms remain).
    """
    key = rir_bank_key(aug)
    if key in _RIR_BANKS:
        return _RIR_BANKS[key]
    path = Path(cache_dir) / f"{key}.npz" if cache_dir is not None else None
    if path is not None and path.is_file():
        with np.load(path) as stored:
            buffer, offsets = stored["buffer"], stored["offsets"]
        bank = [buffer[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    else:
        try:
            import pyroomacoustics  # noqa: F401
        except ImportError:
            log.warning("pyroomacoustics is not installed: no simulated rooms (pip install pyroomacoustics)")
            _RIR_BANKS[key] = []
            return []
        log.info("simulating %d room impulse responses (once; cached as %s)", aug.rir_count, path or "-")
        bank = [
            simulate_rir(
                np.random.default_rng([aug.rir_seed, i]),
                aug.sample_rate,
                aug.rir_rt60_range,
                aug.rir_room_size_range,
                aug.rir_room_height_range,
            )
            for i in range(aug.rir_count)
        ]
        if path is not None:
            _save_npz(path, buffer=np.concatenate(bank), offsets=np.cumsum([0] + [len(r) for r in bank]))
    _RIR_BANKS[key] = bank
    return bank


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:  # a file, not a name: np.savez would add ".npz" to the name
            np.savez(handle, **arrays)

    write_atomically(path, write)


# --------------------------------------------------------------------------- the chain (ClipDataset.make_clip)


def _happens(rng: np.random.Generator, prob: float) -> bool:
    """A draw only when the augmentation is on: with prob 0 the random stream is untouched."""
    return prob > 0 and rng.random() < prob


def speaker(clip: np.ndarray, aug: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Speaker changes that keep timing: the formant warp (pitch is ``shift_pitch``, drawn before)."""
    if _happens(rng, aug.formant_prob):
        low, high = np.log(aug.formant_range[0]), np.log(aug.formant_range[1])
        clip = shift_formants(clip, float(np.exp(rng.uniform(low, high))), aug.sample_rate)
    return clip


def room(clip: np.ndarray, aug: AugmentConfig, rng: np.random.Generator, rooms: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Reverberation: a simulated room from ``rooms`` (share ``rir_prob``), else a synthetic one (``reverb_prob``).

    One draw decides between them; without a bank (no pyroomacoustics) the
    simulated share falls back to synthetic rooms.
    """
    draw = rng.random()
    if draw < aug.rir_prob and len(rooms):
        return reverberate(clip, rooms[int(rng.integers(len(rooms)))])
    if draw < aug.rir_prob + aug.reverb_prob:
        response = synthetic_room(rng, float(rng.uniform(*aug.reverb_t60_range)), aug.sample_rate)
        return reverberate(clip, response)
    return clip


def narrowband(clip: np.ndarray, aug: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Speech that arrives through a telephone line before any background joins it (``narrowband_speech_prob``).

    Why: ``channel`` band-limits speech and background together, as a phone
    call recorded in noise would be. But speech heard over a phone or a
    loudspeaker, in a room with music, is narrowband while the music is not:
    nothing of the voice above ~3.5 kHz, where a model trained on wideband
    speech looks for much of the keyword, and the background's energy there.
    Real recordings of that kind were where the shipped model found almost
    nothing over music (issue 8).
    """
    return phone_line(clip, aug, rng) if _happens(rng, aug.narrowband_speech_prob) else clip


def phone_line(clip: np.ndarray, aug: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """The telephone line of ``aug`` (``telephone_*``): for the speech alone (``narrowband``) or the whole clip
    (``channel``)."""
    return telephone(clip, rng, aug.sample_rate, aug.telephone_lowpass_hz, aug.telephone_highpass_hz,
                     aug.telephone_mulaw_prob)


def channel(clip: np.ndarray, aug: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """What the line does to speech and noise alike: EQ, clipping, then a telephone line or a low-pass."""
    sr = aug.sample_rate
    if _happens(rng, aug.eq_prob):
        clip = random_eq(clip, rng, sr, aug.eq_bands, aug.eq_gain_db, aug.eq_tilt_db_per_octave)
    if _happens(rng, aug.clipping_prob):
        level = float(rng.uniform(*aug.clipping_level_range))
        clip = clip_distortion(clip, level, soft=bool(rng.random() < aug.clipping_soft_prob))
    if _happens(rng, aug.telephone_prob):
        clip = phone_line(clip, aug, rng)
    elif _happens(rng, aug.bandlimit_prob):
        clip = band_limit(clip, float(rng.uniform(*aug.bandlimit_cutoff_hz)), sr)
    return clip


def level(clip: np.ndarray, aug: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Last: slow gain changes across the clip, then the overall gain."""
    if _happens(rng, aug.gain_ramp_prob):
        clip = gain_ramp(clip, rng, aug.gain_ramp_db)
    return apply_gain(clip, float(rng.uniform(*aug.gain_range_db)))


def record(
    clip: np.ndarray, aug: AugmentConfig | None, rng: np.random.Generator, noises: Sequence[np.ndarray],
    rooms: Sequence[np.ndarray] = (), reference_rms: float | None = None,
) -> np.ndarray:
    """What a recording does to a clip, in the order it happens: the speaker (pitch, formants), the room,
    background noise at a random SNR (relative to ``reference_rms``: the keyword's level, when there is one),
    (the speech perhaps through a phone line first: ``narrowband``), then the channel, which carries the noise
    too (EQ, clipping, telephone / band-limit), and the level last.

    Shared by the keyword clips and the phonetic task's whole utterances (``audioconv.utterances``),
    so both see the same voices and rooms. Nothing is drawn when ``aug`` is None.
    """
    if aug and rng.random() < aug.pitch_prob:
        clip = shift_pitch(clip, float(rng.uniform(-aug.pitch_semitones, aug.pitch_semitones)), aug.sample_rate)
    if aug:  # the speaker (formants), then the room (simulated or synthetic), then a phone line carrying the speech alone
        clip = narrowband(room(speaker(clip, aug, rng), aug, rng, rooms), aug, rng)
    if aug and len(noises) and rng.random() < aug.noise_prob:
        noise = random_crop(noises[int(rng.integers(len(noises)))], len(clip), rng)
        clip = mix_at_snr(clip, noise, float(rng.uniform(*aug.snr_range_db)), reference_rms)
    if aug:  # the channel carries the noise too; level last
        clip = level(channel(clip, aug, rng), aug, rng)
    return clip.astype(np.float32)
