"""Thresholds carried through a folded temperature keep every decision."""

from __future__ import annotations

import numpy as np
import pytest

from audioconv.calibrate import through_temperature


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
