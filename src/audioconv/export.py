"""Export a detector for deployment: ONNX (onnxruntime, no torch needed) or TorchScript.

What is exported is the whole detector, waveform to frame probabilities:

    wave [batch, samples] float32, mono at ``sample_rate``  ->  probabilities [batch, frames]

with the sigmoid inside the graph and both axes dynamic. Frame ``i`` covers
samples ``[i * hop, i * hop + receptive_field)``, as in PyTorch, so an export
can be scanned in chunks exactly like the model (``audioconv.onnx_backend``).

The geometry and the detection defaults travel inside the file: ONNX
``metadata_props`` (one key per entry, values JSON-encoded) or, for
TorchScript, the extra file ``audioconv.json`` (one JSON object). Keys:
``format``, ``sample_rate``, ``hop``, ``receptive_field``, ``time_layers``
(``[[span, stride], ...]``, for exact output lengths), ``threshold``,
``smoothing_frames``, ``refractory_seconds``, ``model_config``, ``input``,
``output``.

ONNX goes through the TorchScript-based exporter (``dynamo=False``, opset 17):
the dynamo exporter needs onnxscript, and the TorchScript one has no
``aten::fft_rfft`` and cannot ``unfold`` a dynamic axis. The spectrogram front
end is therefore exported in its ``dft_as_conv`` form (frame + window + DFT as
one strided Conv1d, ``features.FramedSpectrogram``), switched on in a copy of
the model only. Every export is checked against the PyTorch model on two
input lengths before it is written; files are written atomically.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from audioconv import detect, registry
from audioconv.features import FramedSpectrogram
from audioconv.models import Detector

EXPORT_FORMAT = registry.EXPORT_FORMAT
FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 17
TORCHSCRIPT_METADATA_FILE = "audioconv.json"
INPUT_NAME, OUTPUT_NAME = "wave", "probabilities"
CHECK_TOLERANCE = 1e-4  # largest allowed |export - PyTorch| in frame probability
CHECK_FRAMES = (3, 17)  # the check runs two input lengths: a dynamic axis that is silently fixed fails it
CHECK_SEED = 0


class ExportError(RuntimeError):
    """An export that failed or does not reproduce the PyTorch model."""


class FrameProbabilities(nn.Module):
    """The detector with its sigmoid: wave [B, T] -> frame probabilities [B, T']."""

    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.detector(wave))


