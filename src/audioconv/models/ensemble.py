"""Several detectors of one geometry scored as one: the mean of their frame probabilities (or logits).

Why: retrained from another seed, the same recipe on the same data moves an
unseen engine's recall at <= 1 false alarm an hour by up to +-0.2 (README,
"Seeds and ensembles"). What sets that figure is a handful of the unseen
voice's near-misses scoring 0.95-0.99, and which near-misses those are
changes from seed to seed. Averaging the members keeps what they agree on (a
keyword) and damps what only one of them believes.

How they are averaged matters for exactly those near-misses. The mean of the
**probabilities** (``combine="probabilities"``, soft voting) needs every member
to be sure: one member at 0.99999 and one at 0.1 make 0.55. The mean of the
**logits** (``"logits"``) lets one over-confident member carry the rest: logits
+11.5 and -2.2 make +4.7, a probability of 0.99. The ensemble's output is
still a logit per frame (of the mean probability, computed in log space so
nothing saturates), so everything downstream treats it as one detector.

The members must share their time geometry (the same time layers: kernel,
stride, dilation), so frame ``i`` of every member is computed from the same
input samples and the ensemble is itself a fully convolutional detector:
whole, chunked and naive scans agree as they do for one model, and a
streaming copy keeps one state per member (``audioconv.streaming``).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from audioconv.models.base import Combined, Detector, run_branches

COMBINE = ("probabilities", "logits")


def _geometry(model: Detector) -> tuple[tuple[int, int, int], ...]:
    return tuple((layer.kernel, layer.stride, layer.dilation) for layer in model.time_layers)


def mean_probability_logit(logits: torch.Tensor) -> torch.Tensor:
    """[M, ...] member logits -> [...] the logit of their mean probability, without forming the probabilities.

    logit(mean p) = log(sum p) - log(sum (1 - p)), with log p = -softplus(-x) and
    log(1 - p) = -softplus(x): exact where float32 sigmoid would round 1 - 1e-9 to 1.
    """
    return torch.logsumexp(-F.softplus(-logits), dim=0) - torch.logsumexp(-F.softplus(logits), dim=0)


class Ensemble(Combined):
    """Frame logits [B, T'] of several detectors combined: the logit of their mean probability, or their mean logit.

    Args:
        members: detectors with identical time layers and sample rate (e.g. one
            recipe trained from several seeds). Their parameters are not shared.
        combine: ``"probabilities"`` (soft voting, the default) or ``"logits"``.
    """

    def __init__(self, members: Sequence[Detector], combine: str = "probabilities") -> None:
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one member")
        if combine not in COMBINE:
            raise ValueError(f"combine must be one of {COMBINE}, got {combine!r}")
        first = members[0]
        for index, member in enumerate(members[1:], start=1):
            if _geometry(member) != _geometry(first) or member.sample_rate != first.sample_rate:
                raise ValueError(
                    f"ensemble member {index} has another time geometry (hop {member.hop}, receptive field "
                    f"{member.receptive_field} at {member.sample_rate} Hz) than member 0 (hop {first.hop}, "
                    f"receptive field {first.receptive_field} at {first.sample_rate} Hz): their frames would not line up"
                )
        super().__init__(members)
        self.combine = combine

    @property
    def branches(self) -> list[Detector]:
        return list(self.members)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        stacked = torch.stack(run_branches(self.members, wave))  # in a stream, every member takes every push
        combined = mean_probability_logit(stacked) if self.combine == "probabilities" else stacked.mean(dim=0)
        return combined * self.output_scale
