"""An exponential moving average of the weights, when on: what is validated, checkpointed, tested and shipped.

The last weights of a run are one noisy point of a trajectory through many
epochs of heavily augmented clips; an average over the last few hundred steps
sits nearer the middle of the valley the optimizer wanders in, and such flat
minima are often the ones that carry over to data unlike the training set.
Measured on the cross-engine folds (README), it did not: pooled recall at
<= 1 false alarm per hour fell from 0.202 to 0.155, so it is off by default
(``ema.decay: null``) and kept as an option to measure again. Lightning's ``EMAWeightAveraging`` keeps the average
(``torch.optim.swa_utils.AveragedModel``), swaps it in for validation, writes
it into every checkpoint's ``state_dict`` and copies it into the model when
training ends, so ``best.ckpt``, ``checkpoints.load_detector`` and export all
see the averaged weights without knowing about it.

``KeywordEMA`` only adds what a ``train.py`` run needs after ``fit``: the test
that follows loads ``best.ckpt``, whose ``state_dict`` already is the
average; the parent class would instead restore the raw weights it also stores
there (``current_model_state``), which are for resuming a fit.
"""

from __future__ import annotations

from typing import Any, Mapping

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging


class KeywordEMA(EMAWeightAveraging):
    """EMA of the weights (``decay`` per optimizer step) from epoch ``start_epoch`` on, batch-norm statistics too."""

    def __init__(self, decay: float, start_epoch: int = 0) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema.decay must be in (0, 1), not {decay}")
        if start_epoch < 0:
            raise ValueError(f"ema.start_epoch must be >= 0, not {start_epoch}")
        super().__init__(decay=decay, update_starting_at_epoch=start_epoch, use_buffers=True)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """After fit the average lives in the model and in the checkpoints: forget it, so a test uses those."""
        if stage == "fit":
            self._average_model = None

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        """Resuming a fit restores both models; outside a fit the checkpoint's ``state_dict`` (the average) stands."""
        if self._average_model is not None:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)


def ema_callback(settings: Mapping[str, Any] | None) -> KeywordEMA | None:
    """The callback for config ``ema`` (``decay``, ``start_epoch``), or None when ``decay`` is null (plain weights)."""
    if not settings or settings.get("decay") is None:
        return None
    return KeywordEMA(float(settings["decay"]), int(settings.get("start_epoch", 0)))
