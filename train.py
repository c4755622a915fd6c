"""Train a keyword detector: `python train.py model=conv1d` or `model=spectrogram` (Hydra overrides)."""

import hydra
from omegaconf import DictConfig

from audioconv.training import train


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
