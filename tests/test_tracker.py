"""The online event tracker gives exactly the offline events, however the scores are cut, and gives them early."""

from __future__ import annotations

import numpy as np
import pytest

from audioconv.detect import detect_events
from audioconv.tracker import EventTracker

SR = 16_000


def scores(rng: np.random.Generator, frames: int, kind: str) -> np.ndarray:
    """White noise (many short runs) or a random walk through a sigmoid (long bumps, dips, plateaus)."""
    if kind == "white":
        return rng.random(frames).astype(np.float32)
    walk = np.cumsum(rng.normal(0.0, 0.3, frames))
    return (1.0 / (1.0 + np.exp(-walk))).astype(np.float32)


def push_in_pieces(tracker: EventTracker, probabilities: np.ndarray, rng: np.random.Generator, largest: int):
    """(events, frames pushed when each came out): irregular pieces, empty ones included, then flush."""
    released: list[tuple[object, int]] = []
    position = 0
    while position < probabilities.size:
        size = int(rng.integers(0, largest + 1))
        for event in tracker.push(probabilities[position : position + size]):
            released.append((event, min(position + size, probabilities.size)))
        position += size
    released += [(event, probabilities.size) for event in tracker.flush()]
    return [event for event, _ in released], [frames for _, frames in released]


@pytest.mark.parametrize("seed", range(6))
def test_online_events_equal_offline_events_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    checked = 0
    for trial in range(150):
        probabilities = scores(rng, int(rng.integers(0, 300)), ("white", "walk")[trial % 2])
        geometry = {"hop": int(rng.choice([1, 160, 320])), "receptive_field": int(rng.choice([1, 400, 5_000, 15_120]))}
        settings = {
            "threshold": float(rng.choice([0.0, 0.3, 0.5, 0.8, 1.0])),
            "smoothing_frames": int(rng.choice([1, 3, 5, 9])),
            "refractory_seconds": float(rng.choice([0.0, 0.02, 0.3, 1.0, 2.5])),
        }
        expected = detect_events(probabilities, sample_rate=SR, file="f", **geometry, **settings)
        tracker = EventTracker(sample_rate=SR, file="f", **geometry, **settings)
        got, _ = push_in_pieces(tracker, probabilities, rng, largest=int(rng.choice([1, 7, 40])))
        assert got == expected, (seed, trial, geometry, settings)  # equal floats, not close ones
        checked += len(expected)
    assert checked > 100  # the comparisons were not between empty lists


def test_events_come_out_while_the_stream_runs() -> None:
    """Separate bumps: each event is released about a refractory period plus a receptive field after its peak."""
    hop, receptive_field, refractory = 320, 15_120, 1.0
    probabilities = np.full(3_000, 0.05, dtype=np.float32)
    peaks = [200, 700, 1_500, 2_200]
    for peak in peaks:
        probabilities[peak - 5 : peak + 6] = np.linspace(0.6, 0.95, 11)
    settings = {"threshold": 0.5, "smoothing_frames": 3, "refractory_seconds": refractory}
    tracker = EventTracker(hop, receptive_field, SR, **settings)
    events, released_at = push_in_pieces(tracker, probabilities, np.random.default_rng(0), largest=5)
    assert events == detect_events(probabilities, hop, receptive_field, SR, **settings)
    assert len(events) == len(peaks)
    # settled after: refractory (50 frames) or one receptive field (48 frames), whichever is later, plus a push
    for event, at, peak in zip(events, released_at, peaks):
        last_active = peak + 6
        assert last_active < at <= max(peak + 50, last_active + receptive_field // hop + 1) + 1 + 5


def test_reset_and_misuse() -> None:
    tracker = EventTracker(320, 15_120, SR, threshold=0.5)
    assert tracker.push(np.full(10, 0.9)) == []
    assert len(tracker.flush()) == 1 and tracker.flush() == []
    with pytest.raises(RuntimeError, match="reset"):
        tracker.push(np.zeros(3))
    tracker.reset()
    assert tracker.push(np.zeros(3)) == [] and tracker.flush() == []
    for bad in (np.array([0.2, np.nan]), np.array([1.5]), np.zeros((2, 2))):
        with pytest.raises(ValueError):
            EventTracker(320, 15_120).push(bad)
    with pytest.raises(ValueError, match="smoothing"):
        EventTracker(320, 15_120, smoothing_frames=4)
