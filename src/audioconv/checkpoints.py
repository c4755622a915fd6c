"""Save and load detectors without ever unpickling a user's file.

Two formats:
- ``.safetensors`` (shipped weights, exports): tensors plus a JSON header that
  holds the model config and detection defaults (threshold, smoothing...).
- ``.ckpt`` written by ``train.py`` (Lightning): read with
  ``torch.load(weights_only=True)``, which refuses anything but tensors and
  plain containers, so a malicious pickle cannot run code.

A config may only name a detector class of this package: building a model
from a ``_target_`` taken from a file would otherwise import and call
whatever that file says.

``resolve_model`` is the fallback chain of the teaching figures: an explicit
checkpoint, else the shipped weights, else the newest training run's best
checkpoint, else random weights (and it says so).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from audioconv import registry
from audioconv.detect import DEFAULT_THRESHOLD
from audioconv.files import write_atomically
from audioconv.models import Conv1dDetector, Detector, Ensemble, PitchGated, SpectrogramDetector

DETECTORS: dict[str, type[Detector]] = {
    "audioconv.models.Conv1dDetector": Conv1dDetector,
    "audioconv.models.SpectrogramDetector": SpectrogramDetector,
}
ENSEMBLE = "audioconv.models.Ensemble"  # {"_target_": ENSEMBLE, "members": [member config, ...]}
PITCH_GATED = "audioconv.models.PitchGated"  # {"_target_": PITCH_GATED, "detector": detector config, gate settings}
MODEL_NAMES = registry.MODELS  # shipped name -> detector class name
# Shipped weights are package data (src/audioconv/weights/), found through importlib.resources.
MODELS_DIR = registry.weights_dir()
DEFAULT_MODEL_FILE = registry.DEFAULT_MODEL_FILE  # in MODELS_DIR: holds the name of the better shipped model
FALLBACK_MODEL = registry.FALLBACK_MODEL  # when there is no default.txt
OUTPUTS_DIR = Path("outputs")  # train.py's run folders (Hydra's hydra.run.dir, relative to the working directory)
log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A file that is not a usable detector. The message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")


def shipped_weights(
    name: str | None = None, models_dir: str | os.PathLike | None = None, suffix: str = ".safetensors"
) -> Path:
    """``<weights>/<name><suffix>``; with no name, the one ``default.txt`` names, else the fallback.

    ``models_dir`` defaults to the package's shipped weights (``registry.weights_dir``).
    Only the path is returned (the file may not exist yet: ``load_detector``
    says so). Raises ``ValueError`` for a name that is not a shipped model.
    """
    return registry.shipped_weights(name, suffix, models_dir)


def build_detector(model_config: Mapping[str, Any]) -> Detector:
    """Instantiate a detector from its config, allowing only this package's detector classes
    (an ``Ensemble`` of them: its config lists its members' configs; a ``PitchGated`` one: its config
    holds the detector's config and the gate's settings)."""
    config = dict(model_config)
    target = config.pop("_target_", None)
    if target == PITCH_GATED:
        detector = config.pop("detector", None)
        if not isinstance(detector, Mapping) or dict(detector).get("_target_") in (ENSEMBLE, PITCH_GATED):
            raise ValueError("a pitch-gated detector's config holds 'detector', the config of one single detector "
                             "(and the gate's settings)")
        return PitchGated(build_detector(detector), **config)
    if target == ENSEMBLE:
        members = config.pop("members", None)
        combine = config.pop("combine", "probabilities")
        if config or not isinstance(members, (list, tuple)) or not members:
            raise ValueError("an ensemble's config holds one non-empty list, 'members', of detector configs "
                             "(and 'combine')")
        if any(dict(member).get("_target_") == ENSEMBLE for member in members):
            raise ValueError("an ensemble's members are single detectors, not ensembles")
        return Ensemble([build_detector(member) for member in members], combine=combine)
    if target not in DETECTORS:
        raise ValueError(f"unknown detector {target!r}; expected one of {sorted(DETECTORS)}")
    return DETECTORS[target](**config)


def ensemble_config(member_configs: Sequence[Mapping[str, Any]], combine: str = "probabilities") -> dict[str, Any]:
    """The config ``build_detector`` turns into an ``Ensemble`` of detectors built from ``member_configs``."""
    return {"_target_": ENSEMBLE, "members": [dict(config) for config in member_configs], "combine": combine}


def pitch_gated_config(detector_config: Mapping[str, Any], model: PitchGated) -> dict[str, Any]:
    """The config ``build_detector`` turns into ``model``: its detector's config and its gate's settings."""
    return {"_target_": PITCH_GATED, "detector": dict(detector_config), **model.settings}


def load_ensemble(paths: Sequence[str | os.PathLike], combine: str = "probabilities") -> tuple[Detector, dict[str, Any]]:
    """Several checkpoints as one ``Ensemble`` (eval mode) and its info: only its config, since no member's
    threshold is the ensemble's (measure one: ``scripts/ship_model.py``).

    Each member of an ensemble is put back on the scale it was trained at: a
    shipped ``.safetensors`` has its temperature undone (``calibrate.undo_temperature``),
    as no member's calibration is the ensemble's and thresholds measured on the
    cross-engine folds are on the trained scale. One path gives that detector
    alone, with its own info (and temperature). Raises ``CheckpointError`` for an
    unusable file and ``ValueError`` when the members' frames would not line up.
    """
    from audioconv.calibrate import undo_temperature  # calibrate scans streams: imported only when combining

    loaded = [load_detector(path) for path in paths]
    if not loaded:
        raise ValueError("no checkpoint given")
    if len(loaded) == 1:
        return loaded[0]
    for member, member_info in loaded:
        undo_temperature(member, member_info)
    model = Ensemble([member for member, _ in loaded], combine=combine).eval()
    configs = [member_info["model_config"] for _, member_info in loaded]
    return model, {"model_config": ensemble_config(configs, combine)}  # a member's threshold is not the ensemble's


def save_detector(path: str | os.PathLike, model: Detector, model_config: Mapping[str, Any], **info: Any) -> None:
    """Write weights + config (+ detection defaults in ``info``) as one safetensors file, atomically."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = {"format": "audioconv-detector-1", "model_config": json.dumps(dict(model_config)), "info": json.dumps(info)}
    write_atomically(path, lambda tmp: save_file(state, tmp, metadata=metadata))


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if metadata.get("format") != "audioconv-detector-1":
        raise CheckpointError(path, "not an audioconv detector (no audioconv metadata in the safetensors header)")
    return load_file(str(path)), json.loads(metadata["model_config"]), json.loads(metadata.get("info", "{}"))


