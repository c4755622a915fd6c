"""Which weights the run keeps: best.ckpt by validation loss, last.ckpt after every epoch, optionally every epoch."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from audioconv.training import best_checkpoint, epoch_checkpoint

VAL_LOSSES = (1.0, 0.5, 0.8)  # the second epoch is the best; the third is worse


class ScriptedLoss(L.LightningModule):
    """One weight, one step per epoch, and a validation loss read from a script: which epoch is best is known."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return (self.weight - 1.0).pow(2).sum()

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val/loss", VAL_LOSSES[self.current_epoch])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(folder: Path, keep_every_epoch: bool) -> None:
    loader = torch.utils.data.DataLoader(torch.zeros(1, 1), batch_size=1)
    trainer = L.Trainer(max_epochs=len(VAL_LOSSES), accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=[best_checkpoint(folder), epoch_checkpoint(folder, keep_every_epoch)])
    trainer.fit(ScriptedLoss(), loader, loader)


def epoch_of(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["epoch"]


@pytest.mark.parametrize("keep_every_epoch", [False, True])
def test_last_is_the_final_epoch_even_when_it_is_not_the_best(tmp_path, keep_every_epoch):
    fit(tmp_path, keep_every_epoch)
    checkpoints = tmp_path / "checkpoints"
    assert epoch_of(checkpoints / "best.ckpt") == 1
    assert epoch_of(checkpoints / "last.ckpt") == 2  # Lightning's save_last on the best callback would leave 1
    kept = sorted(p.name for p in (checkpoints / "epochs").glob("*.ckpt")) if keep_every_epoch else []
    assert kept == (["epoch00.ckpt", "epoch01.ckpt", "epoch02.ckpt"] if keep_every_epoch else [])
    assert sorted(p.name for p in checkpoints.glob("*.ckpt")) == ["best.ckpt", "last.ckpt"]  # no last-v1.ckpt


def test_a_run_started_again_in_its_folder_replaces_its_files(tmp_path):
    """A killed cross-engine fold is trained again in its folder: its best.ckpt must be the new run's, not a
    best-v1.ckpt beside the old one."""
    fit(tmp_path, keep_every_epoch=True)
    first = (tmp_path / "checkpoints" / "best.ckpt").stat().st_mtime_ns
    fit(tmp_path, keep_every_epoch=True)
    names = sorted(p.name for p in (tmp_path / "checkpoints").rglob("*.ckpt"))
    assert names == ["best.ckpt", "epoch00.ckpt", "epoch01.ckpt", "epoch02.ckpt", "last.ckpt"]
    assert (tmp_path / "checkpoints" / "best.ckpt").stat().st_mtime_ns > first
