"""The same layers, made cheap on inputs only a few frames long (what a stateful stream feeds them).

A streaming push hands each layer a handful of new frames, and there PyTorch's
general CPU kernels cost far more in fixed set-up than in arithmetic. Measured
on one thread (2-core CI machine, 96 channels, 4 frames): a dilated depthwise
``Conv1d`` takes ~50 µs through oneDNN, the same sums as one batched matmul over
an ``unfold`` view ~8 µs; a 1x1 ``Conv1d`` ~13 µs, ``F.linear`` ~5 µs; an
eval-mode ``BatchNorm`` ~9 µs, the per-channel affine map it amounts to ~2 µs.

``speed_up_for_few_frames(module)`` swaps these layers, in place, for
equivalents that compute the same numbers (to float32 rounding: only the order
of the additions changes). It is meant for an eval-mode *copy* used for
inference only: the replacements hold frozen snapshots of the weights and
BatchNorm statistics, and the state_dict keys change. Layers it cannot
reproduce exactly (padded or grouped-but-not-depthwise convolutions, batch
norms without running statistics, pools with padding) are left as they are.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _time(value: int | tuple[int, ...] | str) -> int | str:
    """The last-axis (time) entry of a conv/pool size argument."""
    return value[-1] if isinstance(value, (tuple, list)) else value


class UnfoldConv1d(nn.Module):
    """``nn.Conv1d`` without padding (groups 1 or depthwise) as an ``unfold`` view and one matmul.

    x [B, C, T] -> [B, O, T']: the windows each output frame sees are taken
    as a strided view (no copy for the depthwise case), then multiplied by the
    flattened kernel.
    """

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        out_channels, in_per_group, kernel = conv.weight.shape
        self.stride, self.dilation = conv.stride[0], conv.dilation[0]
        self.span = (kernel - 1) * self.dilation + 1
        self.depthwise = conv.groups > 1
        weight = conv.weight.detach()
        if self.depthwise:  # one kernel per channel: [C, kernel, 1], a batch of tiny matmuls
            self.register_buffer("weight", weight.reshape(out_channels, kernel, 1).clone())
        else:  # [O, C * kernel], matching the flattened (channel, tap) order of the windows
            self.register_buffer("weight", weight.reshape(out_channels, in_per_group * kernel).clone())
        bias = conv.bias.detach().clone() if conv.bias is not None else None
        self.register_buffer("bias", bias)

    @staticmethod
    def supports(conv: nn.Module) -> bool:
        """True for a Conv1d this class reproduces: unpadded, and dense or depthwise."""
        if type(conv) is not nn.Conv1d or _time(conv.padding) not in (0, "valid"):
            return False
        return conv.groups == 1 or conv.groups == conv.in_channels == conv.out_channels

    def forward(self, x: Tensor) -> Tensor:
        if self.span == 1 and self.stride == 1 and not self.depthwise:  # 1x1: no windows to gather
            return F.linear(x.transpose(1, 2), self.weight, self.bias).transpose(1, 2)
        windows = x.unfold(-1, self.span, self.stride)  # [B, C, T', span]
        if self.dilation > 1:
            windows = windows[..., :: self.dilation]  # [B, C, T', kernel]
        if self.depthwise:
            y = torch.matmul(windows, self.weight).squeeze(-1)  # [B, C, T']
            return y if self.bias is None else y + self.bias[:, None]
        batch, channels, frames, taps = windows.shape
        flat = windows.transpose(1, 2).reshape(batch, frames, channels * taps)
        return F.linear(flat, self.weight, self.bias).transpose(1, 2)  # [B, O, T'] (a view)


class ChannelAffine(nn.Module):
    """An eval-mode ``BatchNorm1d``/``2d`` folded into ``x * scale + shift`` per channel (axis 1)."""

    def __init__(self, norm: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        scale = torch.rsqrt(norm.running_var.detach() + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight.detach()
        shift = -norm.running_mean.detach() * scale
        if norm.bias is not None:
            shift = shift + norm.bias.detach()
        trailing = (1,) * (1 if isinstance(norm, nn.BatchNorm1d) else 2)  # [C, 1] or [C, 1, 1]
        self.register_buffer("scale", scale.reshape(-1, *trailing).clone())
        self.register_buffer("shift", shift.reshape(-1, *trailing).clone())

    @staticmethod
    def supports(norm: nn.Module) -> bool:
        """Batch norms that normalise with stored statistics (the only kind that acts frame by frame)."""
        return type(norm) in (nn.BatchNorm1d, nn.BatchNorm2d) and norm.running_var is not None

    def forward(self, x: Tensor) -> Tensor:
        return torch.addcmul(self.shift, x, self.scale)


class EvalDropout(nn.Identity):
    """``nn.Dropout`` at inference: the identity, without the ~3 µs ``F.dropout`` call that decides so."""

    def __init__(self, dropout: nn.Module) -> None:
        super().__init__()

    @staticmethod
    def supports(dropout: nn.Module) -> bool:
        return isinstance(dropout, nn.modules.dropout._DropoutNd) and not dropout.training


class UnfoldPool1d(nn.Module):
    """``AvgPool1d``/``MaxPool1d`` without padding as the mean / max of an ``unfold`` view."""

    def __init__(self, pool: nn.Module) -> None:
        super().__init__()
        kernel = _time(pool.kernel_size)
        self.stride = _time(pool.stride) if pool.stride is not None else kernel
        self.dilation = _time(getattr(pool, "dilation", 1))
        self.span = (kernel - 1) * self.dilation + 1
        self.reduce = torch.mean if isinstance(pool, nn.AvgPool1d) else torch.amax

    @staticmethod
    def supports(pool: nn.Module) -> bool:
        if type(pool) not in (nn.AvgPool1d, nn.MaxPool1d) or _time(pool.padding) != 0 or pool.ceil_mode:
            return False
        return not getattr(pool, "return_indices", False) and getattr(pool, "divisor_override", None) is None

    def forward(self, x: Tensor) -> Tensor:
        windows = x.unfold(-1, self.span, self.stride)
        if self.dilation > 1:
            windows = windows[..., :: self.dilation]
        return self.reduce(windows, dim=-1)


REPLACEMENTS: tuple[type[nn.Module], ...] = (UnfoldConv1d, ChannelAffine, UnfoldPool1d, EvalDropout)


def speed_up_for_few_frames(module: nn.Module) -> nn.Module:
    """Replace, in place, every layer one of ``REPLACEMENTS`` reproduces; returns ``module``. Eval copies only."""
    for name, child in module.named_children():
        replacement = next((cls for cls in REPLACEMENTS if cls.supports(child)), None)
        if replacement is not None:
            setattr(module, name, replacement(child))
        else:
            speed_up_for_few_frames(child)
    return module