def _read_lightning(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure means "not a checkpoint we can trust"
        with open(path, "rb") as handle:
            is_plain_pickle = handle.read(1) == b"\x80"  # pickle protocol 2+ header (torch's own format is a zip)
        if "GLOBAL" in str(error) or is_plain_pickle:
            reason = "refused: it holds pickled Python objects, not plain weights, and loading it could run code"
        else:
            reason = "not a PyTorch checkpoint (corrupt, truncated or another format)"
        raise CheckpointError(path, reason) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(path, "not a Lightning checkpoint (no state_dict)")
    hparams = checkpoint.get("hyper_parameters") or {}
    if "model_config" not in hparams:
        raise CheckpointError(path, "not an audioconv checkpoint (no model_config in its hyper-parameters)")
    state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    return state, dict(hparams["model_config"]), {}  # no operating point yet: ship_model.py measures one


def load_detector(path: str | os.PathLike) -> tuple[Detector, dict[str, Any]]:
    """Load a detector (eval mode) from ``.safetensors`` or a ``train.py`` ``.ckpt``.

    Returns the model and its info (detection defaults, model config under
    ``"model_config"``). Raises ``CheckpointError`` naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file" if not path.exists() else "not a file")
    try:
        if path.suffix == ".safetensors":
            state, model_config, info = _read_safetensors(path)
        else:
            state, model_config, info = _read_lightning(path)
    except SafetensorError as error:
        raise CheckpointError(path, f"not a readable safetensors file ({error})") from None
    try:
        model = build_detector(model_config)
        model.load_state_dict(state, strict=True)
    except (ValueError, TypeError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0][:200]
        raise CheckpointError(path, f"weights do not fit the detector it names ({reason})") from None
    info = {**{k: v for k, v in info.items() if v is not None}, "model_config": model_config}
    return model.eval(), info


@dataclass
class LoadedModel:
    """A detector with where its weights came from (for titles) and its operating point."""

    model: Detector
    name: str  # a registry.MODELS name
    source: str  # where the weights came from, for titles
    random: bool = False
    threshold: float = DEFAULT_THRESHOLD  # the weights' own operating point when they carry one


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def model_name(model: Detector) -> str | None:
    """The shipped-model name of a detector's kind (an ensemble: its members'), or None for another kind."""
    kind = model.branches[0]
    return next((n for n, target in MODEL_NAMES.items() if isinstance(kind, DETECTORS[target])), None)


def _load(path: Path, source: str) -> LoadedModel:
    model, info = load_detector(path)
    name = model_name(model)
    if name is None:
        raise CheckpointError(path, f"a {type(model.branches[0]).__name__}, not one of {', '.join(MODEL_NAMES)}")
    threshold = info.get("threshold")
    return LoadedModel(model, name, source, threshold=float(threshold) if threshold is not None else DEFAULT_THRESHOLD)


def resolve_model(
    name: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    seed: int = 0,
    models_dir: str | os.PathLike | None = None,
    outputs_dir: str | os.PathLike = OUTPUTS_DIR,
) -> LoadedModel:
    """The weights to use, first found of: ``checkpoint`` (when given), the shipped weights,
    the newest ``<outputs_dir>/<name>/*/checkpoints/best.ckpt``, random weights (``random=True``).

    A checkpoint named explicitly that cannot be loaded is an error (``CheckpointError``); a
    fallback that cannot be loaded (a run still writing it, say) is skipped with a warning.
    """
    if checkpoint is not None:
        path = Path(checkpoint)
        loaded = _load(path, f"checkpoint {_display(path)}")
        if name is not None and loaded.name != name:
            log.warning("model %s ignored: %s holds a %s detector", name, path, loaded.name)
        return loaded
    if name is None:
        name = shipped_weights(None, models_dir).stem
    shipped = shipped_weights(name, models_dir)
    if shipped.is_file():
        return _load(shipped, f"shipped weights {_display(shipped)}")
    candidates = sorted(Path(outputs_dir).glob(f"{name}/*/checkpoints/best.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        try:
            return _load(path, f"checkpoint {_display(path)}")
        except CheckpointError as error:
            log.warning("skipping %s", error)
    torch.manual_seed(seed)
    model = build_detector({"_target_": MODEL_NAMES[name]}).eval()
    log.warning("no trained %s weights found (no %s, no %s/%s/*/checkpoints/best.ckpt): RANDOM WEIGHTS",
                name, shipped, outputs_dir, name)
    return LoadedModel(model, name, "RANDOM WEIGHTS, untrained: the scores mean nothing", random=True)
