"""Building blocks that keep time convolutional: no padding along time, ever.

Each block knows its own ``TimeLayer``s, so a model's hop and receptive field
are computed from the blocks it is made of (see ``audioconv.geometry``).

The "layer zoo" lives here as options of one block, so a config can switch
them: dilation, depthwise-separable vs full convolution (``groups``), gated
convolution, and the normalization (batch / layer / none). Instance
normalization is deliberately absent: it averages over the whole time axis, so a
frame's score would depend on audio outside its receptive field and chunked or
streaming scans could no longer match the whole-file scan.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from torch import Tensor, nn

from audioconv.geometry import TimeLayer


class ChannelLayerNorm(nn.Module):
    """LayerNorm over channels, frame by frame: x [B, C, T] -> [B, C, T]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


def make_norm(kind: str, channels: int) -> nn.Module:
    """'batch' | 'layer' | 'none'. All of them act on each frame independently at inference."""
    if kind == "batch":
        return nn.BatchNorm1d(channels)
    if kind == "layer":
        return ChannelLayerNorm(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: choose batch, layer or none")


def crop_to(x: Tensor, length: int) -> Tensor:
    """Center-crop the time axis to ``length`` (aligns a residual with an unpadded conv's output)."""
    excess = x.shape[-1] - length
    start = excess // 2
    return x[..., start : start + length]


class TemporalBlock(nn.Module):
    """conv (dilated, optionally depthwise-separable or gated) -> norm -> ReLU, + residual.

    x [B, C, T] -> [B, C, T - (kernel - 1) * dilation]
    """

    def __init__(
        self,
        channels: int,
        kernel: int,
        dilation: int = 1,
        separable: bool = True,
        gated: bool = False,
        norm: str = "batch",
        residual: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.kernel, self.dilation, self.gated, self.residual = kernel, dilation, gated, residual
        out_channels = 2 * channels if gated else channels
        if separable:
            self.conv = nn.Sequential(
                nn.Conv1d(channels, channels, kernel, dilation=dilation, groups=channels, bias=False),
                nn.Conv1d(channels, out_channels, 1, bias=False),
            )
        else:
            self.conv = nn.Conv1d(channels, out_channels, kernel, dilation=dilation, bias=False)
        self.norm = make_norm(norm, out_channels)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    @property
    def time_layers(self) -> list[TimeLayer]:
        return [TimeLayer("block", self.kernel, 1, self.dilation)]

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(self.conv(x))
        if self.gated:
            feature, gate = y.chunk(2, dim=1)
            y = feature * gate.sigmoid()
        else:
            y = self.activation(y)
        y = self.dropout(y)
        if self.residual:
            y = y + crop_to(x, y.shape[-1])
        return y


def temporal_stack_and_head(
    channels: int,
    kernel: int,
    dilations: Sequence[int],
    separable: bool,
    gated: bool,
    norm: str,
    dropout: float,
) -> tuple[nn.Sequential, nn.Conv1d]:
    """What both detectors end with: one ``TemporalBlock`` per dilation, then a 1x1 conv to one logit per frame.

    The detectors keep the two as their ``blocks`` and ``head``: the shipped
    weights' keys (``blocks.*``, ``head.*``) and calibration (which rescales
    ``head``) rely on those names.

    Args:
        channels (int): Channels of the temporal convolutions.
        kernel (int): Kernel size of each temporal block.
        dilations (Sequence[int]): Dilation of each temporal block, one block each; with the kernel
            they set how far the receptive field grows.
        separable (bool): Depthwise-separable (``True``: fewer weights and MACs) or full temporal convolutions.
        gated (bool): Multiply each block's features by a sigmoid gate.
        norm (str): ``"batch"``, ``"layer"`` or ``"none"`` (``make_norm``).
        dropout (float): Dropout in the temporal blocks (training only).
    """
    blocks = nn.Sequential(
        *[
            TemporalBlock(channels, kernel, d, separable=separable, gated=gated, norm=norm, dropout=dropout)
            for d in dilations
        ]
    )
    return blocks, nn.Conv1d(channels, 1, 1)


def blocks_time_layers(blocks: Iterable[nn.Module]) -> list[TimeLayer]:
    """The ``TimeLayer``s of a sequence of blocks, in order (each block lists its own)."""
    return [layer for block in blocks for layer in block.time_layers]
