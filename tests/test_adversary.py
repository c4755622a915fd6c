"""Domain-adversarial training: the gradient reversal, its ramp, the engine labels and the detectors' features."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from audioconv.adversary import NO_DOMAIN, EngineAdversary, adversary_settings, engine_probe, ramp, reverse_gradient
from audioconv.data import ClipDataset, WaveStore, training_engines
from audioconv.models import Conv1dDetector, SpectrogramDetector
from audioconv.module import KeywordModule


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
    loss, right, count = adversary.loss(features, domain, scale=0.5)
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
    guesses = adversary.classifier(features.detach()[known].mean(dim=-1)).argmax(dim=-1)
    assert int(count) == 3 and int(right) == int((guesses == domain[known]).sum())


def test_a_batch_without_engines_has_no_domain_loss_but_every_parameter_in_the_graph() -> None:
    adversary = EngineAdversary(channels=4, domains=2)
    features = torch.randn(2, 4, 5, requires_grad=True)
    loss, right, count = adversary.loss(features, torch.tensor([NO_DOMAIN, NO_DOMAIN]), scale=1.0)
    assert float(loss.detach()) == 0.0 and int(count) == 0 and int(right) == 0
    loss.backward()
    assert features.grad.abs().sum() == 0
    assert all(p.grad is not None for p in adversary.parameters())  # DDP needs every parameter used in each step


def tiny_module(weight: float) -> KeywordModule:
    torch.manual_seed(0)
    detector = SpectrogramDetector(channels=8, dilations=(1,), conv2d_channels=(4, 4), dropout=0.0, freq_mask=0, time_mask=0)
    return KeywordModule(detector, {}, {"lr": 1e-3, "weight_decay": 0.0}, clip_seconds=1.0,
                         adversary={"weight": weight, "hidden": 4}, domains=("espeak", "pico"))


def test_the_adversarial_step_adds_the_reversed_engine_gradient_to_the_keyword_gradient() -> None:
    """d(step loss)/d(detector) = d(keyword loss) - scale * d(engine loss): the detector is pushed to hide the engine."""
    module = tiny_module(weight=1.0)
    module.adversary_scale = lambda: 0.7  # no trainer here: a fixed point of the ramp
    module.log = lambda *args, **kwargs: None
    torch.manual_seed(1)
    wave = torch.randn(4, 16_000) * 0.1
    batch = (wave, torch.tensor([1.0, 0.0, 0.0, 1.0]), torch.tensor([[2000.0, 9000.0], [-1, -1], [-1, -1], [1000.0, 8000.0]]),
             torch.tensor([0, 1, NO_DOMAIN, 1]))
    params = list(module.model.parameters())

    def grads(loss: torch.Tensor) -> list[torch.Tensor]:
        return [g if g is not None else torch.zeros_like(p) for p, g in zip(params, torch.autograd.grad(loss, params, allow_unused=True))]

    module.train()
    step = grads(module._step(batch, adversarial=True)[0])
    keyword = grads(module._step(batch, adversarial=False)[0])
    features = module.model.embed(wave)
    engine, _, _ = module.adversary.loss(features, batch[3], scale=-1.0)  # scale -1: the un-reversed gradient
    plain = grads(engine)
    changed = 0
    for s, k, e in zip(step, keyword, plain):
        torch.testing.assert_close(s, k - 0.7 * e, rtol=1e-4, atol=1e-6)
        changed += int(not torch.allclose(s, k))
    assert changed > 0, "the engine loss reached the detector"


def test_the_reversal_ramps_over_the_fit() -> None:
    module = tiny_module(weight=0.5)
    module.trainer = types.SimpleNamespace(estimated_stepping_batches=100)
    steps = iter([0, 50, 100])
    # global_step is a read-only property of the LightningModule: a subclass answers it from the list
    module.__class__ = type("AtStep", (KeywordModule,), {"global_step": property(lambda self: next(steps))})
    assert [module.adversary_scale() for _ in range(3)] == [0.0, 0.5 * ramp(0.5), 0.5 * ramp(1.0)]


def test_without_weight_there_is_no_adversary() -> None:
    module = tiny_module(weight=0.0)
    assert module.adversary is None and not any(k.startswith("adversary.") for k in module.state_dict())


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


def test_the_probe_reads_an_engine_that_the_features_hold_and_not_one_they_do_not() -> None:
    """Two "engines": tones and noise (told apart by any features) vs two labels on the same kind of clips (chance)."""
    torch.manual_seed(0)
    detector = SpectrogramDetector(channels=16, dilations=(1, 2), dropout=0.0)
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16_000
    tones = [np.sin(2 * np.pi * rng.uniform(200, 600) * t) * 0.3 for _ in range(30)]
    noises = [rng.normal(0, 0.1, 8000) for _ in range(30)]
    waves = torch.from_numpy(np.stack(tones + noises)).float()
    assert engine_probe(detector, waves, ["tone"] * 30 + ["noise"] * 30) > 0.9
    same = torch.from_numpy(np.stack([rng.normal(0, 0.1, 8000) for _ in range(60)])).float()
    assert engine_probe(detector, same, ["a", "b"] * 30) < 0.75
