"""Thresholds carried through a folded temperature keep every decision; a folded temperature can be undone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audioconv import checkpoints
from audioconv.calibrate import through_temperature, undo_temperature
from audioconv.models import SpectrogramDetector
from scanning_helpers import make_model, make_wave


@pytest.mark.parametrize("temperature", [1.0, 1.7, 3.0])
def test_threshold_through_temperature_keeps_decisions(temperature):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 6, 2000)
    raw = 1 / (1 + np.exp(-logits))
    scaled = 1 / (1 + np.exp(-logits / temperature))
    for threshold in (0.1, 0.5, 0.9, 0.99):
        moved = through_temperature(threshold, temperature)
        assert np.array_equal(raw >= threshold, scaled >= moved - 1e-12)
    assert through_temperature(0.5, temperature) == pytest.approx(0.5)
    if temperature > 1:
        assert through_temperature(0.9, temperature) < 0.9  # a cooler head: the same cut sits lower


def test_a_shipped_files_temperature_is_undone_to_the_trained_scale(tmp_path):
    trained = make_model(SpectrogramDetector, seed=3)
    wave = torch.from_numpy(make_wave(24_000, seed=5))[None]
    with torch.no_grad():
        expected = trained(wave)
        shipped = make_model(SpectrogramDetector, seed=3)
        shipped.divide_logits(1.6)  # what ship_model folds in
        path = tmp_path / "m.safetensors"
        checkpoints.save_detector(path, shipped, {"_target_": "audioconv.models.SpectrogramDetector"},
                                  threshold=0.9, calibration={"temperature": 1.6})
        model, info = checkpoints.load_detector(path)
        assert not torch.allclose(model(wave), expected, atol=1e-3)
        assert undo_temperature(model, info) == pytest.approx(1.6)
        torch.testing.assert_close(model(wave), expected, atol=1e-5, rtol=1e-5)
        assert undo_temperature(model, {"threshold": 0.5}) == 1.0  # a train.py checkpoint: nothing to undo
        torch.testing.assert_close(model(wave), expected, atol=1e-5, rtol=1e-5)
