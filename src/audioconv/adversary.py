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
something to reverse before it pushes.
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

    def loss(self, features: torch.Tensor, domain: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(cross-entropy on the clips that have an engine, their share guessed right); 0 and NaN without any."""
        known = domain != NO_DOMAIN
        if not bool(known.any()):
            return features.sum() * 0.0, torch.tensor(float("nan"))
        logits = self(features[known], scale)
        target = domain[known].long()
        accuracy = (logits.argmax(dim=-1) == target).float().mean()
        return F.cross_entropy(logits, target), accuracy
