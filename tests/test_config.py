"""Every config composes, and every model config instantiates into a working detector."""

from __future__ import annotations

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from audioconv.checkpoints import build_detector
from audioconv.data import KeywordDataModule
from conftest import ROOT, compose_config

MODELS = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))
TRAINERS = sorted(p.stem for p in (ROOT / "conf" / "trainer").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))


def test_the_config_groups_exist() -> None:
    assert {"conv1d", "spectrogram"} <= set(MODELS)
    assert {"cpu", "gpu", "ddp"} <= set(TRAINERS)
    assert "tiny" in EXPERIMENTS


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("experiment", [None, *EXPERIMENTS])
def test_model_configs_instantiate(model: str, experiment: str | None) -> None:
    overrides = [f"model={model}"] + ([f"experiment={experiment}"] if experiment else [])
    cfg = compose_config(overrides)
    detector = hydra.utils.instantiate(cfg.model).eval()
    # the whitelist used for checkpoints builds the same thing
    same = build_detector(OmegaConf.to_container(cfg.model, resolve=True))
    assert type(same) is type(detector)
    wave = torch.randn(2, int(cfg.data.clips.clip_seconds * cfg.data.clips.sample_rate))
    with torch.no_grad():
        logits = detector(wave)
    assert logits.shape == (2, detector.output_length(wave.shape[1]))
    assert logits.shape[1] > 1, "a training clip must give several frames to take the max over"


@pytest.mark.parametrize("trainer", TRAINERS)
def test_trainer_configs_compose(trainer: str) -> None:
    cfg = compose_config([f"trainer={trainer}"])
    assert cfg.trainer.max_epochs >= 1
    assert {"accelerator", "devices", "precision"} <= set(cfg.trainer)


def test_data_config_builds_a_datamodule(tmp_path) -> None:
    cfg = compose_config(["experiment=tiny"])
    datamodule = KeywordDataModule(OmegaConf.to_container(cfg.data, resolve=True), str(tmp_path), seed=cfg.seed)
    assert datamodule.clip_samples == int(cfg.data.clips.clip_seconds * cfg.data.clips.sample_rate)
    assert datamodule.manifest_path.parent.parent == tmp_path


def test_overrides_reach_the_config() -> None:
    cfg = compose_config(["model=spectrogram", "trainer.max_epochs=3", "seed=7", "data.corpus.engines.pico.utterances.keyword=500"])
    assert cfg.seed == 7 and cfg.trainer.max_epochs == 3
    assert cfg.data.corpus.engines.pico.utterances.keyword == 500
    assert cfg.data.corpus.seed == compose_config([]).data.corpus.seed, "a training seed reuses the corpus"
    assert compose_config(["data.corpus.seed=7"]).data.corpus.seed == 7
    assert cfg.model._target_.endswith("SpectrogramDetector")


@pytest.mark.parametrize("model", MODELS)
def test_class_defaults_are_the_config_values(model: str) -> None:
    """The random-weights fallback (the class defaults) builds the model the config trains and ships."""
    import inspect

    config = OmegaConf.to_container(compose_config([f"model={model}"]).model, resolve=True)
    cls = type(build_detector({"_target_": config["_target_"]}))
    defaults = {name: p.default for name, p in inspect.signature(cls).parameters.items()}
    for key, value in config.items():
        if key != "_target_":
            default = list(defaults[key]) if isinstance(defaults[key], tuple) else defaults[key]
            assert default == value, f"{cls.__name__}({key}={defaults[key]!r}) but conf/model/{model}.yaml says {value!r}"


def test_registry_names_are_the_model_configs() -> None:
    """Every choices= of scripts and benchmarks comes from registry.MODEL_NAMES: it must list conf/model/*.yaml."""
    from audioconv import registry

    assert sorted(registry.MODEL_NAMES) == MODELS
    for name in MODELS:
        assert OmegaConf.load(ROOT / "conf" / "model" / f"{name}.yaml")._target_ == registry.MODELS[name]
