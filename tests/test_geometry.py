"""Hop, receptive field and output length: computed from the layers, checked by probing the model."""

import pytest
import torch

from audioconv import geometry
from audioconv.geometry import TimeLayer
from audioconv.models import Conv1dDetector, SpectrogramDetector

MODELS = [Conv1dDetector, SpectrogramDetector]


def test_formula_on_a_hand_computed_stack() -> None:
    layers = [TimeLayer("a", 4, 2), TimeLayer("b", 3, 1, dilation=2), TimeLayer("c", 3, 3)]
    # 1 + (4-1)*1 + (3-1)*2*2 + (3-1)*1*2*1 = 1 + 3 + 8 + 4
    assert geometry.receptive_field(layers) == 16
    assert geometry.hop(layers) == 6
    # 100 -> (100-4)//2+1 = 49 -> 49-4 = 45 -> (45-3)//3+1 = 15
    assert geometry.output_length(100, layers) == 15
    assert geometry.output_length(15, layers) == 0


@pytest.mark.parametrize("model_class", MODELS)
def test_output_length_matches_forward(model_class) -> None:
    model = model_class().eval()
    for length in (model.receptive_field, model.receptive_field + model.hop - 1, model.receptive_field + 7 * model.hop, 24_000):
        with torch.no_grad():
            frames = model(torch.randn(1, length)).shape[-1]
        assert frames == model.output_length(length)


@pytest.mark.parametrize("model_class", MODELS)
def test_receptive_field_by_impulse_probe(model_class) -> None:
    """Perturb one sample; exactly the frames whose window covers it may change."""
    torch.manual_seed(0)
    model = model_class().double().eval()
    rf, hop = model.receptive_field, model.hop
    length = rf + 20 * hop
    base = torch.randn(1, length, dtype=torch.float64) * 0.1
    with torch.no_grad():
        reference = model(base)[0]
        for position in (0, rf // 2, rf - 1, length // 2, length - 1):
            probe = base.clone()
            probe[0, position] += 1.0
            changed = (model(probe)[0] - reference).abs() > 1e-12
            expected = torch.tensor([i * hop <= position < i * hop + rf for i in range(len(reference))])
            # a frame outside the window must never change; inside, the first and last
            # sample of the window must reach the output (the window is not overstated)
            assert not torch.any(changed & ~expected), f"frame sees sample {position} outside its window"
    # the window's edges reach frame 0 (a periodic Hann window is exactly 0 at its first
    # sample, so for the spectrogram the edge is one sample in). ReLUs can block one
    # path for one input, so a few random inputs are tried.
    with torch.no_grad():
        for edge in ((0, 1), (rf - 1, rf - 2)):
            reached = False
            for trial in range(8):
                other = torch.randn(1, length, dtype=torch.float64, generator=torch.Generator().manual_seed(trial))
                before = model(other)[0, 0]
                for position in edge:
                    probe = other.clone()
                    probe[0, position] += 5.0
                    reached |= abs(float(model(probe)[0, 0] - before)) > 1e-13  # float64 noise is ~1e-16
            assert reached, f"frame 0 does not see samples {edge}: receptive field overstated"


@pytest.mark.parametrize("model_class", MODELS)
def test_models_are_small_with_about_one_second_of_context(model_class) -> None:
    model = model_class()
    assert geometry.count_parameters(model) < 100_000
    assert 0.8 <= model.receptive_field / model.sample_rate <= 1.05
    assert model.hop in (160, 320)
    assert geometry.macs_per_second(model, 16_000) > 0
