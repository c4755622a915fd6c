"""The seeds' models averaged into one detector: its logits, its geometry, its exact scans."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audioconv.models import Conv1dDetector, Ensemble, SpectrogramDetector
from audioconv.scan import scan_chunked, scan_naive, scan_whole
from scanning_helpers import SAMPLE_RATE, make_model, make_wave, one_thread  # noqa: F401 - one_thread is autouse

SMALL = {"conv2d_channels": [4, 8], "channels": 16}


def test_ensemble_logits_are_the_members_mean():
    members = [make_model(SpectrogramDetector, seed=s, **SMALL) for s in (1, 2, 3)]
    ensemble = Ensemble(members).eval()
    wave = torch.from_numpy(make_wave(2 * SAMPLE_RATE))[None]
    with torch.no_grad():
        expected = torch.stack([m(wave) for m in members]).mean(dim=0)
        got = ensemble(wave)
        assert not torch.allclose(members[0](wave), members[1](wave), atol=1e-3)  # the members differ
    torch.testing.assert_close(got, expected)
    assert ensemble.hop == members[0].hop and ensemble.receptive_field == members[0].receptive_field


def test_one_member_ensemble_is_that_member():
    member = make_model(SpectrogramDetector, seed=4, **SMALL)
    wave = make_wave(SAMPLE_RATE + 777)
    np.testing.assert_allclose(scan_whole(Ensemble([member]), wave), scan_whole(member, wave), atol=1e-6)


def test_ensemble_scans_agree_whole_chunked_and_window_by_window():
    """Same time layers in every member: frame i of each sees the same samples, so the scans stay exact."""
    ensemble = Ensemble([make_model(SpectrogramDetector, seed=s, **SMALL) for s in (5, 6)])
    wave = make_wave(3 * SAMPLE_RATE + 123, seed=2)
    whole = scan_whole(ensemble, wave)
    assert whole.size == ensemble.output_length(wave.size) > 0
    np.testing.assert_allclose(scan_chunked(ensemble, wave, chunk_seconds=1.1), whole, atol=1e-5)
    np.testing.assert_allclose(scan_naive(ensemble, wave), whole, atol=1e-5)


def test_members_of_another_geometry_are_refused():
    with pytest.raises(ValueError, match="member 1 has another time geometry"):
        Ensemble([make_model(SpectrogramDetector, seed=1, **SMALL), make_model(Conv1dDetector, seed=1, channels=16)])
    with pytest.raises(ValueError, match="member 1"):  # same model class, other dilations: frames would not line up
        Ensemble([make_model(SpectrogramDetector, seed=1, **SMALL),
                  make_model(SpectrogramDetector, seed=1, **SMALL, dilations=[1, 2, 4, 2])])
    with pytest.raises(ValueError, match="at least one member"):
        Ensemble([])
