#!/usr/bin/env python
"""Is data loading the bottleneck? Clips per second of the augmentation pipeline vs the training step.

    python benchmarks/data_pipeline.py [model=spectrogram] [data.loader.num_workers=2]

Measures, on the default corpus (built if missing):
- the pipeline alone: clips/s from one process, and through the DataLoader
  with the configured workers;
- the training step alone: clips/s of forward + backward + optimizer step on
  ready-made batches;
and prints the ratio. Above 1, the workers keep the model fed; below 1 the
model waits for data. On a 2-core machine both compete for the same cores, so
the real epoch rate is below either figure.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audioconv.data import KeywordDataModule  # noqa: E402

CLIPS = 512  # per measurement


def clips_per_second(loader_batches, clips: int) -> float:
    started, seen = time.perf_counter(), 0
    for wave, *_ in loader_batches:  # (wave, label, keyword span, engine)
        seen += len(wave)
        if seen >= clips:
            break
    return seen / (time.perf_counter() - started)


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    torch.manual_seed(0)
    datamodule = KeywordDataModule(OmegaConf.to_container(cfg.data, resolve=True), cfg.paths.corpus_root, cfg.seed)
    datamodule.prepare_data()
    datamodule.setup("fit")
    dataset = datamodule.datasets["train"]
    for i in range(8):  # warm-up: librosa's first pitch shift compiles
        dataset[i]

    started = time.perf_counter()
    for i in range(CLIPS // 4):
        dataset[i]
    single = (CLIPS // 4) / (time.perf_counter() - started)

    loader = datamodule.train_dataloader()
    iterator = iter(loader)
    next(iterator)  # start the workers before timing
    workers = clips_per_second(iterator, CLIPS)

    model = hydra.utils.instantiate(cfg.model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch_size = int(cfg.data.loader.batch_size)
    waves = torch.randn(batch_size, datamodule.clip_samples) * 0.1
    labels = (torch.rand(batch_size) > 0.5).float()
    steps, started = CLIPS // batch_size, time.perf_counter()
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model.clip_logits(waves), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    step = steps * batch_size / (time.perf_counter() - started)

    print(f"model {type(model).__name__}, batch {batch_size}, {torch.get_num_threads()} torch threads, "
          f"{cfg.data.loader.num_workers} loader workers")
    print(f"pipeline, one process      : {single:8.0f} clips/s")
    print(f"pipeline, DataLoader       : {workers:8.0f} clips/s")
    print(f"training step (fwd+bwd+opt): {step:8.0f} clips/s")
    print(f"pipeline / training step   : {workers / step:8.2f}  (> 1: data loading is not the bottleneck)")


if __name__ == "__main__":
    main()