def _plain(value: Any) -> Any:
    """JSON fallback for config containers that are not dicts and lists (e.g. OmegaConf's, from a .ckpt)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return list(value)
    return str(value)


def metadata(model: Detector, info: Mapping[str, Any]) -> dict[str, Any]:
    """What a deployed detector needs besides its graph: geometry and detection defaults (JSON values)."""
    settings = detect.detection_settings(info)
    return {
        "format": EXPORT_FORMAT,
        "sample_rate": int(model.sample_rate),
        "hop": int(model.hop),
        "receptive_field": int(model.receptive_field),
        "time_layers": [[layer.span, layer.stride] for layer in model.time_layers],
        **settings,
        "model_config": json.loads(json.dumps(dict(info.get("model_config", {})), default=_plain)),
        "input": f"{INPUT_NAME}: float32 [batch, samples], mono at sample_rate",
        "output": f"{OUTPUT_NAME}: float32 [batch, frames], sigmoid of the frame logits",
    }


def _export_copy(model: Detector, onnx_friendly: bool) -> FrameProbabilities:
    """A CPU float32 eval-mode copy (the caller's model is left as it was), DFT as conv for ONNX."""
    model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    if onnx_friendly:
        for module in model.modules():
            if isinstance(module, FramedSpectrogram):
                module.dft_as_conv = True
    return FrameProbabilities(model).eval()


def _check_inputs(model: Detector) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(CHECK_SEED)
    lengths = [model.receptive_field + (frames - 1) * model.hop + model.hop // 2 for frames in CHECK_FRAMES]
    return [0.1 * torch.randn(1, length, generator=generator) for length in lengths]


def _verify(model: Detector, run: Callable[[np.ndarray], np.ndarray], what: str) -> None:
    """Raise ``ExportError`` unless ``run`` reproduces the PyTorch frame probabilities on two lengths."""
    reference_model = FrameProbabilities(copy.deepcopy(model).cpu().float().eval())
    for wave in _check_inputs(model):
        with torch.inference_mode():
            reference = reference_model(wave).numpy()
        got = np.asarray(run(wave.numpy()))
        if got.shape != reference.shape:
            raise ExportError(f"{what}: {wave.shape[1]} samples gave shape {got.shape}, PyTorch gives {reference.shape}")
        error = float(np.max(np.abs(got - reference))) if got.size else 0.0
        if not error <= CHECK_TOLERANCE:
            raise ExportError(f"{what}: differs from PyTorch by {error:.2e} (> {CHECK_TOLERANCE:.0e})")


@contextlib.contextmanager
def _as_export_error(what: str) -> Iterator[None]:
    """Turn an exporter's own exception (many types, multi-line messages) into one ``ExportError`` line."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - torch.onnx / torch.jit raise many unrelated types
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ExportError(f"{what}: {type(error).__name__}: {first_line}") from error


def _write_atomic(path: Path, write: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; the result is an ordinary file others may read
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def onnx_bytes(model: Detector, info: Mapping[str, Any], opset: int = ONNX_OPSET) -> bytes:
    """The serialized ONNX model (graph + metadata_props), checked with ``onnx.checker``."""
    import onnx

    wrapped = _export_copy(model, onnx_friendly=True)
    example = _check_inputs(model)[0]
    buffer = io.BytesIO()
    with warnings.catch_warnings(), _as_export_error("ONNX export failed"):
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices and tracer warnings
        torch.onnx.export(
            wrapped,
            (example,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch", 1: "samples"}, OUTPUT_NAME: {0: "batch", 1: "frames"}},
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in metadata(model, info).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    proto.doc_string = "audioconv keyword detector: wave [batch, samples] -> frame probabilities [batch, frames]"
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def export_onnx(model: Detector, info: Mapping[str, Any], out: str | os.PathLike, opset: int = ONNX_OPSET) -> Path:
    """Write ``out`` (.onnx) after checking it in onnxruntime against the PyTorch model."""
    import onnxruntime

    data = onnx_bytes(model, info, opset)
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    _verify(model, lambda wave: session.run([OUTPUT_NAME], {INPUT_NAME: wave})[0], "ONNX export")
    out = Path(out)
    _write_atomic(out, lambda tmp: Path(tmp).write_bytes(data))
    return out


def torchscript_module(model: Detector) -> torch.jit.ScriptModule:
    """The detector traced to TorchScript (every shape computed from the input: any length works)."""
    wrapped = _export_copy(model, onnx_friendly=False)
    with warnings.catch_warnings(), torch.no_grad(), _as_export_error("TorchScript trace failed"):
        warnings.simplefilter("ignore")
        return torch.jit.trace(wrapped, (_check_inputs(model)[0],), check_trace=False)


def export_torchscript(model: Detector, info: Mapping[str, Any], out: str | os.PathLike) -> Path:
    """Write ``out`` (TorchScript, ``torch.jit.load``-able) with ``audioconv.json`` as an extra file."""
    traced = torchscript_module(model)
    _verify(model, lambda wave: traced(torch.from_numpy(wave)).detach().numpy(), "TorchScript export")
    extra = {TORCHSCRIPT_METADATA_FILE: json.dumps(metadata(model, info))}
    out = Path(out)
    _write_atomic(out, lambda tmp: _quietly(torch.jit.save, traced, tmp, _extra_files=extra))
    return out


def _quietly(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``function`` with warnings silenced (torch.jit's deprecation notices)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def export(model: Detector, info: Mapping[str, Any], out: str | os.PathLike, format: str) -> Path:
    """Export ``model`` (with its ``info`` from ``checkpoints.load_detector``) as ``format`` to ``out``."""
    if format == "onnx":
        return export_onnx(model, info, out)
    if format == "torchscript":
        return export_torchscript(model, info, out)
    raise ValueError(f"unknown export format {format!r}; expected one of {', '.join(FORMATS)}")


def load_torchscript(path: str | os.PathLike) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """A TorchScript export and its metadata (``torch.jit.load`` plus the ``audioconv.json`` extra file)."""
    extra = {TORCHSCRIPT_METADATA_FILE: ""}
    module = _quietly(torch.jit.load, str(path), map_location="cpu", _extra_files=extra)
    return module.eval(), json.loads(extra[TORCHSCRIPT_METADATA_FILE] or "{}")
