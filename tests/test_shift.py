"""Shifts by whole hops move the frame scores by whole frames; the clip score (max over frames) does not move.

Shifts that are not a multiple of the hop put the input on a different sampling
grid, so the frame scores are not a shifted copy and the clip score moves a
little. On random weights that amount means nothing, so here it is only printed;
``benchmarks/shift_sensitivity.py`` measures it on trained weights.
"""

import pytest
import torch

from audioconv.models import Conv1dDetector, SpectrogramDetector

MODELS = [Conv1dDetector, SpectrogramDetector]


def make_model(model_class) -> torch.nn.Module:
    torch.manual_seed(0)
    return model_class().double().eval()


def padded(content: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """content [T] with ``before`` and ``after`` zeros, as a batch of one."""
    return torch.nn.functional.pad(content, (before, after)).unsqueeze(0)


@pytest.mark.parametrize("model_class", MODELS)
def test_whole_hop_shift_shifts_frames(model_class) -> None:
    """Equivariance: model(x[k*hop:])[:n] == model(x)[k:k+n]."""
    model = make_model(model_class)
    hop, rf = model.hop, model.receptive_field
    x = torch.randn(1, rf + 30 * hop, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.no_grad():
        frames = model(x)[0]
        for k in (1, 3, 7):
            shifted = model(x[:, k * hop :])[0]
            n = shifted.shape[0]
            assert n == frames.shape[0] - k
            torch.testing.assert_close(shifted, frames[k : k + n], atol=1e-9, rtol=0)


@pytest.mark.parametrize("model_class", MODELS)
def test_whole_hop_shift_keeps_clip_score(model_class) -> None:
    """Invariance: the same content k hops later, still surrounded by zeros, has the same max frame."""
    model = make_model(model_class)
    hop, rf = model.hop, model.receptive_field
    content = torch.randn(model.sample_rate // 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 0.1
    margin = rf + 8 * hop  # every version keeps all-zero windows at both ends
    with torch.no_grad():
        reference = model.clip_logits(padded(content, margin, margin))
        for k in (1, 2, 5):
            moved = model.clip_logits(padded(content, margin + k * hop, margin - k * hop))
            torch.testing.assert_close(moved, reference, atol=1e-9, rtol=0)


@pytest.mark.parametrize("model_class", MODELS)
def test_sub_hop_shift_moves_clip_score_a_little(model_class) -> None:
    """Not a multiple of the hop: the clip score moves. Only finiteness is asserted; the size is printed."""
    model = make_model(model_class)
    hop, rf = model.hop, model.receptive_field
    content = torch.randn(model.sample_rate // 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 0.1
    margin = rf + 2 * hop
    with torch.no_grad():
        reference = torch.sigmoid(model.clip_logits(padded(content, margin, margin)))
        for shift in (1, hop // 4, hop // 2):
            moved = torch.sigmoid(model.clip_logits(padded(content, margin + shift, margin - shift)))
            change = (moved - reference).abs().item()
            print(f"{model_class.__name__}: shift {shift} samples -> |clip probability change| {change:.2e}")
            assert torch.isfinite(moved).all() and change < 1.0
