"""Fine-tuning (``init_from``): the run's model starts from a file's weights, or stops with the file named."""

from __future__ import annotations

import pytest
import torch

from audioconv import checkpoints
from audioconv.training import start_from

CONFIG = {
    "_target_": "audioconv.models.SpectrogramDetector", "n_fft": 400, "hop_length": 160, "n_mels": 16,
    "conv2d_channels": [4, 8], "conv2d_time_strides": [1, 2], "channels": 16, "kernel": 3,
    "dilations": [1, 2], "separable": True, "gated": False, "norm": "batch", "dropout": 0.0,
    "freq_mask": 0, "time_mask": 0, "sample_rate": 16000,
}


def saved(tmp_path, config, seed):
    torch.manual_seed(seed)
    model = checkpoints.build_detector(config)
    path = tmp_path / f"seed{seed}.safetensors"
    checkpoints.save_detector(path, model, config)
    return model, path


def test_weights_are_copied_into_the_run_model(tmp_path):
    source, path = saved(tmp_path, CONFIG, seed=1)
    torch.manual_seed(2)
    model = checkpoints.build_detector(CONFIG)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    start_from(model, path)
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the seeds differ, so something moved
    for name, value in source.state_dict().items():
        assert torch.equal(after[name], value), name


def test_a_differently_built_model_names_the_file(tmp_path):
    _, path = saved(tmp_path, {**CONFIG, "channels": 24}, seed=1)
    model = checkpoints.build_detector(CONFIG)
    with pytest.raises(checkpoints.CheckpointError, match="seed1.safetensors: its detector is not built like"):
        start_from(model, path)


def test_a_missing_file_is_named(tmp_path):
    model = checkpoints.build_detector(CONFIG)
    with pytest.raises(checkpoints.CheckpointError, match="nothing.ckpt: no such file"):
        start_from(model, tmp_path / "nothing.ckpt")


def test_a_pitch_gated_file_starts_from_its_network_as_trained(tmp_path):
    """The shipped spectrogram weights are pitch-gated: `make adapt` fine-tunes their unwarped copy."""
    from audioconv.models import PitchGated

    source, _ = saved(tmp_path, CONFIG, seed=1)
    gated = PitchGated(source)
    gated.divide_logits(1.4)  # the shipped file's folded temperature lives on the gate, not in the network
    path = tmp_path / "gated.safetensors"
    checkpoints.save_detector(path, gated, checkpoints.pitch_gated_config(CONFIG, gated), threshold=0.95)
    torch.manual_seed(2)
    model = checkpoints.build_detector(CONFIG)
    start_from(model, path)
    after = model.state_dict()
    assert after.keys() == source.state_dict().keys()
    for name, value in source.state_dict().items():
        assert torch.equal(after[name], value), name
