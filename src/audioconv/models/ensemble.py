"""Several detectors of one geometry scored as one: the mean of their frame logits.

Why: retrained from another seed, the same recipe on the same data moves an
unseen engine's recall at <= 1 false alarm an hour by up to +-0.2 (README,
"Seeds and ensembles"). What sets that figure is a handful of the unseen
voice's near-misses scoring 0.95-0.99, and which near-misses those are
changes from seed to seed. Averaging the members' logits keeps what they agree
on (a keyword) and damps what only one of them believes.

The members must share their time geometry (the same time layers: kernel,
stride, dilation), so frame ``i`` of every member is computed from the same
input samples and the ensemble is itself a fully convolutional detector:
whole, chunked and naive scans agree as they do for one model, and a
streaming copy keeps one state per member (``audioconv.streaming``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from audioconv.geometry import TimeLayer
from audioconv.models.base import Detector, NoNewFrames


def _geometry(model: Detector) -> tuple[tuple[int, int, int], ...]:
    return tuple((layer.kernel, layer.stride, layer.dilation) for layer in model.time_layers)


class Ensemble(Detector):
    """``forward(wave) = mean over members of member(wave)``: frame logits [B, T'] like any detector.

    Args:
        members: detectors with identical time layers and sample rate (e.g. one
            recipe trained from several seeds). Their parameters are not shared.
    """

    def __init__(self, members: Sequence[Detector]) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0]
        for index, member in enumerate(members[1:], start=1):
            if _geometry(member) != _geometry(first) or member.sample_rate != first.sample_rate:
                raise ValueError(
                    f"ensemble member {index} has another time geometry (hop {member.hop}, receptive field "
                    f"{member.receptive_field} at {member.sample_rate} Hz) than member 0 (hop {first.hop}, "
                    f"receptive field {first.receptive_field} at {first.sample_rate} Hz): their frames would not line up"
                )
        self.members = nn.ModuleList(members)
        self.sample_rate = first.sample_rate

    @property
    def time_layers(self) -> list[TimeLayer]:
        return self.members[0].time_layers

    @property
    def branches(self) -> list[Detector]:
        return list(self.members)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        logits, waiting = [], False
        for member in self.members:
            try:
                logits.append(member(wave))
            except NoNewFrames:  # a streaming copy: every member must still take this push into its state
                waiting = True
        if waiting:
            raise NoNewFrames
        return torch.stack(logits).mean(dim=0)
