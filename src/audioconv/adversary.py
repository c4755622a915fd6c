"""Domain-adversarial training: features that cannot tell which speech engine spoke.

A detector trained on four engines and scanned over a fifth meets a shift in
voice, prosody and vocoder that it never saw. Domain-adversarial training
(Ganin & Lempitsky, 2015, "Unsupervised domain adaptation by backpropagation")
adds a small classifier that reads the detector's last hidden features (the
input of its 1x1 head, pooled over time) and guesses the clip's engine. The
classifier learns to guess as well as it can; between it and the detector sits
a gradient-reversal layer, so the detector's layers get the classifier's
gradient with its sign flipped, scaled by ``lambda``: they learn features from
which the engine cannot be read, while the keyword loss keeps the keyword
readable. Features that do not say "espeak" or "piper" are, the hope goes,
features a sixth voice shares.

Only training uses the classifier: it is not part of the detector, its weights
stay out of the shipped ``model.*`` keys, and scanning costs nothing more.
``lambda`` ramps from 0 to ``weight`` over training (DANN's schedule,
``2 / (1 + exp(-10 p)) - 1`` of progress ``p``), so the classifier has
something to reverse before it pushes. ``weight`` is that largest ``lambda``:
the classifier's own loss always counts in full.

What it does not do, knowingly: a clip's engine is the engine of the utterance
it was cut from, though context speech around it (``ClipDataset.add_context``)
may come from another engine, so a few labels are only mostly right; the
classifier's parameters share the optimizer, schedule and gradient clipping of
the detector's; a fine-tuning run (``init_from``, mining rounds) starts a new
classifier and a new ramp, and mined negatives (the user's folder) carry no engine.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_ADVERSARY = {"weight": 0.0, "hidden": 64}
NO_DOMAIN = -1  # a clip without an engine (noise, the user's own recordings): no domain loss


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient times ``-scale`` backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` unchanged; what flows back through it is negated and scaled by ``scale``."""
    return _ReverseGradient.apply(x, float(scale))


def ramp(progress: float) -> float:
    """DANN's schedule, 0 at the start of training to ~1 at its end: ``2 / (1 + exp(-10 p)) - 1``."""
    p = min(max(float(progress), 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


def adversary_settings(adversary: Mapping[str, Any] | None) -> dict[str, Any]:
    """The adversary config with defaults filled in, as plain numbers (checkpoint-safe)."""
    settings = {**DEFAULT_ADVERSARY, **dict(adversary or {})}
    unknown = set(settings) - set(DEFAULT_ADVERSARY)
    if unknown:
        raise ValueError(f"unknown adversary settings: {sorted(unknown)}")
    weight, hidden = float(settings["weight"]), int(settings["hidden"])
    if weight < 0:
        raise ValueError(f"adversary.weight must be >= 0, not {weight}")
    if hidden < 1:
        raise ValueError(f"adversary.hidden must be >= 1, not {hidden}")
    return {"weight": weight, "hidden": hidden}


class EngineAdversary(nn.Module):
    """Guesses a clip's engine from hidden features [B, C, T'] (mean over time), through a gradient reversal."""

    def __init__(self, channels: int, domains: int, hidden: int = 64) -> None:
        super().__init__()
        if domains < 2:
            raise ValueError(f"domain-adversarial training needs at least 2 engines in training, not {domains}")
        self.classifier = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, domains))

    def forward(self, features: torch.Tensor, scale: float) -> torch.Tensor:
        """Engine logits [B, domains]; the features' gradient is reversed and scaled by ``scale``."""
        return self.classifier(reverse_gradient(features, scale).mean(dim=-1))

    def loss(self, features: torch.Tensor, domain: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean cross-entropy over the clips that have an engine, how many of them the classifier got right, how many there are).

        The classifier runs on every clip and the ones without an engine are
        masked out of the mean, so every parameter takes part in every step
        (DDP without ``find_unused_parameters``) even when a batch holds no
        engine at all (its loss is then 0).
        """
        known = domain != NO_DOMAIN
        logits = self(features, scale)
        per_clip = F.cross_entropy(logits, domain.clamp(min=0).long(), reduction="none")
        count = known.sum()
        loss = (per_clip * known).sum() / count.clamp(min=1)
        right = ((logits.argmax(dim=-1) == domain) & known).sum()
        return loss, right, count


def engine_probe(model: nn.Module, waves: torch.Tensor, engines: list[str], folds: int = 5, seed: int = 0) -> float:
    """How well a linear probe reads the engine from the detector's time-mean features (cross-validated accuracy).

    The adversary's own accuracy only says whether *its* classifier was
    fooled; a probe fitted afterwards on frozen features says whether the
    engine actually left them. Logistic regression (scikit-learn) on the
    standardized ``embed(waves).mean(time)`` of each clip, ``folds``-fold
    stratified cross-validation.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    model.eval()
    with torch.no_grad():
        features = torch.cat([model.embed(waves[i : i + 64]).mean(dim=-1) for i in range(0, len(waves), 64)]).numpy()
    features = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-6)
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(LogisticRegression(max_iter=2000), features, engines, cv=splits).mean())
