"""Spectrogram front end as ``nn.Module``s: frame, window, FFT, magnitude, (mel), log.

Written out step by step rather than calling ``torch.stft`` so the framing is
visible: a spectrogram is itself a convolution-like scan, a window of
``n_fft`` samples moved ``hop_length`` samples at a time. There is no center
padding, so frame ``i`` covers samples ``[i * hop, i * hop + n_fft)`` exactly,
which keeps the whole detector fully convolutional in time.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import nn

from audioconv.geometry import TimeLayer


class FramedSpectrogram(nn.Module):
    """Magnitude spectrogram. wave [B, T] -> magnitude [B, n_fft // 2 + 1, frames].

    Equal to ``torch.stft(wave, n_fft, hop_length, window=hann(n_fft), center=False).abs()``.

    ``dft_as_conv`` (off by default) computes the same thing as one strided
    convolution: frame + window + DFT is a Conv1d whose kernels are the
    windowed cosines and sines of the DFT basis, with stride ``hop_length``.
    It needs neither ``unfold`` nor ``rfft``, which ONNX exporters handle badly
    along a dynamic time axis (``audioconv.export`` switches it on in its copy
    of the model). The two agree to float32 rounding (~1e-6 relative).
    """

    def __init__(self, n_fft: int = 400, hop_length: int = 160) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.dft_as_conv = False
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @property
    def time_layers(self) -> list[TimeLayer]:
        return [TimeLayer("stft", kernel=self.n_fft, stride=self.hop_length)]

    def dft_kernels(self) -> torch.Tensor:
        """Windowed DFT basis as Conv1d weights [2 * bins, 1, n_fft]: real parts, then imaginary parts."""
        n = torch.arange(self.n_fft, dtype=torch.int64)
        bins = torch.arange(self.n_fft // 2 + 1, dtype=torch.int64)
        phase = (bins[:, None] * n[None, :]) % self.n_fft  # exact integer angle index, then one rounding
        angle = phase.to(torch.float64) * (2 * math.pi / self.n_fft)
        window = self.window.to(torch.float64)
        basis = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window])
        return basis.unsqueeze(1).to(self.window.dtype)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if self.dft_as_conv:
            bins = self.n_fft // 2 + 1
            spectrum = nn.functional.conv1d(wave.unsqueeze(1), self.dft_kernels(), stride=self.hop_length)
            real, imaginary = spectrum[:, :bins], spectrum[:, bins:]  # [B, bins, frames] each
            return torch.sqrt(real * real + imaginary * imaginary)
        frames = wave.unfold(-1, self.n_fft, self.hop_length)  # [B, frames, n_fft]
        spectrum = torch.fft.rfft(frames * self.window, dim=-1)  # [B, frames, bins]
        # |z| as sqrt(re^2 + im^2): the same value as spectrum.abs() (its hypot guards an overflow that audio
        # cannot reach) in about a third of the time on CPU, where abs() was a third of a member's scan
        power = spectrum.real.square() + spectrum.imag.square()
        return power.sqrt().transpose(-1, -2)  # [B, bins, frames]


class LogSpectrogram(nn.Module):
    """Framed magnitude, optionally through a mel filterbank, then log.

    wave [B, T] -> features [B, n_bins, frames] with n_bins = n_mels, or
    n_fft // 2 + 1 when ``n_mels`` is 0 (plain log-magnitude).
    """

    def __init__(
        self,
        sample_rate: int = 16_000,
        n_fft: int = 400,
        hop_length: int = 160,
        n_mels: int = 40,
        f_min: float = 20.0,
        f_max: float | None = None,
        log_floor: float = 1e-6,
    ) -> None:
        super().__init__()
        self.spectrogram = FramedSpectrogram(n_fft, hop_length)
        self.log_floor = log_floor
        self.n_bins = n_mels if n_mels > 0 else n_fft // 2 + 1
        if n_mels > 0:
            filterbank = torchaudio.functional.melscale_fbanks(
                n_freqs=n_fft // 2 + 1,
                f_min=f_min,
                f_max=f_max or sample_rate / 2,
                n_mels=n_mels,
                sample_rate=sample_rate,
                norm="slaney",
                mel_scale="slaney",
            )  # [n_freqs, n_mels]
            self.register_buffer("mel", filterbank.T.contiguous(), persistent=False)
        else:
            self.mel = None

    @property
    def time_layers(self) -> list[TimeLayer]:
        return self.spectrogram.time_layers

    def forward(self, wave: torch.Tensor, warps: torch.Tensor | None = None) -> torch.Tensor:
        """``warps`` [B] (mel only, optional): each clip's filterbank warped by its factor (``warp_filterbank``)."""
        return self.from_magnitude(self.spectrogram(wave), warps)

    def from_magnitude(self, magnitude: torch.Tensor, warps: torch.Tensor | None = None) -> torch.Tensor:
        """The features from a framed magnitude [B, bins, frames] (``FramedSpectrogram``): mel, then log. Detectors
        that differ only in their filterbank (``PitchGated``'s warped copies) share one magnitude this way."""
        if self.mel is not None:
            mel = self.mel if warps is None else warp_filterbank(self.mel, warps)  # [M, F] or [B, M, F]
            magnitude = torch.matmul(mel, magnitude)
        return torch.log(magnitude + self.log_floor)


def warp_filterbank(filterbank: torch.Tensor, warps: torch.Tensor) -> torch.Tensor:
    """Vocal-tract length perturbation (VTLP, Jaitly & Hinton 2013): one warped filterbank per factor.

    filterbank [M, F] (filters over FFT bins), warps [B] -> [B, M, F]. The filter
    that responded at bin ``k`` now responds at ``k / warp``: the image of a voice
    moves as if every frequency in it, formants and harmonics, were multiplied by
    ``warp`` (> 1: a shorter vocal tract, higher voice). Filters are resampled by
    linear interpolation (zero past the top bin) and scaled by ``warp`` so a
    filter's area, and the level of a flat spectrum, stay put. A warp of 1 gives
    the filterbank back exactly.
    """
    bins = filterbank.shape[-1]
    position = warps.to(filterbank.dtype)[:, None] * torch.arange(bins, dtype=filterbank.dtype, device=filterbank.device)
    below = position.floor().long().clamp(max=bins - 1)  # [B, F]
    above = (below + 1).clamp(max=bins - 1)
    fraction = (position - below.to(position.dtype)).unsqueeze(1)  # [B, 1, F]
    inside = (position <= bins - 1).to(filterbank.dtype).unsqueeze(1)
    low = filterbank[:, below].permute(1, 0, 2)  # [B, M, F]
    high = filterbank[:, above].permute(1, 0, 2)
    return (low + (high - low) * fraction) * inside * warps.to(filterbank.dtype)[:, None, None]
