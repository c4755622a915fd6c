"""Scores to events: synthetic score curves with known answers, then properties for any curve."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from audioconv.detect import DetectionSettings, Event, detect_events, detection_settings, smooth

SR = 16_000
HOP = 320  # 20 ms: 50 frames per second
RF = 15_120  # 945 ms
FPS = SR // HOP


def bump(length: int, center: int, width: int, height: float = 0.9) -> np.ndarray:
    """A triangular score bump, like the frames whose windows contain one spoken word."""
    frames = np.arange(length)
    return np.clip(height * (1 - np.abs(frames - center) / width), 0.0, 1.0)


def frame_start(i: int) -> float:
    return i * HOP / SR


def frame_end(i: int) -> float:
    return (i * HOP + RF) / SR


def events_of(probs: np.ndarray, **kwargs) -> list[Event]:
    return detect_events(probs, HOP, RF, sample_rate=SR, **kwargs)


def assert_well_formed(events: list[Event], duration: float, threshold: float) -> None:
    for event in events:
        assert 0.0 <= event.start < event.end <= duration
        assert threshold <= event.score <= 1.0
    for before, after in zip(events, events[1:]):
        assert before.end <= after.start


def test_one_bump_gives_one_event_spanning_its_windows() -> None:
    probs = bump(300, center=100, width=20)  # active where 0.9 * (1 - d / 20) >= 0.5: |d| <= 8
    events = events_of(probs, threshold=0.5, file="a.wav")
    assert len(events) == 1
    event = events[0]
    assert event.file == "a.wav"
    assert event.start == pytest.approx(frame_start(92))
    assert event.end == pytest.approx(frame_end(108))
    assert event.score == pytest.approx(0.9)
    assert event.to_dict() == {"file": "a.wav", "start": event.start, "end": event.end, "score": event.score}


def test_separate_bumps_give_separate_sorted_events() -> None:
    probs = np.maximum.reduce([bump(600, c, 15, h) for c, h in ((100, 0.8), (300, 0.95), (500, 0.7))])
    events = events_of(probs, threshold=0.5)
    assert [round(e.score, 2) for e in events] == [0.8, 0.95, 0.7]
    assert_well_formed(events, frame_end(599), 0.5)


def test_a_dip_inside_one_word_is_merged_by_the_refractory_period() -> None:
    probs = np.maximum(bump(300, 100, 12, 0.8), bump(300, 115, 12, 0.9))  # dip below 0.5 between peaks 0.3 s apart
    runs = events_of(probs, threshold=0.5, refractory_seconds=0.0)
    assert len(runs) == 2  # two runs above threshold...
    merged = events_of(probs, threshold=0.5, refractory_seconds=1.0)
    assert len(merged) == 1  # ...but one spoken word
    assert merged[0].score == pytest.approx(0.9)
    assert merged[0].start == pytest.approx(runs[0].start)
    assert merged[0].end == pytest.approx(frame_end(115 + 5))


def test_refractory_counts_from_the_peak_that_fired() -> None:
    """Peaks 0.8 s apart in a chain: the third is 1.6 s after the firing peak, so it starts a new event."""
    spacing = int(0.8 * FPS)
    probs = np.maximum.reduce([bump(400, 50 + k * spacing, 5) for k in range(3)])
    events = events_of(probs, threshold=0.5, refractory_seconds=1.0)
    assert len(events) == 2
    assert_well_formed(events, frame_end(399), 0.5)


def test_refractory_boundary() -> None:
    """A peak exactly one refractory period after the firing peak is a new event; one frame less is merged."""
    gap = FPS  # 1.0 s
    for offset, expected in ((gap, 2), (gap - 1, 1)):
        probs = np.zeros(300)
        probs[[100, 100 + offset]] = 0.9
        assert len(events_of(probs, threshold=0.5, refractory_seconds=1.0)) == expected


def test_overlapping_windows_of_separate_events_are_trimmed_apart() -> None:
    probs = np.zeros(300)
    probs[[100, 110]] = [0.7, 0.8]  # 0.2 s apart, windows ~0.95 s long: they overlap
    events = events_of(probs, threshold=0.5, refractory_seconds=0.0)
    assert len(events) == 2
    assert events[0].start == pytest.approx(frame_start(100))
    assert events[1].end == pytest.approx(frame_end(110))
    assert events[0].end == pytest.approx(events[1].start)
    assert events[0].end == pytest.approx((frame_start(110) + frame_end(100)) / 2)


def test_threshold_edges() -> None:
    probs = np.array([0.0, 0.5, 0.0, 0.0])
    assert len(events_of(probs, threshold=0.5)) == 1  # equal to the threshold counts
    assert events_of(np.nextafter(probs, 0.0), threshold=0.5) == []
    assert events_of(np.zeros(100), threshold=0.5) == []
    assert events_of(np.zeros(0), threshold=0.5) == []
    everything = events_of(np.ones(100), threshold=1.0)
    assert len(everything) == 1
    assert (everything[0].start, everything[0].end) == (0.0, pytest.approx(frame_end(99)))
    assert len(events_of(np.zeros(100), threshold=0.0)) == 1  # threshold 0: everything is active


def test_events_are_clipped_to_the_given_duration() -> None:
    probs = np.zeros(100)
    probs[-1] = 0.9
    events = events_of(probs, duration=2.5)
    assert events[0].end == 2.5
    assert events_of(probs, duration=1.0) == []  # entirely past the end: nothing left to report


def test_smoothing_removes_spikes_and_keeps_peaks_in_place() -> None:
    spike = np.zeros(200)
    spike[50] = 1.0
    assert events_of(spike, threshold=0.5, smoothing_frames=5) == []
    assert len(events_of(spike, threshold=0.5, smoothing_frames=1)) == 1

    rng = np.random.default_rng(0)
    noisy = np.clip(bump(400, 200, 40) + rng.uniform(-0.3, 0.3, 400), 0, 1)
    assert len(events_of(noisy, threshold=0.5, refractory_seconds=0.0, smoothing_frames=1)) > 1
    assert len(events_of(noisy, threshold=0.5, refractory_seconds=0.0, smoothing_frames=9)) == 1

    symmetric = bump(400, 123, 30)
    assert int(np.argmax(smooth(symmetric, 9))) == 123  # centered: no shift of the peak
    edges = smooth(np.ones(10), 5)
    np.testing.assert_allclose(edges, 1.0)  # shorter windows at the edges: no fall-off towards zero


@pytest.mark.parametrize(
    "kwargs",
    [
        {"smoothing_frames": 4},
        {"smoothing_frames": 0},
        {"threshold": 1.5},
        {"refractory_seconds": -1.0},
    ],
)
def test_bad_settings_are_refused(kwargs) -> None:
    with pytest.raises(ValueError):
        events_of(np.zeros(10), **kwargs)


@pytest.mark.parametrize("probs", [np.array([0.1, np.nan]), np.array([0.2, 1.5]), np.array([-0.1]), np.zeros((2, 2))])
def test_bad_scores_are_refused(probs: np.ndarray) -> None:
    with pytest.raises(ValueError):
        events_of(probs)


@settings(max_examples=150, deadline=None)
@given(
    probs=st.integers(0, 500).flatmap(
        lambda n: arrays(np.float64, n, elements=st.floats(0.0, 1.0, allow_nan=False))
    ),
    hop=st.integers(1, 2000),
    rf_extra=st.integers(0, 40_000),
    threshold=st.floats(0.0, 1.0),
    smoothing=st.sampled_from([1, 3, 5, 11]),
    refractory=st.floats(0.0, 3.0),
)
def test_events_are_always_sorted_disjoint_inside_and_above_threshold(
    probs: np.ndarray, hop: int, rf_extra: int, threshold: float, smoothing: int, refractory: float
) -> None:
    rf = hop + rf_extra  # a receptive field is never shorter than the hop
    events = detect_events(
        probs, hop, rf, sample_rate=SR, threshold=threshold, smoothing_frames=smoothing, refractory_seconds=refractory
    )
    duration = ((probs.size - 1) * hop + rf) / SR if probs.size else 0.0
    assert_well_formed(events, duration, threshold)
    assert all(isinstance(e.score, float) for e in events)
    if probs.size and smoothing == 1 and probs.max() >= threshold:
        assert events and max(e.score for e in events) == pytest.approx(probs.max())


def test_settings_come_from_the_caller_then_the_weights_then_the_defaults() -> None:
    info = {"threshold": 0.7, "smoothing_frames": 3, "model_config": {}}
    assert detection_settings(info) == {"threshold": 0.7, "smoothing_frames": 3, "refractory_seconds": 1.0}
    chosen = detection_settings(info, threshold=0.2, smoothing_frames=1, refractory_seconds=0.0)
    assert chosen == {"threshold": 0.2, "smoothing_frames": 1, "refractory_seconds": 0.0}
    assert detection_settings({})["threshold"] == 0.5
    with pytest.raises(ValueError):
        detection_settings({"smoothing_frames": 2})


def test_detection_settings_are_one_checked_record() -> None:
    """The defaults and checks live in DetectionSettings; detect_events and detection_settings use them."""
    assert detection_settings({}) == DetectionSettings().to_dict()
    for bad in ({"threshold": 1.5}, {"smoothing_frames": 2}, {"refractory_seconds": -1.0}):
        with pytest.raises(ValueError):
            DetectionSettings(**bad)
        with pytest.raises(ValueError):
            detect_events(np.zeros(4), HOP, RF, sample_rate=SR, **bad)
    with pytest.raises(TypeError):
        detect_events(np.zeros(4), HOP, RF, sample_rate=SR, thresold=0.5)  # a misspelt setting is refused
