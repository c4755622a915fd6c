"""Property tests for the audio loader: whatever the length, rate, channels and sample format,
``audio.load`` gives float32 mono at 16 kHz, of the expected length, finite, and within full scale for PCM.

Files are written to a fresh temporary directory per example (function-scoped
pytest fixtures are not reset between hypothesis examples).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audioconv import audio

SUBTYPES = ("PCM_16", "PCM_24", "FLOAT", "DOUBLE")
PCM_TOLERANCE = 1e-6
QUANTUM = {"PCM_16": 1.5 / 2**15, "PCM_24": 1.5 / 2**23, "FLOAT": 1e-6, "DOUBLE": 1e-6}  # write + read error bound


@st.composite
def sound_files(draw) -> tuple[np.ndarray, int, str]:
    """(samples [frames, channels] float64 within [-1, 1], sample rate, subtype)."""
    frames = draw(st.integers(1, 5000))
    rate = draw(st.one_of(st.sampled_from([8_000, 11_025, 16_000, 22_050, 44_100, 48_000, 96_000]), st.integers(8_000, 96_000)))
    channels = draw(st.integers(1, 8))
    subtype = draw(st.sampled_from(SUBTYPES))
    kind = draw(st.sampled_from(["noise", "full_scale", "tone", "silence"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "noise":
        data = rng.uniform(-1.0, 1.0, (frames, channels))
    elif kind == "full_scale":  # the worst case for resampling overshoot: alternating +-1
        data = np.where(rng.random((frames, channels)) < 0.5, -1.0, 1.0)
    elif kind == "tone":
        t = np.arange(frames)[:, None] / rate
        data = 0.9 * np.sin(2 * np.pi * rng.uniform(20, rate / 2) * t + rng.uniform(0, 2 * np.pi, channels))
    else:
        data = np.zeros((frames, channels))
    return data, rate, subtype


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sound_files())
def test_load_gives_mono_16k_float32_of_the_right_length(case: tuple[np.ndarray, int, str]) -> None:
    data, rate, subtype = case
    frames, channels = data.shape
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "case.wav"
        sf.write(path, data, rate, subtype=subtype)
        wave = audio.load(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(wave.size - round(frames * audio.SAMPLE_RATE / rate)) <= 1
    assert np.all(np.isfinite(wave))
    if subtype.startswith("PCM"):
        assert np.abs(wave).max() <= 1.0 + PCM_TOLERANCE
    if rate == audio.SAMPLE_RATE:  # no resampling: the channel mean of what was written, to the format's precision
        np.testing.assert_allclose(wave, data.mean(axis=1), rtol=0, atol=QUANTUM[subtype])
