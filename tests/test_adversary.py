"""Domain-adversarial training: the gradient reversal, its ramp, the engine labels and the detectors' features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audioconv.adversary import NO_DOMAIN, EngineAdversary, adversary_settings, ramp, reverse_gradient
from audioconv.data import ClipDataset, WaveStore, training_engines
from audioconv.models import Conv1dDetector, SpectrogramDetector


def test_reverse_gradient_is_identity_forward_and_negated_scaled_backward() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    weights = torch.randn(3, 4)
    y = reverse_gradient(x, 0.25)
    assert torch.equal(y, x)
    (y * weights).sum().backward()
    torch.testing.assert_close(x.grad, -0.25 * weights)


def test_ramp_rises_from_zero_to_nearly_one() -> None:
    values = [ramp(p) for p in np.linspace(0, 1, 11)]
    assert values[0] == 0.0
    assert all(a < b for a, b in zip(values, values[1:]))
    assert 0.99 < values[-1] < 1.0
    assert ramp(-1.0) == 0.0 and ramp(2.0) == values[-1]  # progress is clamped to [0, 1]


def test_settings_defaults_and_refusals() -> None:
    assert adversary_settings(None) == {"weight": 0.0, "hidden": 64}
    assert adversary_settings({"weight": 0.3}) == {"weight": 0.3, "hidden": 64}
    with pytest.raises(ValueError, match="unknown adversary settings"):
        adversary_settings({"lambda": 1.0})
    with pytest.raises(ValueError, match="weight must be >= 0"):
        adversary_settings({"weight": -0.1})
    with pytest.raises(ValueError, match="at least 2 engines"):
        EngineAdversary(8, 1)


def test_the_features_get_the_classifiers_gradient_reversed_and_the_classifier_its_own() -> None:
    torch.manual_seed(0)
    adversary = EngineAdversary(channels=6, domains=3, hidden=5)
    features = torch.randn(4, 6, 7, requires_grad=True)
    domain = torch.tensor([0, 2, NO_DOMAIN, 1])
    loss, accuracy = adversary.loss(features, domain, scale=0.5)
    loss.backward()
    reversed_grad = features.grad.clone()
    classifier_grad = [p.grad.clone() for p in adversary.parameters()]

    # the same loss without the reversal: the plain cross-entropy on the clips that have an engine
    adversary.zero_grad()
    plain = features.detach().clone().requires_grad_(True)
    known = domain != NO_DOMAIN
    torch.nn.functional.cross_entropy(adversary.classifier(plain[known].mean(dim=-1)), domain[known]).backward()
    torch.testing.assert_close(reversed_grad, -0.5 * plain.grad)
    for reversed_, own in zip(classifier_grad, (p.grad for p in adversary.parameters())):
        torch.testing.assert_close(reversed_, own)  # the classifier itself learns to guess the engine
    assert reversed_grad[2].abs().sum() == 0  # a clip without an engine adds nothing
    assert 0.0 <= float(accuracy) <= 1.0


def test_a_batch_without_engines_has_no_domain_loss() -> None:
    adversary = EngineAdversary(channels=4, domains=2)
    features = torch.randn(2, 4, 5, requires_grad=True)
    loss, accuracy = adversary.loss(features, torch.tensor([NO_DOMAIN, NO_DOMAIN]), scale=1.0)
    assert float(loss.detach()) == 0.0 and torch.isnan(accuracy)
    loss.backward()
    assert features.grad.abs().sum() == 0


@pytest.mark.parametrize("make", [lambda: SpectrogramDetector(channels=16, dilations=(1, 2)), lambda: Conv1dDetector()])
def test_the_head_on_embed_is_the_detector(make) -> None:
    torch.manual_seed(0)
    detector = make().eval()
    wave = torch.randn(2, detector.receptive_field + 5 * detector.hop)
    with torch.no_grad():
        features = detector.embed(wave)
        assert features.shape[1] == detector.head.in_channels
        assert features.shape[-1] == detector.output_length(wave.shape[-1])
        torch.testing.assert_close(detector.head(features).squeeze(1), detector(wave))


def row(engine: str, kind: str = "speech") -> dict:
    return {"label": int(kind == "keyword"), "kind": kind, "engine": engine, "voice": f"{engine}:v",
            "kw_start": 0.1 if kind == "keyword" else "", "kw_end": 0.4 if kind == "keyword" else ""}


def test_each_clip_carries_its_engine_index_and_noise_none() -> None:
    rows = [row("pico", "keyword"), row("espeak"), row("noise", "noise"), row("user"), row("kokoro")]
    domains = training_engines(rows[:4])
    assert domains == ["espeak", "pico"]  # sorted; noise and a user's recordings are no engine
    waves = WaveStore([np.full(8000, 0.1, np.float32) for _ in rows])
    dataset = ClipDataset(rows, waves, WaveStore([]), 4000, seed=0, augmentation=None, domains=domains)
    assert [int(dataset[i][3]) for i in range(len(rows))] == [1, 0, NO_DOMAIN, NO_DOMAIN, NO_DOMAIN]
