"""Choose a detector's operating threshold on validation streams, and package it for shipping.

A threshold of 0.5 on the clip probability says little about false alarms in
hours of real audio: the scan fires on the best-matching window of every
utterance. So the shipped threshold is measured instead: compose streams from
the validation voices (never trained on), sweep the threshold over the events
and take the highest threshold that keeps the best recall at or under the
target false-alarm rate (``evaluate.threshold_for``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from audioconv import evaluate, streams
from audioconv.detect import detection_settings
from audioconv.models import Detector

STREAM_MINUTES = 5.0  # length of each calibration stream
FALLBACK_THRESHOLD = 0.5  # when no threshold meets the target on the streams


def calibrate_threshold(
    model: Detector,
    rows: Sequence[Mapping[str, Any]],
    minutes: float,
    target_false_alarms_per_hour: float,
    seed: int,
    split: str = "val",
) -> tuple[float, evaluate.ModelEvaluation]:
    """(threshold, the evaluation it was read from) on ``minutes`` of streams from ``split``."""
    speech, noise = streams.split_rows(rows, split)
    count = max(1, round(minutes / STREAM_MINUTES))
    config = streams.StreamConfig(seconds=minutes * 60 / count)
    with tempfile.TemporaryDirectory(prefix="calibrate-") as folder:
        files, truth = {}, {}
        for index in range(count):
            wave, keywords = streams.compose_stream(speech, config, seed=[seed, index], noise_rows=noise)
            key = f"{split}_{index:03d}.wav"
            streams.save_stream(Path(folder) / key, wave)
            files[key], truth[key] = Path(folder) / key, keywords
        settings = detection_settings({}, threshold=1.0)
        [evaluation] = evaluate.evaluate_models({"model": (model, settings)}, files, truth)
    threshold = evaluate.threshold_for(evaluation.points, target_false_alarms_per_hour)
    if threshold != threshold:  # nan: nothing met the target
        threshold = FALLBACK_THRESHOLD
    return float(threshold), evaluation
