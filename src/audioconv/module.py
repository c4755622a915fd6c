"""The LightningModule: a detector, its loss on clip scores, and its metrics.

The detector emits one logit per hop; a clip's logit is the max over time
(``Detector.clip_logits``). Training on that single number is multiple-instance
learning: a positive clip needs one frame that fires, a negative clip needs none.
"""

from __future__ import annotations

from typing import Any, Mapping

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryPrecision, BinaryRecall

from audioconv.models.base import Detector


def clip_metrics(prefix: str, threshold: float) -> MetricCollection:
    return MetricCollection(
        {
            "accuracy": BinaryAccuracy(threshold=threshold),
            "precision": BinaryPrecision(threshold=threshold),
            "recall": BinaryRecall(threshold=threshold),
            "auroc": BinaryAUROC(),
        },
        prefix=prefix,
    )


class FalseAlarmRate(Metric):
    """False alarms per hour of negative audio, counted on clips: a negative clip that fires is one alarm.

    A torchmetrics ``Metric`` so that, under DDP, counts from every rank are summed.
    """

    def __init__(self, clip_seconds: float, threshold: float) -> None:
        super().__init__()
        self.clip_seconds, self.threshold = clip_seconds, threshold
        self.add_state("alarms", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("negatives", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, probabilities: torch.Tensor, labels: torch.Tensor) -> None:
        negative = labels < 0.5
        self.alarms += (probabilities[negative] >= self.threshold).sum()
        self.negatives += negative.sum()

    def compute(self) -> torch.Tensor:
        hours = self.negatives.double() * self.clip_seconds / 3600
        return self.alarms.double() / hours if hours > 0 else torch.tensor(float("nan"), dtype=torch.float64)


class KeywordModule(L.LightningModule):
    def __init__(
        self,
        model: Detector,
        model_config: Mapping[str, Any],
        optim: Mapping[str, Any],
        clip_seconds: float,
        threshold: float = 0.5,
        eval_splits: tuple[str, ...] = ("test", "heldout"),
        seed: int = 0,
    ) -> None:
        super().__init__()
        # only plain data in hyper-parameters, so checkpoints load with weights_only=True
        self.save_hyperparameters(
            {"model_config": dict(model_config), "optim": dict(optim), "clip_seconds": clip_seconds, "threshold": threshold}
        )
        self.model, self.optim, self.threshold, self.seed = model, dict(optim), threshold, seed
        self.eval_splits = list(eval_splits)
        self.val_metrics = clip_metrics("val/", threshold)
        self.test_metrics = torch.nn.ModuleList([clip_metrics(f"{s}/", threshold) for s in self.eval_splits])
        self.val_alarms = FalseAlarmRate(clip_seconds, threshold)
        self.test_alarms = torch.nn.ModuleList([FalseAlarmRate(clip_seconds, threshold) for _ in self.eval_splits])

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.model(wave)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Reseed torch's generator (dropout, SpecAugment masks) from (seed, epoch, batch, rank).

        Lightning restores weights, optimizer and epoch on resume, but not the
        global random state, and how many draws happen before the first batch
        (DataLoader iterators take one) differs between a fresh and a resumed
        run. Seeding per batch makes every mask a pure function of where the
        batch is, so a resumed run trains exactly like an uninterrupted one.
        """
        torch.manual_seed(hash((self.seed, self.current_epoch, batch_idx, self.global_rank)) % 2**63)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        wave, label = batch
        logits = self.model.clip_logits(wave)
        loss = F.binary_cross_entropy_with_logits(logits, label)
        return loss, torch.sigmoid(logits.detach()), label

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._step(batch)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch[1]))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, probabilities, label = self._step(batch)
        self.val_metrics.update(probabilities, label.long())
        self.val_alarms.update(probabilities, label)
        self.log("val/loss", loss, prog_bar=True, batch_size=len(label))

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute(), prog_bar=False)
        self.log("val/false_alarms_per_hour", self.val_alarms.compute().float())
        self.val_metrics.reset()
        self.val_alarms.reset()

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        loss, probabilities, label = self._step(batch)
        self.test_metrics[dataloader_idx].update(probabilities, label.long())
        self.test_alarms[dataloader_idx].update(probabilities, label)
        split = self.eval_splits[dataloader_idx]
        self.log(f"{split}/loss", loss, batch_size=len(label), add_dataloader_idx=False)

    def on_test_epoch_end(self) -> None:
        for split, metrics, alarms in zip(self.eval_splits, self.test_metrics, self.test_alarms):
            self.log_dict(metrics.compute(), add_dataloader_idx=False)
            self.log(f"{split}/false_alarms_per_hour", alarms.compute().float(), add_dataloader_idx=False)
            metrics.reset()
            alarms.reset()

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=float(self.optim["lr"]), weight_decay=float(self.optim["weight_decay"])
        )
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=float(self.optim["lr"]),
            total_steps=int(self.trainer.estimated_stepping_batches),
            pct_start=float(self.optim.get("warmup_fraction", 0.1)),
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
