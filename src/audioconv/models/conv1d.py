"""Raw-waveform detector: a learnable filterbank, then dilated 1D convolutions.

wave [B, T]
  -> Conv1d(1, F, filter_length, stride=filter_stride)   learnable band-pass filters
  -> |.| -> AvgPool(pool_length, pool_stride) -> log      envelope per filter, 10 ms hop
  -> Conv1d(F, C, 3, stride=2)                            20 ms hop
  -> TemporalBlock x N (dilated, depthwise-separable)     receptive field grows to ~1 s
  -> Conv1d(C, 1, 1)                                      one logit per frame  -> [B, T']

Rectify-and-average is how a filterbank becomes an energy envelope; sampling
the filter output directly at a 10 ms stride would alias it into noise. The log
turns a change of gain into an additive offset that the following layers can
learn to ignore.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from audioconv.geometry import TimeLayer
from audioconv.models.base import Detector
from audioconv.models.layers import blocks_time_layers, make_norm, temporal_stack_and_head


class Conv1dDetector(Detector):
    """Keyword detector on the raw waveform: a learnable filterbank, log envelopes, dilated 1D convolutions.

    The defaults are ``conf/model/conv1d.yaml``'s: hop 20 ms (320 samples), receptive field ~0.92 s.

    Args:
        filters (int, optional): Learnable band-pass filters. (Default: ``32``)
        filter_length (int, optional): Taps of each filter, in samples. (Default: ``64``, 4 ms)
        filter_stride (int, optional): Stride of the filterbank, in samples. (Default: ``8``)
        pool_length (int, optional): Envelope window, in filterbank outputs. (Default: ``40``, 20 ms)
        pool_stride (int, optional): Envelope hop, in filterbank outputs. (Default: ``20``, 10 ms)
        channels, kernel, dilations, separable, gated, norm, dropout: The dilated temporal stack
            (``layers.temporal_stack_and_head`` says what each does); ``norm`` also normalizes the
            envelopes and the downsampling conv.
        pool (str, optional): Envelope pooling, ``"avg"`` or ``"max"``. (Default: ``"avg"``)
        log_floor (float, optional): Added to the envelope before the log. (Default: ``1e-4``)
        sample_rate (int, optional): Sample rate of the input waveform, in Hz. (Default: ``16000``)

    Shape:
        wave ``[batch, time]`` -> logits ``[batch, output_length(time)]``: one per hop.
    """

    def __init__(
        self,
        filters: int = 32,
        filter_length: int = 64,
        filter_stride: int = 8,
        pool_length: int = 40,
        pool_stride: int = 20,
        channels: int = 96,
        kernel: int = 5,
        dilations: Sequence[int] = (1, 2, 4, 4),
        separable: bool = True,
        gated: bool = False,
        norm: str = "batch",
        pool: str = "avg",
        dropout: float = 0.1,
        log_floor: float = 1e-4,
        sample_rate: int = 16_000,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.log_floor = log_floor
        self.pool_length, self.pool_stride = pool_length, pool_stride
        self.filterbank = nn.Conv1d(1, filters, filter_length, stride=filter_stride, bias=False)
        if pool == "avg":
            self.pool = nn.AvgPool1d(pool_length, pool_stride)
        elif pool == "max":
            self.pool = nn.MaxPool1d(pool_length, pool_stride)
        else:
            raise ValueError(f"unknown pool {pool!r}: choose avg or max")
        self.filter_norm = make_norm(norm, filters)
        self.downsample = nn.Sequential(
            nn.Conv1d(filters, channels, 3, stride=2, bias=False), make_norm(norm, channels), nn.ReLU()
        )
        self.blocks, self.head = temporal_stack_and_head(channels, kernel, dilations, separable, gated, norm, dropout)

    @property
    def time_layers(self) -> list[TimeLayer]:
        first = self.filterbank
        front = [
            TimeLayer("filterbank", first.kernel_size[0], first.stride[0]),
            TimeLayer("pool", self.pool_length, self.pool_stride),
            TimeLayer("downsample", 3, 2),
        ]
        return front + blocks_time_layers(self.blocks)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """First-layer feature maps (log filter envelopes): wave [B, T] -> [B, filters, frames]."""
        envelope = self.pool(self.filterbank(wave.unsqueeze(1)).abs())
        return torch.log(envelope + self.log_floor)

    def embed(self, wave: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """The hidden features the head reads: wave [B, T] -> [B, channels, T'] (one vector per frame);
        ``depth``: after that many temporal blocks only (``Detector.embed``)."""
        x = self.filter_norm(self.features(wave))
        return self.blocks[:depth](self.downsample(x))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(wave)).squeeze(1)
