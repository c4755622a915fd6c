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
    """Samples of input that one output frame depends on: the last entry of ``cumulative``."""
    rows = cumulative(layers)
    return rows[-1][2] if rows else 1


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
    """Multiply-adds per second of audio, counted by hooks on conv/linear layers (``macs_per_second_by_part``)."""
    return macs_per_second_by_part(model, [("model", model)], sample_rate, seconds)["model"]


def macs_per_second_by_part(
    model: nn.Module, parts: Sequence[tuple[str, nn.Module]], sample_rate: int, seconds: float = 4.0
) -> dict[str, float]:
    """Conv/linear multiply-adds per second of audio, per named part of ``model`` (its submodules).

    Counted by forward hooks on a ``seconds``-long input (model in eval mode) and
    scaled to one second, so the fixed cost of the receptive field's first window
    is amortized as it is in a long scan.
    """
    totals = {name: 0 for name, _ in parts}

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if isinstance(module, nn.Linear):
                per_output = module.in_features
            else:  # in_channels / groups * kernel
                per_output = module.weight.shape[1] * math.prod(module.weight.shape[2:])
            totals[name] += output.numel() // output.shape[0] * per_output

        return hook

    handles = [
        leaf.register_forward_hook(hook_for(name))
        for name, part in parts
        for leaf in part.modules()
        if isinstance(leaf, (nn.Conv1d, nn.Conv2d, nn.Linear))
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, int(seconds * sample_rate)))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return {name: total / seconds for name, total in totals.items()}


def describe(layers: Iterable[TimeLayer], sample_rate: int) -> str:
    """One line: hop and receptive field in samples and milliseconds."""
    layers = list(layers)
    h, rf = hop(layers), receptive_field(layers)
    return f"hop {h} samples ({1000 * h / sample_rate:.0f} ms), receptive field {rf} samples ({1000 * rf / sample_rate:.0f} ms)"
