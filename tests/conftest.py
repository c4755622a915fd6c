"""Shared fixtures: the repository root and Hydra config composition."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]


def compose_config(overrides: list[str], output_dir: Path | None = None) -> DictConfig:
    """Compose conf/config.yaml as train.py would, outside a Hydra app (paths filled in by hand)."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.root = str(ROOT)
        cfg.paths.corpus_root = str(ROOT / "data" / "corpus")
        cfg.paths.output_dir = str(output_dir or ROOT / "outputs" / "test")
    return cfg


@pytest.fixture
def root() -> Path:
    return ROOT
