"""Time geometry of a fully convolutional detector: hop, receptive field, output length.

Every layer that touches the time axis is described by a ``TimeLayer`` (kernel,
stride, dilation along time, no padding). From the list, in order:

- hop = product of strides (samples between two output frames);
- receptive field = 1 + sum over layers of (kernel - 1) * dilation * (product of
  the strides of the layers before it);
- output length for T input samples = number of complete windows.

Output frame ``i`` of a model is computed from input samples
``[i * hop, i * hop + receptive_field)`` and from nothing else. That single
fact is what makes whole-file, chunked and streaming scans agree exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch import nn


@dataclass(frozen=True)
class TimeLayer:
    """One operation along time: a convolution, a pooling or a framing step."""

    name: str
    kernel: int
    stride: int = 1
    dilation: int = 1

    @property
    def span(self) -> int:
        """How many consecutive input steps one output step sees."""
        return (self.kernel - 1) * self.dilation + 1


def hop(layers: Sequence[TimeLayer]) -> int:
    """Samples between consecutive output frames."""
    return math.prod(layer.stride for layer in layers)


def receptive_field(layers: Sequence[TimeLayer]) -> int:
    """Samples of input that one output frame depends on."""
    field, jump = 1, 1
    for layer in layers:
        field += (layer.kernel - 1) * layer.dilation * jump
        jump *= layer.stride
    return field


def output_length(num_samples: int, layers: Sequence[TimeLayer]) -> int:
    """Frames produced by a layer stack from ``num_samples`` input samples (0 if too short)."""
    length = num_samples
    for layer in layers:
        if length < layer.span:
            return 0
        length = (length - layer.span) // layer.stride + 1
    return length


def cumulative(layers: Sequence[TimeLayer]) -> list[tuple[TimeLayer, int, int]]:
    """Per layer: (layer, hop so far, receptive field so far), for summaries and teaching."""
    rows, field, jump = [], 1, 1
    for layer in layers:
        field += (layer.kernel - 1) * layer.dilation * jump
        jump *= layer.stride
        rows.append((layer, jump, field))
    return rows


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def macs_per_second(model: nn.Module, sample_rate: int, seconds: float = 4.0) -> float:
    """Multiply-adds per second of audio, counted by hooks on conv/linear layers.

    The count is taken on a ``seconds``-long input and scaled to one second, so
    the fixed cost of the receptive field's first window is amortised as it is
    in a long scan.
    """
    total = 0

    def conv_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        weight = module.weight
        per_output = weight.shape[1] * math.prod(weight.shape[2:])  # in_channels / groups * kernel
        total += output.numel() // output.shape[0] * per_output

    def linear_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() // output.shape[0] * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, int(seconds * sample_rate)))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total / seconds


def describe(layers: Iterable[TimeLayer], sample_rate: int) -> str:
    """One line: hop and receptive field in samples and milliseconds."""
    layers = list(layers)
    h, rf = hop(layers), receptive_field(layers)
    return f"hop {h} samples ({1000 * h / sample_rate:.0f} ms), receptive field {rf} samples ({1000 * rf / sample_rate:.0f} ms)"
