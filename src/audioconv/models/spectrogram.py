"""Spectrogram detector: framed FFT -> log-mel image -> 2D CNN that stays convolutional in time.

wave [B, T]
  -> LogSpectrogram (frame 25 ms, hop 10 ms, FFT, |.|, mel, log)   [B, n_mels, frames]
  -> (training only: the mel filterbank warped per clip, by its pitch (VTLN) and/or
     at random (VTLP); SpecAugment masks)
  -> Conv2d blocks over (frequency, time): frequency padded and strided,
     time unpadded                                                 [B, C2, n_mels / 4, frames']
  -> frequency folded into channels, 1x1 conv                      [B, C, frames']
  -> TemporalBlock x N (dilated, depthwise-separable)              receptive field ~1 s
  -> Conv1d(C, 1, 1)                                               one logit per 20 ms frame

Frequency may be padded (the image is finite in frequency), time may not: a
frame's score must depend only on the audio inside its receptive field.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torchaudio
from torch import nn

from audioconv.features import LogSpectrogram
from audioconv.geometry import TimeLayer
from audioconv.models.base import Detector
from audioconv.models.layers import blocks_time_layers, make_norm, temporal_stack_and_head
from audioconv.models.pitch_gate import GATE_FACTORS, ClipPitchWarp, GateRule


class SpecAugment(nn.Module):
    """Random frequency and time masks (torchaudio), active in training mode only."""

    def __init__(self, freq_mask: int = 6, time_mask: int = 10, num_masks: int = 2) -> None:
        super().__init__()
        self.masks = nn.ModuleList()
        for _ in range(num_masks):
            if freq_mask > 0:
                self.masks.append(torchaudio.transforms.FrequencyMasking(freq_mask, iid_masks=True))
            if time_mask > 0:
                self.masks.append(torchaudio.transforms.TimeMasking(time_mask, iid_masks=True))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return features
        x = features.unsqueeze(1)  # iid masks want [B, C, F, T]
        for mask in self.masks:
            x = mask(x, mask_value=0.0)  # features are batch-normalized: 0 is their mean
        return x.squeeze(1)


class FilterbankWarp(nn.Module):
    """VTLP: in training, a random warp factor per clip for the mel filterbank (``features.warp_filterbank``).

    A fraction ``prob`` of the clips gets a factor drawn log-uniformly from
    ``warp_range``; the rest get 1. Drawn from torch's generator, which training
    reseeds per batch (as SpecAugment's masks). In eval mode: ``None``, the
    filterbank as it is.
    """

    def __init__(self, prob: float = 0.0, warp_range: Sequence[float] = (0.8, 1.25)) -> None:
        super().__init__()
        low, high = (float(x) for x in warp_range)
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"warp_prob must be in [0, 1], got {prob}")
        if not 0.0 < low <= high:
            raise ValueError(f"warp_range must be 0 < low <= high, got {list(warp_range)}")
        self.prob, self.low, self.high = float(prob), low, high

    def forward(self, batch: int, device: torch.device) -> torch.Tensor | None:
        if not self.training or self.prob == 0.0:
            return None
        draws = torch.rand(2, batch, device=device)
        log_warp = math.log(self.low) + draws[0] * (math.log(self.high) - math.log(self.low))
        return torch.where(draws[1] < self.prob, torch.exp(log_warp), torch.ones_like(log_warp))


class Conv2dBlock(nn.Module):
    """Conv2d (freq padded, time unpadded) -> BatchNorm2d -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, freq_stride: int, time_stride: int) -> None:
        super().__init__()
        self.kernel, self.time_stride = kernel, time_stride
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel, stride=(freq_stride, time_stride), padding=(kernel // 2, 0), bias=False
        )
        self.norm = nn.BatchNorm2d(out_channels)

    @property
    def time_layers(self) -> list[TimeLayer]:
        return [TimeLayer("conv2d", self.kernel, self.time_stride)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(x)))


