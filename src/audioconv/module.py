"""The LightningModule: a detector, its training loss, and its clip metrics.

The detector emits one logit per hop. The loss (``loss.pooling`` in the config):

- ``max``: binary cross-entropy on the clip's max over time (multiple-instance
  learning: a positive clip needs one frame that fires, a negative clip none).
  Only the top frame gets a gradient, so a keyword tends to give a "comb" of a
  few sharp peaks.
- ``lse``: the same on a soft max (log-mean-exp with ``sharpness``): every frame
  gets a share of the gradient.
- ``frames``: cross-entropy per frame against targets from the keyword's span
  (``audioconv.targets``): 1 where the frame's window holds the whole keyword,
  0 where it holds none of it, ignored in between; plus ``clip_weight`` times
  the ``max`` loss. A positive clip in which no frame sees the whole keyword
  (cut by the clip's edge, or longer than the receptive field) falls back to
  the ``max`` loss.

Whatever the loss, validation and test score a clip by its max frame, so the
clip metrics of every pooling are comparable.

With ``adversary.weight > 0`` (``audioconv.adversary``) training adds an
engine classifier behind a gradient reversal on the head's input features: the
detector is pushed towards features that do not tell the training engines apart.

With ``phonetic.weight > 0`` (``audioconv.phonetic``) each training batch also
holds whole utterances, and a CTC loss asks the same features to spell out
their phonemes: features that say what was said, whoever said it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryPrecision, BinaryRecall

from audioconv.adversary import EngineAdversary, adversary_settings, ramp
from audioconv.models.base import Detector, lse_pool, max_pool
from audioconv.phonetic import PhoneticHead, phonetic_settings
from audioconv.targets import frame_targets
from audioconv.utterances import UtteranceBatch

# wave [B, T], label [B], keyword span [B, 2] in samples, engine index [B] (adversary.NO_DOMAIN: none)
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
POOLINGS = ("max", "lse", "frames")
DEFAULT_LOSS = {"pooling": "frames", "sharpness": 1.0, "clip_weight": 0.5}


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


def loss_settings(loss: Mapping[str, Any] | None) -> dict[str, Any]:
    """The loss config with defaults filled in, as plain numbers and strings (checkpoint-safe)."""
    settings = {**DEFAULT_LOSS, **dict(loss or {})}
    unknown = set(settings) - set(DEFAULT_LOSS)
    if unknown:
        raise ValueError(f"unknown loss settings: {sorted(unknown)}")
    if settings["pooling"] not in POOLINGS:
        raise ValueError(f"loss.pooling must be one of {', '.join(POOLINGS)}, not {settings['pooling']!r}")
    if float(settings["sharpness"]) <= 0:
        raise ValueError("loss.sharpness must be > 0")
    return {"pooling": str(settings["pooling"]), "sharpness": float(settings["sharpness"]), "clip_weight": float(settings["clip_weight"])}


def keyword_loss(
    logits: torch.Tensor, label: torch.Tensor, span: torch.Tensor, hop: int, receptive_field: int, settings: Mapping[str, Any]
) -> torch.Tensor:
    """The training loss of frame logits [B, T'] for clip labels [B] and keyword spans [B, 2] (samples)."""
    pooling = settings["pooling"]
    clip_loss = F.binary_cross_entropy_with_logits(max_pool(logits), label, reduction="none")  # [B]
    if pooling == "max":
        return clip_loss.mean()
    if pooling == "lse":
        return F.binary_cross_entropy_with_logits(lse_pool(logits, settings["sharpness"]), label)
    targets, mask = frame_targets(span, logits.shape[-1], hop, receptive_field)
    # a positive clip with no frame that sees the whole keyword: only its max can be trained
    fallback = (label > 0.5) & (targets.sum(dim=-1) == 0)
    mask = mask * (~fallback)[:, None]
    per_frame = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    frame_loss = (per_frame * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)  # per clip: mean over its trained frames
    per_clip = torch.where(fallback, clip_loss, frame_loss)
    return (per_clip + settings["clip_weight"] * clip_loss).mean()


@contextmanager
def norms_evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Batch norms normalize by their running statistics and leave them (and their batch count) alone.

    The running statistics are what a scan normalizes by: they describe the
    keyword clips, and the phonetic task's longer windows, mostly silence and
    noise around one utterance, should neither move them nor be normalized by
    their own different statistics. Everything else (dropout, SpecAugment)
    stays in training mode; gradients reach the norms' scales and shifts.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training]
    for m in norms:
        m.eval()
    try:
        yield
    finally:
        for m in norms:
            m.train()


class KeywordModule(L.LightningModule):
    def __init__(
        self,
        model: Detector,
        model_config: Mapping[str, Any],
        optim: Mapping[str, Any],
        clip_seconds: float,
        clip_threshold: float = 0.5,
        eval_splits: tuple[str, ...] = ("test", "heldout"),
        seed: int = 0,
        loss: Mapping[str, Any] | None = None,
        adversary: Mapping[str, Any] | None = None,
        domains: tuple[str, ...] = (),
        phonetic: Mapping[str, Any] | None = None,
        phonemes: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.loss_settings = loss_settings(loss)
        self.adversary_settings = adversary_settings(adversary)
        self.phonetic_settings = phonetic_settings(phonetic)
        # only plain data in hyper-parameters, so checkpoints load with weights_only=True
        self.save_hyperparameters(
            {
                "model_config": dict(model_config),
                "optim": dict(optim),
                "clip_seconds": clip_seconds,
                "clip_threshold": clip_threshold,
                "loss": dict(self.loss_settings),
                "adversary": dict(self.adversary_settings),
                "domains": list(domains),
                "phonetic": dict(self.phonetic_settings),
                "phonemes": list(phonemes),
            }
        )
        # clip metrics only: the detector's operating threshold is chosen on streams (calibrate, cross_engine)
        self.model, self.optim, self.clip_threshold, self.seed = model, dict(optim), clip_threshold, seed
        self.hop, self.receptive_field = model.hop, model.receptive_field
        self.eval_splits = list(eval_splits)
        self.val_metrics = clip_metrics("val/", clip_threshold)
        self.test_metrics = torch.nn.ModuleList([clip_metrics(f"{s}/", clip_threshold) for s in self.eval_splits])
        self.val_alarms = FalseAlarmRate(clip_seconds, clip_threshold)
        self.test_alarms = torch.nn.ModuleList([FalseAlarmRate(clip_seconds, clip_threshold) for _ in self.eval_splits])
        # training only, and outside ``model``: the shipped weights (``model.*``) never hold it
        self.adversary: EngineAdversary | None = None
        if self.adversary_settings["weight"] > 0:
            self.adversary = EngineAdversary(model.head.in_channels, len(domains), self.adversary_settings["hidden"])
        self.phonetic_head: PhoneticHead | None = None  # training only, like the adversary
        if self.phonetic_settings["weight"] > 0:
            if not phonemes:
                raise ValueError("phonetic.weight > 0 needs the phoneme inventory (KeywordDataModule.phonemes)")
            self.phonetic_head = PhoneticHead(model.head.in_channels, len(phonemes))

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

    def adversary_scale(self) -> float:
        """The gradient reversal's strength now: ``adversary.weight`` times DANN's ramp over this fit."""
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        return self.adversary_settings["weight"] * ramp(self.global_step / total)

    def _step(self, batch: Batch, adversarial: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss to minimize, clip BCE on the max, clip probabilities from the max, labels) of a batch.

        ``adversarial`` (training, with ``adversary.weight > 0``): the loss is the
        keyword loss plus the engine classifier's, whose gradient reaches the
        detector reversed (``audioconv.adversary``); both parts are logged apart.
        In training with any auxiliary loss (the adversary's, the phonetic task's)
        the keyword loss alone is logged as ``train/keyword_loss``.
        """
        wave, label, span, domain = batch
        features = None
        if adversarial and self.adversary is not None:
            features = self.model.embed(wave)
            logits = self.model.head(features).squeeze(1)
        else:
            logits = self.model(wave)
        loss = keyword_loss(logits, label, span, self.hop, self.receptive_field, self.loss_settings)
        if adversarial and (self.adversary is not None or self.phonetic_head is not None):
            self.log("train/keyword_loss", loss, on_step=False, on_epoch=True, batch_size=len(label))
        if features is not None:
            scale = self.adversary_scale()
            engine_loss, right, count = self.adversary.loss(features, domain, scale)
            self.log("train/adversary_scale", scale, on_step=True, on_epoch=False, batch_size=len(label))
            if int(count) > 0:
                self.log("train/engine_loss", engine_loss, on_step=False, on_epoch=True, batch_size=int(count))
                self.log("train/engine_accuracy", right / count, on_step=False, on_epoch=True, batch_size=int(count))
            loss = loss + engine_loss
        clip_logits = max_pool(logits.detach())
        clip_loss = F.binary_cross_entropy_with_logits(clip_logits, label)
        return loss, clip_loss, torch.sigmoid(clip_logits), label

    def phonetic_loss(self, batch: UtteranceBatch) -> torch.Tensor:
        """CTC loss of the phonetic head on a batch of whole utterances (``audioconv.utterances``)."""
        wave, targets, lengths = batch
        with norms_evaluating(self.model):
            features = self.model.embed(wave, depth=self.phonetic_settings["depth"])
        frames = torch.full((len(wave),), features.shape[-1], dtype=torch.int64, device=wave.device)
        return self.phonetic_head.loss(features, frames, targets, lengths)

    def training_step(self, batch: Batch | Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        spoken = None
        if isinstance(batch, Mapping):  # the phonetic task is on (KeywordDataModule.train_dataloader)
            batch, spoken = batch["clips"], batch["utterances"]
        loss, _, _, label = self._step(batch, adversarial=True)
        if spoken is not None and self.phonetic_head is not None:
            phoneme_loss = self.phonetic_loss(spoken)
            # weighted like the other two, so the epoch means add up as the step losses do
            self.log("train/phonetic_loss", phoneme_loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(label))
            loss = loss + self.phonetic_settings["weight"] * phoneme_loss
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(label))
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss, clip_loss, probabilities, label = self._step(batch)
        self.val_metrics.update(probabilities, label.long())
        self.val_alarms.update(probabilities, label)
        self.log("val/loss", loss, prog_bar=True, batch_size=len(label))
        # the max-pooled clip loss, comparable between poolings
        self.log("val/clip_loss", clip_loss, batch_size=len(label))

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute(), prog_bar=False)
        self.log("val/false_alarms_per_hour", self.val_alarms.compute().float())
        self.val_metrics.reset()
        self.val_alarms.reset()

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        loss, clip_loss, probabilities, label = self._step(batch)
        self.test_metrics[dataloader_idx].update(probabilities, label.long())
        self.test_alarms[dataloader_idx].update(probabilities, label)
        split = self.eval_splits[dataloader_idx]
        self.log(f"{split}/loss", loss, batch_size=len(label), add_dataloader_idx=False)
        self.log(f"{split}/clip_loss", clip_loss, batch_size=len(label), add_dataloader_idx=False)

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
