"""Print a detector's layers: output shape, hop, receptive field, parameters, multiply-adds.

    python scripts/summary.py model=conv1d
    python scripts/summary.py model=spectrogram model.dilations=[1,2,4,8]

Any config override works, as in train.py. Nothing is written: Hydra's run
directory, config copy and log file are switched off below.
"""

import sys

import hydra
from omegaconf import DictConfig

from audioconv.summary import format_table, summarize

SECONDS = 1.0  # input length for the output-shape column


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    model = hydra.utils.instantiate(cfg.model)
    print(f"{cfg.model._target_}")
    print(format_table(summarize(model, SECONDS), model.sample_rate, SECONDS))


if __name__ == "__main__":
    # a read-only tool: no outputs/ folder, no .hydra copy, no log file (user overrides still win)
    sys.argv[1:1] = ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
    main()