class SpectrogramDetector(Detector):
    """Keyword detector on a log-mel spectrogram: 2D convolutions (time unpadded), then dilated 1D convolutions.

    The defaults are ``conf/model/spectrogram.yaml``'s: hop 20 ms (320 samples), receptive field ~0.95 s.

    Args:
        n_fft (int, optional): Frame length of the spectrogram, in samples. (Default: ``400``, 25 ms)
        hop_length (int, optional): Hop of the spectrogram, in samples. (Default: ``160``, 10 ms)
        n_mels (int, optional): Mel bands; ``0`` for the plain log-magnitude spectrogram. (Default: ``40``)
        conv2d_channels (Sequence[int], optional): Output channels of each 3x3 conv2d block (frequency
            stride 2 each). (Default: ``(16, 32)``)
        conv2d_time_strides (Sequence[int], optional): Time stride of each conv2d block. (Default: ``(1, 2)``)
        channels, kernel, dilations, separable, gated, norm, dropout: The dilated temporal stack
            (``layers.temporal_stack_and_head`` says what each does); ``norm`` also normalizes the
            frequency fold.
        freq_mask (int, optional): SpecAugment: widest frequency mask, in mel bins (training only).
            (Default: ``6``)
        time_mask (int, optional): SpecAugment: widest time mask, in frames (training only). (Default: ``10``)
        warp_prob (float, optional): VTLP: share of training clips whose mel filterbank is warped (a
            speaker's vocal-tract length and pitch moved together; ``FilterbankWarp``). (Default: ``0``)
        warp_range (Sequence[float], optional): VTLP: warp factors, drawn log-uniformly. (Default: ``(0.8, 1.25)``)
        pitch_warp (bool, optional): VTLN: in training, warp each clip's mel filterbank by the factor the
            pitch gate would give its voice (``pitch_gate.ClipPitchWarp``), so the model learns in the
            space ``PitchGated`` scores in. Scans and saved weights are unchanged. (Default: ``False``)
        pitch_warp_factors (Sequence[float], optional): VTLN: the gate's warps the clips are moved to
            (``pitch_gate.GateRule``; gate the trained model with the same ones). (Default: ``(0.85, 1, 1.15)``)
        sample_rate (int, optional): Sample rate of the input waveform, in Hz. (Default: ``16000``)

    Shape:
        wave ``[batch, time]`` -> logits ``[batch, output_length(time)]``: one per hop.
    """

    def __init__(
        self,
        n_fft: int = 400,
        hop_length: int = 160,
        n_mels: int = 40,
        conv2d_channels: Sequence[int] = (16, 32),
        conv2d_time_strides: Sequence[int] = (1, 2),
        channels: int = 96,
        kernel: int = 5,
        dilations: Sequence[int] = (1, 2, 4, 4),
        separable: bool = True,
        gated: bool = False,
        norm: str = "batch",
        dropout: float = 0.1,
        freq_mask: int = 6,
        time_mask: int = 10,
        warp_prob: float = 0.0,
        warp_range: Sequence[float] = (0.8, 1.25),
        pitch_warp: bool = False,
        pitch_warp_factors: Sequence[float] = GATE_FACTORS,
        sample_rate: int = 16_000,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.frontend = LogSpectrogram(sample_rate, n_fft, hop_length, n_mels)
        self.input_norm = nn.BatchNorm1d(self.frontend.n_bins)
        self.specaugment = SpecAugment(freq_mask, time_mask)
        self.warp = FilterbankWarp(warp_prob, warp_range)
        if (warp_prob > 0 or pitch_warp) and n_mels == 0:
            raise ValueError("warp_prob and pitch_warp need a mel filterbank (n_mels > 0)")
        layers, in_channels, bins = [], 1, self.frontend.n_bins
        for out_channels, time_stride in zip(conv2d_channels, conv2d_time_strides):
            layers.append(Conv2dBlock(in_channels, out_channels, 3, freq_stride=2, time_stride=time_stride))
            in_channels, bins = out_channels, (bins + 1) // 2
        self.conv2d = nn.Sequential(*layers)
        self.fold = nn.Sequential(nn.Conv1d(in_channels * bins, channels, 1, bias=False), make_norm(norm, channels), nn.ReLU())
        self.blocks, self.head = temporal_stack_and_head(channels, kernel, dilations, separable, gated, norm, dropout)
        # pitch frames at the output hop, as the gate's (``VoicePitch``)
        self.pitch_warp = ClipPitchWarp(sample_rate, self.hop, GateRule(tuple(pitch_warp_factors))) if pitch_warp else None

    @property
    def time_layers(self) -> list[TimeLayer]:
        return list(self.frontend.time_layers) + blocks_time_layers(self.conv2d) + blocks_time_layers(self.blocks)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """The log-mel image the CNN looks at: wave [B, T] -> [B, n_mels, frames]."""
        return self.frontend(wave)

    def embed(self, wave: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """The hidden features the head reads: wave [B, T] -> [B, channels, T'] (one vector per frame);
        ``depth``: after that many temporal blocks only (``Detector.embed``)."""
        warps = self.warp(wave.shape[0], wave.device)  # None outside training
        if self.training and self.pitch_warp is not None:
            by_pitch = self.pitch_warp(wave)
            warps = by_pitch if warps is None else warps * by_pitch
        # scans go through features(): streaming swaps the front end for a one-argument window (audioconv.streaming)
        features = self.features(wave) if warps is None else self.frontend(wave, warps)
        return self.embed_features(features, depth)

    def embed_features(self, features: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """``embed`` from the log-mel image [B, n_mels, frames] on (``features`` or ``frontend.from_magnitude``)."""
        x = self.specaugment(self.input_norm(features))
        x = self.conv2d(x.unsqueeze(1))  # [B, C, bins, frames]
        x = self.fold(x.flatten(1, 2))  # frequency folded into channels
        return self.blocks[:depth](x)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(wave)).squeeze(1)

    def logits_from_magnitude(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Frame logits [B, T'] from a framed magnitude [B, bins, frames] computed elsewhere: ``forward`` at
        inference without its own FFT (``PitchGated`` computes one for all its warped copies)."""
        return self.head(self.embed_features(self.frontend.from_magnitude(magnitude))).squeeze(1)
