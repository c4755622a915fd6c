"""One training run, from a composed Hydra config to a test report.

train.py is a few lines around ``train(cfg)``; everything a run does is here,
top to bottom: seed, data, model, Lightning trainer, fit, test, report.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import hydra
import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from audioconv import checkpoints, geometry
from audioconv.averaging import ema_callback
from audioconv.data import KeywordDataModule
from audioconv.files import write_text_atomically
from audioconv.models import PitchGated
from audioconv.module import KeywordModule

log = logging.getLogger(__name__)

REPORT_METRICS = ("accuracy", "precision", "recall", "auroc", "false_alarms_per_hour")


def build_datamodule(cfg: DictConfig) -> KeywordDataModule:
    data = OmegaConf.to_container(cfg.data, resolve=True)
    phonetic = OmegaConf.to_container(cfg.phonetic, resolve=True) if cfg.get("phonetic") else None
    return KeywordDataModule(data, corpus_root=cfg.paths.corpus_root, seed=int(cfg.seed), phonetic_task=phonetic)


def build_module(
    cfg: DictConfig, eval_splits: list[str], domains: Sequence[str] = (), phonemes: Sequence[str] = ()
) -> KeywordModule:
    model_config = OmegaConf.to_container(cfg.model, resolve=True)
    model = hydra.utils.instantiate(model_config)
    return KeywordModule(
        model,
        model_config=model_config,
        optim=OmegaConf.to_container(cfg.optim, resolve=True),
        clip_seconds=float(cfg.data.clips.clip_seconds),
        clip_threshold=float(cfg.clip_threshold),
        eval_splits=tuple(eval_splits),
        seed=int(cfg.seed),
        loss=OmegaConf.to_container(cfg.loss, resolve=True) if cfg.get("loss") else None,
        adversary=OmegaConf.to_container(cfg.adversary, resolve=True) if cfg.get("adversary") else None,
        domains=tuple(domains),
        phonetic=OmegaConf.to_container(cfg.phonetic, resolve=True) if cfg.get("phonetic") else None,
        phonemes=tuple(phonemes),
    )


def best_checkpoint(output_dir: Path) -> ModelCheckpoint:
    """``checkpoints/best.ckpt``: the epoch with the lowest validation loss (what a run tests and ships).

    A run started again in the same folder (a killed cross-engine fold) replaces
    it: with Lightning's version counter it would write ``best-v1.ckpt`` and
    leave the killed attempt's ``best.ckpt`` for ``cross_engine`` to score.
    """
    return ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="best", monitor="val/loss", mode="min",
                           save_top_k=1, enable_version_counter=False)


def build_trainer(cfg: DictConfig, output_dir: Path) -> L.Trainer:
    loggers = [
        CSVLogger(output_dir, name="csv", version=""),
        TensorBoardLogger(output_dir, name="tensorboard", version="", default_hp_metric=False),
    ]
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    every_epoch = bool(cfg.get("checkpoint") and cfg.checkpoint.get("every_epoch"))
    callbacks: list[L.Callback] = [best_checkpoint(output_dir), epoch_checkpoint(output_dir, every_epoch),
                                   LearningRateMonitor(logging_interval="epoch")]
    ema = ema_callback(OmegaConf.to_container(cfg.ema, resolve=True) if cfg.get("ema") else None)
    if ema is not None:
        callbacks.append(ema)
    return L.Trainer(
        **trainer_cfg,
        default_root_dir=output_dir,
        logger=loggers,
        callbacks=callbacks,
        use_distributed_sampler=False,  # our EpochSampler shards by rank itself, deterministically
        deterministic=True,
    )


EPOCHS_DIR = "epochs"  # under checkpoints/: one file per epoch when checkpoint.every_epoch is set


def epoch_checkpoint(output_dir: Path, keep_every_epoch: bool = False) -> ModelCheckpoint:
    """``checkpoints/last.ckpt`` after every epoch (what ``ckpt_path`` resumes), and with ``keep_every_epoch``
    every epoch's own file too (``checkpoints/epochs/epoch03.ckpt``, epochs counted from 0).

    Lightning's ``save_last=True`` on the best-checkpoint callback writes "last"
    only when the validation loss improves: after a worse epoch it would be an
    older epoch, and a resumed run would train that epoch again. So "last" has
    a callback of its own (one: Lightning refuses two with the same settings).

    Every epoch's weights answer what ``best.ckpt`` cannot: it is chosen by the
    validation loss, on voices the model trained on, while whether later epochs
    help or hurt voices it never heard is a question for the held-out streams
    (``scripts/epoch_curve.py``). Saving draws no random numbers: the run
    trains exactly as without it.
    """
    if keep_every_epoch:
        return ModelCheckpoint(
            dirpath=output_dir / "checkpoints",
            filename=f"{EPOCHS_DIR}/epoch{{epoch:02d}}",
            auto_insert_metric_name=False,
            monitor=None,
            save_top_k=-1,
            save_last=True,  # written whenever an epoch's file is: every epoch
            enable_version_counter=False,  # a run started again in its folder replaces, never adds epoch00-v1.ckpt
        )
    return ModelCheckpoint(
        dirpath=output_dir / "checkpoints",
        filename="last",
        monitor=None,
        save_top_k=1,
        enable_version_counter=False,  # replace last.ckpt, never last-v1.ckpt
    )


def start_from(model: torch.nn.Module, path: Path) -> None:
    """Copy the weights of ``path`` (``.safetensors`` or a ``train.py`` ``.ckpt``) into ``model``: fine-tuning.

    Only the weights travel; the optimizer and its learning-rate schedule start
    afresh over this run's epochs (unlike ``ckpt_path``, which resumes a run).
    The two detectors must be built alike (same ``model`` config), else
    ``CheckpointError`` names the file and the first mismatch. A pitch-gated
    file (the shipped spectrogram weights, ``PitchGated``) starts the run from
    its network as trained, the unwarped copy: that is what ``make adapt``
    fine-tunes on a user's voice, scored ungated afterwards.
    """
    source, _ = checkpoints.load_detector(path)
    if isinstance(source, PitchGated) and not isinstance(model, PitchGated):
        log.info("%s is pitch-gated: fine-tuning its network as trained (the unwarped copy)", path)
        source = source.unwarped
    try:
        model.load_state_dict(source.state_dict(), strict=True)
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1].strip()[:200]
        raise checkpoints.CheckpointError(path, f"its detector is not built like this run's model ({reason})") from None
    log.info("fine-tuning from %s", path)


def format_report(metrics: dict[str, float], splits: list[str]) -> str:
    """A small table: one row per evaluation split."""
    header = f"{'split':<9}" + "".join(f"{name:>22}" for name in REPORT_METRICS)
    lines = [header]
    for split in splits:
        values = [metrics.get(f"{split}/{name}", float("nan")) for name in REPORT_METRICS]
        lines.append(f"{split:<9}" + "".join(f"{v:>22.4f}" for v in values))
    return "\n".join(lines)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test on the voice-disjoint test split and the held-out voices, write metrics.json."""
    started = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(int(cfg.seed), workers=True)
    torch_threads = cfg.get("torch_threads")
    if torch_threads:
        import torch

        torch.set_num_threads(int(torch_threads))

    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    corpus_audio = datamodule.audio_digests()
    log.info("corpus audio digests: %s", ", ".join(f"{engine} {digest}" for engine, digest in corpus_audio.items()))
    module = build_module(cfg, datamodule.test_splits, datamodule.domains, datamodule.phonemes)
    model = module.model
    if cfg.get("init_from"):
        start_from(model, Path(str(cfg.init_from)))
    log.info(
        "%s: %d parameters, %.2f M multiply-adds per second of audio, %s",
        type(model).__name__,
        geometry.count_parameters(model),
        geometry.macs_per_second(model, model.sample_rate) / 1e6,
        geometry.describe(model.time_layers, model.sample_rate),
    )
    trainer = build_trainer(cfg, output_dir)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    fit_seconds = time.perf_counter() - started

    results = trainer.test(module, datamodule=datamodule, ckpt_path="best", verbose=False)
    metrics = {k: float(v) for result in results for k, v in result.items()}
    report = {
        "model": type(model).__name__,
        "parameters": geometry.count_parameters(model),
        "macs_per_second": geometry.macs_per_second(model, model.sample_rate),
        "hop": model.hop,
        "receptive_field": model.receptive_field,
        "best_checkpoint": trainer.checkpoint_callback.best_model_path,
        "epochs": trainer.current_epoch,
        "fit_seconds": fit_seconds,
        "total_seconds": time.perf_counter() - started,
        "corpus_audio": corpus_audio,
        "machine": machine(),
        "metrics": metrics,
    }
    log.info("rank %d of %d finished", trainer.global_rank, trainer.world_size)
    if trainer.is_global_zero:
        write_json(output_dir / "metrics.json", report)
        print(f"\nTest report ({report['model']}, clip threshold {cfg.clip_threshold}, {fit_seconds / 60:.1f} min training):")
        print(format_report(metrics, datamodule.test_splits))
        print(f"best checkpoint: {report['best_checkpoint']}")
    return report


def machine() -> dict[str, Any]:
    """What a run's float arithmetic depends on besides config and seed: torch's version, the CPU's vector
    instructions torch uses (AVX2, AVX512: other kernels, other rounding) and its thread count."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads()}


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically, so a crashed run never leaves a metrics.json that looks complete."""
    write_text_atomically(path, json.dumps(payload, indent=2) + "\n")
