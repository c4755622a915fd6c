"""Synthesize the keyword corpus (or finish an interrupted build) and print what it holds.

    python scripts/make_data.py
    python scripts/make_data.py "data.corpus.use=[espeak,pico]" data.corpus.seed=7

The corpus lands in ``paths.corpus_root/<settings key>``; see data/README.md.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf

from audioconv import corpus


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    manifest = corpus.build_corpus(OmegaConf.to_container(cfg.data.corpus, resolve=True), cfg.paths.corpus_root)
    print(f"manifest: {manifest}")
    print(corpus.summarize(corpus.read_manifest(manifest)))


if __name__ == "__main__":
    main()
