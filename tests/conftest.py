"""Shared fixtures: the repository root and Hydra config composition."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import DictConfig

from audioconv import config

ROOT = Path(__file__).resolve().parents[1]


def compose_config(overrides: list[str], output_dir: Path | None = None) -> DictConfig:
    """Compose conf/config.yaml as train.py would, outside a Hydra app (paths filled in by hand)."""
    return config.compose(overrides, ROOT, output_dir or ROOT / "outputs" / "test")


@pytest.fixture
def root() -> Path:
    return ROOT
