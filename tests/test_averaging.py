"""Weight averaging (config ``ema``): settings, and the test after fit scoring the average (end to end: test_training)."""

from __future__ import annotations

from unittest import mock

import pytest

from audioconv.averaging import KeywordEMA, ema_callback


def test_ema_is_off_unless_a_decay_is_given() -> None:
    assert ema_callback(None) is None
    assert ema_callback({"decay": None, "start_epoch": 1}) is None
    assert isinstance(ema_callback({"decay": 0.99, "start_epoch": 1}), KeywordEMA)


@pytest.mark.parametrize("decay, start", [(0.0, 0), (1.0, 0), (1.5, 0), (0.99, -1)])
def test_bad_ema_settings_are_refused(decay: float, start: int) -> None:
    with pytest.raises(ValueError, match="ema"):
        KeywordEMA(decay, start)


def test_after_fit_a_loaded_checkpoint_keeps_its_averaged_state_dict() -> None:
    """The parent class would load the raw weights (``current_model_state``) over the average in a test."""
    callback = KeywordEMA(0.9)
    module = mock.Mock()
    callback.teardown(mock.Mock(), module, "fit")
    callback.on_load_checkpoint(mock.Mock(), module, {"state_dict": {}, "current_model_state": {}, "averaging_state": {}})
    module.load_state_dict.assert_not_called()

