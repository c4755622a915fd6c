"""The framed-FFT front end equals the library STFTs it is written to replace."""

import librosa
import numpy as np
import pytest
import torch

from audioconv.features import FramedSpectrogram, LogSpectrogram


@pytest.mark.parametrize("n_fft,hop", [(400, 160), (512, 128), (256, 100)])
def test_framed_spectrogram_equals_torch_stft(n_fft: int, hop: int) -> None:
    wave = torch.randn(3, 16_000, dtype=torch.float64)
    ours = FramedSpectrogram(n_fft, hop).double()(wave)
    reference = torch.stft(
        wave, n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64), center=False, return_complex=True
    ).abs()
    assert ours.shape == reference.shape
    assert torch.max(torch.abs(ours - reference)) < 1e-5


def test_framed_spectrogram_equals_librosa_stft() -> None:
    rng = np.random.default_rng(0)
    wave = rng.standard_normal(8_000).astype(np.float32)
    ours = FramedSpectrogram(400, 160)(torch.from_numpy(wave)[None])[0].numpy()
    reference = np.abs(librosa.stft(wave, n_fft=400, hop_length=160, window="hann", center=False))
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=1e-5)


def test_frame_count_has_no_padding() -> None:
    spectrogram = FramedSpectrogram(400, 160)
    for length in (400, 559, 560, 16_000):
        frames = spectrogram(torch.zeros(1, length)).shape[-1]
        assert frames == (length - 400) // 160 + 1


def test_log_mel_shape_and_tone_lands_in_the_right_band() -> None:
    frontend = LogSpectrogram(sample_rate=16_000, n_fft=400, hop_length=160, n_mels=40)
    t = torch.arange(16_000) / 16_000
    low = frontend(torch.sin(2 * torch.pi * 300 * t)[None])[0].mean(-1)
    high = frontend(torch.sin(2 * torch.pi * 4000 * t)[None])[0].mean(-1)
    assert low.shape == (40,)
    assert int(low.argmax()) < int(high.argmax())


def test_plain_log_magnitude_without_mel() -> None:
    frontend = LogSpectrogram(n_fft=400, hop_length=160, n_mels=0)
    assert frontend(torch.randn(1, 4_000)).shape == (1, 201, 23)
