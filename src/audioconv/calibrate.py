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

import numpy as np
import torch

from audioconv import evaluate, streams
from audioconv.detect import detection_settings
from audioconv.models import Detector

STREAM_MINUTES = 5.0  # length of each calibration stream
FALLBACK_THRESHOLD = 0.5  # when no threshold meets the target on the streams
LOGIT_CEILING = 8.0  # after temperature scaling, 99.9 % of frame logits lie within +-8 (p <= 0.99966)


def fold_temperature(model: Detector, waves: Sequence[np.ndarray]) -> float:
    """Divide the detector's output logits by a temperature T >= 1, folded into its last layer.

    Trained with a max over time, the detectors become very confident: many
    frame logits exceed 17, where float32 sigmoid is exactly 1.0, so keywords
    and false alarms tie at the top and no threshold can tell them apart.
    Scaling the logits keeps every ranking and every event but spreads the
    probabilities out again. Returns T (1.0 when no scaling was needed).
    """
    with torch.inference_mode():
        logits = np.concatenate([model(torch.from_numpy(w)[None])[0].numpy() for w in waves])
    temperature = max(1.0, float(np.percentile(np.abs(logits), 99.9)) / LOGIT_CEILING)
    model.divide_logits(temperature)
    return temperature


def through_temperature(threshold: float, temperature: float) -> float:
    """The probability threshold after the logits are divided by ``temperature``: same decisions, new scale."""
    threshold = min(max(threshold, 1e-7), 1 - 1e-7)
    logit = float(np.log(threshold / (1 - threshold)))
    return float(1 / (1 + np.exp(-logit / temperature)))


def undo_temperature(model: Detector, info: Mapping[str, Any]) -> float:
    """Multiply back the temperature a shipped file folded into ``model`` (its ``calibration.temperature``;
    1 for a train.py checkpoint), so it gives the logits it was trained to give. Returns that temperature.

    Why: thresholds measured on cross-engine folds are on the trained models' scale, so a shipped model
    shipped again (e.g. wrapped in a pitch gate) must be back on that scale before it is calibrated anew.
    """
    temperature = float(info.get("calibration", {}).get("temperature", 1.0))
    if temperature != 1.0:
        model.divide_logits(1.0 / temperature)
    return temperature


def calibrate_threshold(
    model: Detector,
    rows: Sequence[Mapping[str, Any]],
    minutes: float,
    target_false_alarms_per_hour: float,
    seed: int,
    split: str = "val",
    keyword: str = streams.DEFAULT_KEYWORD,
) -> tuple[float, float, evaluate.ModelEvaluation]:
    """(temperature, threshold, the evaluation it was read from) on ``minutes`` of streams from ``split``.

    ``keyword`` is the corpus's (``data.corpus.keyword``): the streams never spell it across a junction.

    The model is changed in place: its logits are divided by the temperature
    (``fold_temperature``) before the threshold is chosen.
    """
    speech, noise = streams.split_rows(rows, split)
    count = max(1, round(minutes / STREAM_MINUTES))
    config = streams.StreamConfig(seconds=minutes * 60 / count, keyword=keyword)
    with tempfile.TemporaryDirectory(prefix="calibrate-") as folder:
        files, truth, waves = {}, {}, []
        for index in range(count):
            wave, keywords = streams.compose_stream(speech, config, seed=[seed, index], noise_rows=noise)
            key = f"{split}_{index:03d}.wav"
            streams.save_stream(Path(folder) / key, wave)
            files[key], truth[key] = Path(folder) / key, keywords
            waves.append(wave)
        temperature = fold_temperature(model, waves)
        settings = detection_settings({}, threshold=1.0)
        [evaluation] = evaluate.evaluate_models({"model": (model, settings)}, files, truth)
    threshold = evaluate.threshold_for(evaluation.points, target_false_alarms_per_hour)
    if threshold != threshold:  # nan: nothing met the target
        threshold = FALLBACK_THRESHOLD
    return temperature, float(threshold), evaluation
