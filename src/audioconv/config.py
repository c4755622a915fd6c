"""The checkout's configs (``conf/config.yaml``) composed outside a Hydra app, for scripts, tools and tests.

``compose(overrides)`` gives the same ``DictConfig`` ``train.py`` gets, with the
``paths`` that only a running Hydra app knows filled in from the checkout, so
everything in it resolves. ``data_settings``, ``corpus_settings`` and
``corpus_manifest`` are the pieces scripts ask for most.

The rule for scripts: a script that *runs a config* (trains, builds the data,
summarizes a configured model: ``train.py``, ``scripts/make_data.py``,
``scripts/demo.py``, ``scripts/summary.py``) is a ``@hydra.main`` app and takes
Hydra overrides; every other script takes ``argparse`` options and, when it
needs a setting from the configs, calls this module (passing any Hydra
overrides it was given through).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig, OmegaConf, open_dict

ROOT = Path(__file__).resolve().parents[2]  # the checkout (this file is src/audioconv/config.py)
CONFIG_NAME = "config"
HYDRA_VERSION = "1.3"


def compose(overrides: Sequence[str] = (), root: str | os.PathLike = ROOT, output_dir: str | os.PathLike | None = None
            ) -> DictConfig:
    """``<root>/conf/config.yaml`` with Hydra ``overrides``, as ``train.py`` would see it.

    ``paths.root`` is ``root``, ``paths.corpus_root`` its ``data/corpus`` and
    ``paths.output_dir`` is ``output_dir`` (default ``<root>/outputs/compose``).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    root = Path(root).resolve()
    with initialize_config_dir(config_dir=str(root / "conf"), version_base=HYDRA_VERSION):
        cfg = hydra_compose(config_name=CONFIG_NAME, overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.root = str(root)
        cfg.paths.corpus_root = str(root / "data" / "corpus")
        cfg.paths.output_dir = str(output_dir if output_dir is not None else root / "outputs" / "compose")
    return cfg


def data_settings(overrides: Sequence[str] = (), root: str | os.PathLike = ROOT) -> dict:
    """The ``data`` section of the config (with Hydra ``overrides``), as a plain dict."""
    return OmegaConf.to_container(compose(overrides, root).data, resolve=True)  # type: ignore[return-value]


def corpus_settings(overrides: Sequence[str] = (), root: str | os.PathLike = ROOT) -> dict:
    """The ``data.corpus`` settings of the config (with Hydra ``overrides``), as a plain dict."""
    return data_settings(overrides, root)["corpus"]


def corpus_manifest(overrides: Sequence[str] = (), build: bool = True, root: str | os.PathLike = ROOT) -> Path:
    """The manifest of the config's corpus under ``<root>/data/corpus``, built first if ``build`` and missing."""
    from audioconv import corpus

    settings = corpus_settings(overrides, root)
    corpus_root = Path(root) / "data" / "corpus"
    if build:
        return corpus.build_corpus(settings, corpus_root)
    return corpus.corpus_dir(settings, corpus_root) / "manifest.csv"
