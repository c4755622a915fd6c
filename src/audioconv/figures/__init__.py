"""Teaching figures: a detector is one small window, scanned along the signal with shared weights.

Three pictures, each drawn by its own module on bare Agg ``Figure``s and written atomically
(``common``: style, PNG writing, shared marks):

- ``scan.png`` (``figures.scan``): a recording with "welcome" spoken twice among
  other words, the detector's features and frame scores along it, and the window
  behind the best frame near each keyword.
- ``shift.png`` (``figures.shift``): one spoken "welcome" at several whole-hop
  offsets: the score curve moves with it, its maximum stays put.
- ``receptive_field.png`` (``figures.receptive_field``): which units of each
  layer reach one output frame, for both detectors.

The recording (``figures.recording``) comes from the corpus's voice-disjoint
test split when a corpus exists, else from espeak-ng; the weights from
``checkpoints.resolve_model``. Everything random is drawn from one seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from audioconv import audio, checkpoints, config
from audioconv.checkpoints import MODEL_NAMES
from audioconv.figures.receptive_field import plot_receptive_field
from audioconv.figures.recording import SOURCES, keyword_word, make_recording
from audioconv.figures.scan import plot_scan
from audioconv.figures.shift import plot_shift
from audioconv.models import Detector

__all__ = ["SOURCES", "configured_detector", "make_figures"]


def configured_detector(name: str, sample_rate: int = audio.SAMPLE_RATE) -> Detector:
    """An untrained detector as ``model=<name>`` configures it (the class defaults, equal to those
    settings, where the checkout's ``conf/`` is missing)."""
    if not (config.ROOT / "conf" / "model" / f"{name}.yaml").is_file():
        return checkpoints.build_detector({"_target_": MODEL_NAMES[name], "sample_rate": sample_rate})
    model_config = config.compose([f"model={name}", f"data.clips.sample_rate={sample_rate}"]).model
    return checkpoints.build_detector(OmegaConf.to_container(model_config, resolve=True))


def make_figures(
    out_dir: str | os.PathLike,
    model_name: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    seed: int = 0,
    source: str = "auto",
    corpus: str | os.PathLike | None = None,
) -> tuple[list[Path], list[str]]:
    """Write scan.png, shift.png and receptive_field.png into ``out_dir``; return their paths and observations."""
    out_dir = Path(out_dir)
    loaded = checkpoints.resolve_model(model_name, checkpoint, seed=seed, outputs_dir=config.ROOT / "outputs")
    rng = np.random.default_rng(seed)
    recording, manifest, used = make_recording(source, rng, loaded.model.sample_rate, corpus)
    word, word_label = keyword_word(manifest if used == "corpus" else None, rng, loaded.model.sample_rate, recording.voice)
    notes = [f"model: {loaded.name}, weights: {loaded.source}", f"recording: {recording.source}"]
    scan_path, scan_notes = plot_scan(loaded, recording, out_dir / "scan.png")
    shift_path, shift_notes = plot_shift(loaded, word, word_label, out_dir / "shift.png")
    models: dict[str, Detector] = {}
    for name in MODEL_NAMES:
        models[name] = loaded.model if loaded.name == name else configured_detector(name, loaded.model.sample_rate)
    rf_path = plot_receptive_field(models, out_dir / "receptive_field.png",
                                   note=f"{loaded.name}: the loaded weights; other: conf/model/ settings, untrained (geometry only)")
    return [scan_path, shift_path, rf_path], notes + scan_notes + shift_notes
