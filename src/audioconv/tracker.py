"""Online event detection: frame probabilities arrive in pieces, events leave as soon as they are settled.

``EventTracker`` applies the rules of ``audioconv.detect`` (smoothing,
threshold, peak picking, refractory merge, span trimming) to a score sequence
that grows, and gives **exactly** the events ``detect.detect_events`` gives on
the whole sequence, however it was cut: the same helpers do the arithmetic,
and an event is only released when nothing that can still arrive would change
it. That takes, after the event's last active frame:

- ``smoothing_frames // 2`` frames, for the centered average to settle;
- its refractory period, counted from its firing peak: a later bump that
  close would be merged into it;
- about one receptive field of frames, unless the next event has begun: its
  window could overlap this one's and trim its end.

So a live event comes out once the later of the two has passed — the
refractory period after its peak, one receptive field (~1 s) after its last
active frame — with the stream times of its start and end.
``flush()`` ends the stream and releases what is left. Numpy only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from audioconv import audio
from audioconv.detect import (
    DetectionSettings,
    Event,
    Group,
    add_candidate,
    check_geometry,
    group_spans,
    smooth,
    span_event,
    within_refractory,
)


class EventTracker:
    """Incremental ``detect_events``: ``push`` frame probabilities, get the events they settle.

    The arguments are ``detect_events``' (``settings``: ``threshold``,
    ``smoothing_frames``, ``refractory_seconds``, as ``detect.DetectionSettings``),
    so one set of settings gives the same events live and offline.
    """

    def __init__(
        self, hop: int, receptive_field: int, sample_rate: int = audio.SAMPLE_RATE, *, file: str = "", **settings: Any
    ) -> None:
        check_geometry(hop, receptive_field, sample_rate)
        self.settings = DetectionSettings(**settings)
        self.hop, self.receptive_field, self.sample_rate = hop, receptive_field, sample_rate
        self.file = file
        self._half = self.settings.smoothing_frames // 2
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next push is frame 0 of a new stream."""
        self._raw = np.zeros(0, dtype=np.float64)  # raw probabilities from frame self._raw_first on
        self._raw_first = 0
        self.frames = 0  # frames pushed so far
        self._settled = 0  # frames whose smoothed score is final and has been used
        self._run: list | None = None  # [first, last, peak, score] of the run of active frames still growing
        self._groups: list[Group] = []  # events not yet released, oldest first
        self._previous: Group | None = None  # the last released event: its end may trim the next one's start
        self._closed = False

    def push(self, probabilities: np.ndarray) -> list[Event]:
        """Add the next frames' probabilities (1-D, in [0, 1]); return the events now settled, in order."""
        if self._closed:
            raise RuntimeError("the tracker was flushed: call reset() to start a new stream")
        values = np.asarray(probabilities, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f"expected 1-D frame probabilities, got shape {values.shape}")
        if values.size and not (np.all(np.isfinite(values)) and values.min() >= 0 and values.max() <= 1):
            raise ValueError("frame probabilities must be finite and in [0, 1] (pass sigmoid(logits), not logits)")
        self._raw = np.concatenate([self._raw, values])
        self.frames += values.size
        self._settle(self.frames - self._half, at_end=False)
        return self._release(at_end=False)

    def flush(self, duration: float | None = None) -> list[Event]:
        """End of stream: settle the last frames and return every event not yet returned.

        ``duration`` (seconds) is the stream's length, as ``detect_events``'
        argument; by default the span the frames cover.
        """
        if self._closed:
            return []
        self._settle(self.frames, at_end=True)
        if self._run is not None:
            self._candidate()
        self._closed = True
        if duration is None:
            duration = ((self.frames - 1) * self.hop + self.receptive_field) / self.sample_rate if self.frames else 0.0
        return self._release(at_end=True, duration=duration)

    # ---------------------------------------------------------------- internals

    def _settle(self, upto: int, at_end: bool) -> None:
        """Smooth frames ``[settled, upto)`` exactly as the whole-sequence ``smooth`` would, and use them."""
        first = self._settled
        if upto <= first:
            return
        # the window of each frame: `half` frames either side; at the stream's start (and, at its end, the last
        # frames) the window is cut short by the edge exactly as offline
        lo = max(0, first - self._half)
        window = self._raw[lo - self._raw_first :]  # through the newest frame: upto - 1 + half < frames unless at_end
        scores = smooth(window, self.settings.smoothing_frames)[first - lo : upto - lo]
        for index, score in enumerate(scores.tolist(), start=first):
            self._step(index, score)
        self._settled = upto
        keep_from = max(0, upto - self._half)  # what the next frames' windows still need
        self._raw = self._raw[keep_from - self._raw_first :]
        self._raw_first = keep_from

    def _step(self, index: int, score: float) -> None:
        """One settled frame: grow, start or end the run of active frames (``detect._active_runs``)."""
        if score >= self.settings.threshold:
            if self._run is None:
                self._run = [index, index, index, score]
            else:
                self._run[1] = index
                if score > self._run[3]:  # the first frame reaching the maximum is the peak, as np.argmax
                    self._run[2], self._run[3] = index, score
        elif self._run is not None:
            self._candidate()

    def _candidate(self) -> None:
        first, last, peak, score = self._run
        self._run = None
        refractory = self.settings.refractory_seconds
        add_candidate(self._groups, (first, last, peak, score), self.hop, self.sample_rate, refractory)

    def _release(self, at_end: bool, duration: float = math.inf) -> list[Event]:
        """Events of the groups nothing more can change, oldest first."""
        events: list[Event] = []
        while self._groups:
            group = self._groups[0]
            if len(self._groups) > 1:
                following: Group | None = self._groups[1]
            elif at_end:
                following = None
            else:
                following = self._settled_successor(group)
                if following is False:
                    break
            neighbours = [g for g in (self._previous, group, following) if g is not None]
            spans = group_spans(neighbours, self.hop, self.receptive_field, self.sample_rate)
            event = span_event(spans[0 if self._previous is None else 1], group[3], duration, self.file)
            if event is not None:
                events.append(event)
            self._previous = self._groups.pop(0)
        return events

    def _settled_successor(self, group: Group) -> Group | None | bool:
        """For the newest group: ``False`` while a later frame could still change it, else the next group-to-be.

        The next group-to-be is the growing run (it can no longer merge into
        ``group``, and only its first frame matters here) or ``None``.
        """
        lowest_peak = self._run[2] if self._run is not None else self._settled  # no later candidate peaks earlier
        if within_refractory(lowest_peak, group[2], self.hop, self.sample_rate, self.settings.refractory_seconds):
            return False  # a later candidate could still merge into it
        if self._run is not None:
            return (self._run[0], self._run[0], self._run[2], self._run[3])
        end = (group[1] * self.hop + self.receptive_field) / self.sample_rate
        if end > self._settled * self.hop / self.sample_rate:
            return False  # a group starting at the next frame could overlap its window and trim its end
        return None

