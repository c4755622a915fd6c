"""Each few-frame replacement computes what the layer it replaces computes (to float32 rounding)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from audioconv.fast_layers import ChannelAffine, EvalDropout, UnfoldConv1d, UnfoldPool1d, speed_up_for_few_frames

TOLERANCE = 1e-5
CHANNELS = 6
FRAMES = 23  # odd, so strided layers leave a remainder


def trained_batch_norm(norm: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """A batch norm with non-trivial running statistics and affine parameters, in eval mode."""
    norm.train()
    for _ in range(3):
        norm(torch.randn(*shape) * 3 + 1)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    return norm.eval()


LAYERS = {
    "dense": lambda: nn.Conv1d(CHANNELS, 5, 3),
    "dense-strided-dilated-bias": lambda: nn.Conv1d(CHANNELS, 5, 4, stride=3, dilation=2),
    "pointwise": lambda: nn.Conv1d(CHANNELS, 7, 1, bias=False),
    "depthwise-dilated": lambda: nn.Conv1d(CHANNELS, CHANNELS, 5, dilation=3, groups=CHANNELS, bias=False),
    "depthwise-strided-bias": lambda: nn.Conv1d(CHANNELS, CHANNELS, 3, stride=2, groups=CHANNELS),
    "avg-pool": lambda: nn.AvgPool1d(4, 3),
    "max-pool-dilated": lambda: nn.MaxPool1d(3, 2, dilation=2),
    "batch-norm": lambda: trained_batch_norm(nn.BatchNorm1d(CHANNELS), (4, CHANNELS, FRAMES)),
    "dropout": lambda: nn.Dropout(0.5).eval(),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_replacement_equals_the_layer(name: str) -> None:
    torch.manual_seed(0)
    layer = LAYERS[name]()
    holder = speed_up_for_few_frames(nn.Sequential(layer))
    assert isinstance(holder[0], (UnfoldConv1d, UnfoldPool1d, ChannelAffine, EvalDropout))
    x = torch.randn(2, CHANNELS, FRAMES)[..., 1:]  # a strided view, like a stream's cached tail
    with torch.no_grad():
        torch.testing.assert_close(holder[0](x), layer(x), rtol=0, atol=TOLERANCE)


def test_batch_norm_2d_becomes_an_affine_map() -> None:
    torch.manual_seed(0)
    norm = trained_batch_norm(nn.BatchNorm2d(CHANNELS), (4, CHANNELS, 5, FRAMES))
    x = torch.randn(2, CHANNELS, 5, FRAMES)
    with torch.no_grad():
        torch.testing.assert_close(ChannelAffine(norm)(x), norm(x), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize(
    "layer",
    [nn.Conv1d(4, 4, 3, padding=1), nn.Conv1d(4, 8, 3, groups=2), nn.AvgPool1d(3, padding=1),
     nn.BatchNorm1d(4, track_running_stats=False), nn.Dropout(0.1)],
    ids=["padded-conv", "grouped-conv", "padded-pool", "norm-without-statistics", "training-dropout"],
)
def test_layers_it_cannot_reproduce_are_left_alone(layer: nn.Module) -> None:
    holder = speed_up_for_few_frames(nn.Sequential(layer))
    assert holder[0] is layer
