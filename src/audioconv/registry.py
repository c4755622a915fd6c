"""The shipped detectors in one torch-free place: their names, their files, the package-wide defaults.

The weights ship inside the package (``audioconv/weights/``: ``<name>.safetensors``
for the PyTorch backend, ``<name>.onnx`` for onnxruntime, and ``default.txt``
naming the better model) and are found through ``importlib.resources``, so an
installed wheel finds them wherever it was installed, whatever the working
directory. The CLI, the Python API, ``checkpoints`` and ``onnx_backend`` all read
the names and defaults from here; this module imports nothing beyond the
standard library, so the torch-free (ONNX) install can use it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from importlib import resources
from pathlib import Path

# name -> the detector class its weights build (checkpoints.DETECTORS holds the classes themselves)
MODELS: dict[str, str] = {
    "conv1d": "audioconv.models.Conv1dDetector",
    "spectrogram": "audioconv.models.SpectrogramDetector",
}
MODEL_NAMES = tuple(MODELS)
FALLBACK_MODEL = "spectrogram"  # when default.txt is missing
DEFAULT_MODEL_FILE = "default.txt"  # in the weights folder: holds the name of the better shipped model
WEIGHTS_PACKAGE, WEIGHTS_FOLDER = "audioconv", "weights"
BACKENDS = ("torch", "onnx")
WEIGHTS_SUFFIX = {"torch": ".safetensors", "onnx": ".onnx"}
EXPORT_FORMAT = "audioconv-export-1"  # the metadata tag of an ONNX / TorchScript export (audioconv.export)
DEFAULT_CHUNK_SECONDS = 60.0  # audio per forward pass of a file scan: bounds memory, not results (audioconv.scan)
STREAM_CHUNK_SECONDS = 10.0  # most audio a streaming scanner runs the model over at once (audioconv.scan)

_extracted = contextlib.ExitStack()  # keeps weights extracted from a zipped install alive until exit
atexit.register(_extracted.close)


def weights_dir() -> Path:
    """The folder holding the shipped weights, as a real path (extracted once if the package is zipped)."""
    folder = resources.files(WEIGHTS_PACKAGE) / WEIGHTS_FOLDER
    if isinstance(folder, Path):
        return folder
    return Path(_extracted.enter_context(resources.as_file(folder)))


def check_name(name: str) -> str:
    """``name`` if it is a shipped model, else ``ValueError`` listing the names there are."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}, expected one of {', '.join(MODEL_NAMES)}")
    return name


def default_model(folder: str | os.PathLike | None = None) -> str:
    """The name in ``default.txt`` (of ``folder``, default the shipped weights), else the fallback."""
    default_file = Path(folder if folder is not None else weights_dir()) / DEFAULT_MODEL_FILE
    if not default_file.is_file():
        return FALLBACK_MODEL
    name = default_file.read_text().strip()
    if name not in MODELS:
        raise ValueError(f"{default_file}: names {name!r}, expected one of {', '.join(MODEL_NAMES)}")
    return name


def shipped_weights(
    name: str | None = None, suffix: str = WEIGHTS_SUFFIX["torch"], folder: str | os.PathLike | None = None
) -> Path:
    """``<weights>/<name><suffix>``; with no name, the default model's.

    Only the path is returned (a checkout may not have made a file yet: the
    loader says so). Raises ``ValueError`` for a name that is not a shipped model.
    """
    folder = Path(folder) if folder is not None else weights_dir()
    name = default_model(folder) if name is None else check_name(name)
    return folder / f"{name}{suffix}"


def backend_file(name: str | None, backend: str) -> Path:
    """The shipped file ``backend`` ("torch" or "onnx") loads for model ``name`` (None: the default model)."""
    if backend not in WEIGHTS_SUFFIX:
        raise ValueError(f"unknown backend {backend!r}, expected one of {', '.join(BACKENDS)}")
    return shipped_weights(name, WEIGHTS_SUFFIX[backend])
