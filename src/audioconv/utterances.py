"""Whole utterances and what they say: the batches of the phonetic training signal (``audioconv.phonetic``).

A keyword clip is cut from running speech (other utterances around it, a
random crop), so which sounds it holds is not known. An utterance placed
whole in a longer window is: its text, as phonemes. Each item is
``window_seconds`` long, the utterance at a random offset with at least
``margin_seconds`` of room on each side (about half a receptive field, so the
frames whose windows are centered on its first and last sounds exist), then
recorded like a training clip (pitch, formants, room, noise, channel, level:
``augment.record``). Utterances too long for the window are left out; noise
files say nothing and are left out.

Reproducibility: like ``ClipDataset``, an item is a pure function of (seed,
epoch, position). The dataset's length is the number of items one epoch
draws (as many batches as the keyword clips have), so ``EpochSampler`` serves
it unchanged and the utterances are drawn in a seeded order, cycling through
all of them across epochs.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from audioconv.augment import AugmentConfig, record, rms


# wave [B, window], phoneme classes [B, S] (0-padded), how many of them each item has [B]
UtteranceBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def spoken_rows(rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Indices of the rows that say something: every kind but noise, with a text."""
    return [i for i, r in enumerate(rows) if r["kind"] != "noise" and str(r.get("text", "")).strip()]


class UtteranceDataset(Dataset):
    """Whole utterances in fixed windows, with their phoneme targets.

    ``dataset[key]`` returns ``(wave [window] float32, targets [S] int64)``;
    ``key = epoch * len(dataset) + position``.
    """

    def __init__(
        self,
        waves: Sequence[np.ndarray],
        targets: Sequence[Sequence[int]],
        noises: Sequence[np.ndarray],
        draws_per_epoch: int,
        window_samples: int,
        margin_samples: int,
        seed: int,
        augmentation: AugmentConfig | None,
        rooms: Sequence[np.ndarray] = (),
    ) -> None:
        if len(waves) != len(targets):
            raise ValueError(f"{len(waves)} waves but {len(targets)} phoneme targets")
        room = window_samples - 2 * margin_samples
        self.fits = np.array([i for i in range(len(waves)) if 0 < len(waves[i]) <= room and len(targets[i])], dtype=np.int64)
        if not len(self.fits):
            raise ValueError(f"no utterance fits a {window_samples}-sample window with {margin_samples}-sample margins")
        self.waves, self.targets, self.noises, self.rooms = waves, [list(t) for t in targets], noises, rooms
        self.draws, self.window, self.margin = int(draws_per_epoch), int(window_samples), int(margin_samples)
        self.seed, self.augmentation = seed, augmentation

    def __len__(self) -> int:
        return self.draws

    def utterance(self, epoch: int, position: int) -> int:
        """Which utterance a position of an epoch draws: seeded permutations, one after another, across epochs."""
        count = len(self.fits)
        turn, place = divmod(epoch * self.draws + position, count)
        return int(self.fits[np.random.default_rng([self.seed, turn, 7]).permutation(count)[place]])

    def __getitem__(self, key: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, position = divmod(int(key), self.draws)
        index = self.utterance(epoch, position)
        rng = np.random.default_rng([self.seed, epoch, position, 7])
        wave = self.waves[index]
        offset = int(rng.integers(self.margin, self.window - self.margin - len(wave) + 1))
        window = np.zeros(self.window, dtype=np.float32)
        window[offset:offset + len(wave)] = wave
        # the noise's SNR is relative to the utterance, not to the window's silence around it
        window = record(window, self.augmentation, rng, self.noises, self.rooms, reference_rms=rms(wave))
        return torch.from_numpy(window), torch.tensor(self.targets[index], dtype=torch.int64)


def collate(items: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> UtteranceBatch:
    """Stack the windows; pad the phoneme targets with 0 (CTC reads only the first ``lengths`` of each)."""
    waves = torch.stack([wave for wave, _ in items])
    lengths = torch.tensor([len(t) for _, t in items], dtype=torch.int64)
    targets = torch.zeros(len(items), int(lengths.max()), dtype=torch.int64)
    for row, (_, target) in enumerate(items):
        targets[row, : len(target)] = target
    return waves, targets, lengths
