"""What every detector shares: the time geometry and the clip score.

A detector maps wave [B, T] -> frame logits [B, T'] with no padding along time.
Subclasses list their time layers; hop, receptive field and output length
follow from that list (``audioconv.geometry``). A clip's score pools its frame
logits over time: ``max_pool`` (what evaluation uses) or ``lse_pool`` (a soft
max for training).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from audioconv import geometry
from audioconv.geometry import TimeLayer


def max_pool(logits: torch.Tensor) -> torch.Tensor:
    """[..., T'] -> [...]: the largest frame logit. A keyword anywhere in the clip is enough."""
    return logits.amax(dim=-1)


def lse_pool(logits: torch.Tensor, sharpness: float) -> torch.Tensor:
    """[..., T'] -> [...]: log-mean-exp, ``log(mean(exp(r * x))) / r`` with sharpness ``r``.

    Between the mean (r -> 0) and the max (r -> inf) of the frame logits, and
    never above the max. Unlike the max, every frame gets a gradient, weighted
    by softmax(r * x): a positive clip is pushed to fire on several frames
    rather than one.
    """
    r = float(sharpness)
    return (torch.logsumexp(r * logits, dim=-1) - math.log(logits.shape[-1])) / r


class NoNewFrames(Exception):
    """Raised inside a stream's forward pass by a layer that completes no output: nothing downstream changes.

    Only a streaming copy (``audioconv.streaming``) raises it; it lives here so
    that a detector made of several networks (``Ensemble``) can let every one
    of them take a push before the push ends.
    """


def run_branches(branches: Sequence[nn.Module], wave: torch.Tensor) -> list[torch.Tensor]:
    """Every branch's output on ``wave``; in a stream, every branch takes the push before ``NoNewFrames`` ends it.

    Branches of one geometry complete their frames together (a frame is out when
    its last sample is in), so either all of them give frames or none does.
    """
    outputs, waiting = [], False
    for branch in branches:
        try:
            outputs.append(branch(wave))
        except NoNewFrames:
            waiting = True
    if waiting:
        if outputs:
            raise RuntimeError("branches of one detector completed different frames from one push")
        raise NoNewFrames
    return outputs


class Detector(nn.Module):
    """Base class: subclasses implement ``forward`` and ``time_layers``."""

    sample_rate: int = 16_000

    @property
    def time_layers(self) -> list[TimeLayer]:
        raise NotImplementedError

    def divide_logits(self, temperature: float) -> None:
        """Divide every output logit by ``temperature``, folded into the weights (calibration).

        A single detector divides its 1x1 head; an ensemble its combined output.
        """
        with torch.no_grad():
            self.head.weight /= temperature
            self.head.bias /= temperature

    @property
    def branches(self) -> list[Detector]:
        """The networks that run side by side on the input, in registration order: one detector is its own
        only branch. Streaming finds each branch's time layers in turn (``audioconv.streaming``)."""
        return [self]

    def embed(self, wave: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """The hidden features [B, C, T'] that the 1x1 head turns into frame logits (domain-adversarial training).

        ``depth``: stop after that many temporal blocks (0: before the first), for a
        training signal on shallower features (``phonetic.depth``); their frames have
        the same hop, but more of them, since fewer layers have trimmed the edges.
        None: every block, what the head reads.
        """
        raise NotImplementedError

    @property
    def hop(self) -> int:
        """Samples between consecutive frame scores."""
        return geometry.hop(self.time_layers)

    @property
    def receptive_field(self) -> int:
        """Samples of input behind each frame score."""
        return geometry.receptive_field(self.time_layers)

    def output_length(self, num_samples: int) -> int:
        """Frame scores produced for ``num_samples`` input samples."""
        return geometry.output_length(num_samples, self.time_layers)

    def clip_logits(self, wave: torch.Tensor) -> torch.Tensor:
        """One logit per clip: the max over time. A keyword anywhere in the clip is enough."""
        return max_pool(self(wave))


class Combined(Detector):
    """Several detectors of one time geometry scored as one logit per frame (``Ensemble``, ``PitchGated``).

    What they share: the members (frame ``i`` of each is computed from the same
    samples), their geometry, and one temperature applied to the combined logit
    (``output_scale``) rather than to each member's head, which would change how
    the combination ranks frames. Subclasses combine in ``forward`` and multiply
    by ``output_scale``.
    """

    def __init__(self, members: Sequence[Detector]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.sample_rate = members[0].sample_rate
        self.register_buffer("output_scale", torch.ones(()))  # temperature scaling of the combined logit

    def divide_logits(self, temperature: float) -> None:
        """Divide the combined logit (the members' heads are left alone)."""
        self.output_scale /= temperature

    @property
    def time_layers(self) -> list[TimeLayer]:
        return self.members[0].time_layers
