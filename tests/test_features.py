"""The framed-FFT front end equals the library STFTs it is written to replace."""

import librosa
import numpy as np
import pytest
import torch

from audioconv.features import FramedSpectrogram, LogSpectrogram, warp_filterbank


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


# --------------------------------------------------------------------------- VTLP: the warped filterbank


def test_warp_of_one_gives_the_filterbank_back() -> None:
    mel = LogSpectrogram().mel
    warped = warp_filterbank(mel, torch.tensor([1.0, 1.0]))
    assert warped.shape == (2, *mel.shape)
    assert torch.equal(warped[0], mel) and torch.equal(warped[1], mel)


@pytest.mark.parametrize("warp", [0.8, 0.9, 1.1, 1.25])
def test_a_warped_filterbank_hears_a_tone_where_the_warped_tone_would_be(warp: float) -> None:
    """Warp w on a tone at f looks like the unwarped front end on a tone at w * f: formants and pitch move together."""
    frontend = LogSpectrogram()
    t = torch.arange(16_000) / 16_000
    for hz in (500.0, 1200.0, 2500.0):
        warped = frontend(torch.sin(2 * torch.pi * hz * t)[None], torch.tensor([warp]))[0].mean(-1)
        moved = frontend(torch.sin(2 * torch.pi * hz * warp * t)[None])[0].mean(-1)
        assert int(warped.argmax()) == int(moved.argmax())
        assert abs(float(warped.max() - moved.max())) < 0.3  # level kept (log units)


def test_each_clip_gets_its_own_warp_and_levels_are_kept_for_a_flat_spectrum() -> None:
    frontend = LogSpectrogram()
    noise = torch.randn(1, 16_000, generator=torch.Generator().manual_seed(0)).repeat(3, 1)
    features = frontend(noise, torch.tensor([1.0, 0.85, 1.2]))
    assert torch.allclose(features[0], frontend(noise[:1])[0])
    assert not torch.allclose(features[1], features[0]) and not torch.allclose(features[2], features[0])
    # white noise is flat: below the top band, a warped filterbank reads about the same level
    middle = slice(5, 30)
    for clip in (1, 2):
        assert float((features[clip, middle] - features[0, middle]).mean(-1).abs().max()) < 0.25


def test_vtlp_warps_only_in_training_and_only_the_share_asked() -> None:
    from audioconv.models.spectrogram import FilterbankWarp, SpectrogramDetector

    warp = FilterbankWarp(0.5, (0.8, 1.25)).train()
    torch.manual_seed(0)
    draws = warp(4000, torch.device("cpu"))
    changed = draws != 1.0
    assert 0.45 < float(changed.float().mean()) < 0.55
    assert float(draws.min()) >= 0.8 - 1e-6 and float(draws.max()) <= 1.25 + 1e-6
    assert warp.eval()(8, torch.device("cpu")) is None
    assert FilterbankWarp(0.0).train()(8, torch.device("cpu")) is None
    # a detector with VTLP on scans exactly as one without it (eval mode), and trains with a different image
    torch.manual_seed(1)
    plain = SpectrogramDetector(channels=8, dilations=(1,), conv2d_channels=(4, 4), dropout=0.0, freq_mask=0, time_mask=0)
    warped = SpectrogramDetector(channels=8, dilations=(1,), conv2d_channels=(4, 4), dropout=0.0, freq_mask=0, time_mask=0,
                                 warp_prob=1.0, warp_range=(0.8, 0.8))
    warped.load_state_dict(plain.state_dict())
    wave = torch.randn(2, 20_000)
    plain.eval(), warped.eval()
    assert torch.equal(plain(wave), warped(wave))
    plain.train(), warped.train()
    assert not torch.allclose(plain(wave), warped(wave))
    with pytest.raises(ValueError, match="warp_prob"):
        FilterbankWarp(1.5)
    with pytest.raises(ValueError, match="warp_range"):
        FilterbankWarp(0.5, (1.2, 0.9))
    with pytest.raises(ValueError, match="n_mels"):
        SpectrogramDetector(n_mels=0, warp_prob=0.5)
