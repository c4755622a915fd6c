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

**Stateful streaming export** (``format="onnx-stream"``, ``<name>.stream.onnx``;
google-research kws_streaming's "external state" mode, as microWakeWord ships
it). One run of the graph is one push of ``push_samples`` audio samples (a
multiple of the hop; 80 ms by default)::

    chunk [1, push_samples], state_0 .. state_{n-1}  ->  probabilities [1, push_samples / hop], new_state_0 ..

The layer list is ``streaming.streaming_copy``'s, the one the PyTorch
``StatefulScanner`` runs: every window layer (a convolution, a pooling, the
spectrogram's framing, a residual block) of a copy of the model is given the
tail of its input as an explicit state tensor, concatenated in front of its new
frames (``ExternalStateWindow``). A fixed push has no room for a scanner's
"not enough frames yet": each window keeps ``L`` frames, the one value in
``[span - stride, span - 1]`` that keeps its output on the whole-signal stride
grid (``stream_plan``), so every run emits exactly ``push / stride`` outputs
per layer. Starting from zero states, the first ``leading_frames`` outputs are
made from those zeros and are dropped by the runner; every later output ``g``
is frame ``g - leading_frames`` of ``scan_whole`` (to float32 rounding), and
``leading_frames = ceil((receptive_field - hop) / hop)``, so a frame comes out
with the push that delivers its last sample's hop: no latency beyond the push.
The runner (``onnx_backend.OnnxStatefulStream``, numpy + onnxruntime) buffers
pushes of any size into whole blocks. The metadata adds ``kind``
(``"stateful-stream"``), ``push_samples``, ``leading_frames``, ``states``
(``[[name, shape], ...]``) and ``windows`` (``[[span, stride, state, skip], ...]``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from audioconv import detect, onnx_backend, registry
from audioconv.features import FramedSpectrogram
from audioconv.files import write_atomically
from audioconv.models import Detector

EXPORT_FORMAT = registry.EXPORT_FORMAT
FORMATS = ("onnx", "onnx-stream", "torchscript")
STREAM_KIND, STREAM_SUFFIX = onnx_backend.STREAM_KIND, onnx_backend.STREAM_SUFFIX
DEFAULT_PUSH_MS = 80.0  # 4 hops: openWakeWord's push, and a push cost well under its duration
STREAM_INPUT, STATE_INPUT, STATE_OUTPUT = "chunk", "state_{}", "new_state_{}"
STREAM_CHECK_PUSHES = (1, 5, 1000, 2047, 320, 7001)  # the stream check pushes a signal in these pieces, cycling
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
            if hasattr(module, "dft_as_conv"):  # the spectrogram front end, a pitch gate's tracker
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
    write_atomically(out, lambda tmp: Path(tmp).write_bytes(data))
    return out


def push_samples_for(model: Detector, push_ms: float) -> int:
    """``push_ms`` milliseconds in samples, which must be a whole number of hops (at least one)."""
    samples = push_ms * model.sample_rate / 1000
    hops = samples / model.hop
    if not (hops >= 1 and abs(hops - round(hops)) < 1e-6):
        hop_ms = 1000 * model.hop / model.sample_rate
        raise ValueError(f"push of {push_ms:g} ms is not a whole number of hops ({hop_ms:g} ms): try {4 * hop_ms:g}")
    return int(round(hops)) * model.hop


def stream_plan(windows: Sequence[tuple[int, int]]) -> tuple[list[tuple[int, int]], int]:
    """Per window (span, stride), in data-flow order: (state frames kept, frames skipped per push); leading frames.

    A window whose ``L`` frames of state come before each push's new frames
    emits outputs at positions ``0, stride, ..`` of the concatenation. With
    ``off`` leading frames of zeros-made garbage in its input, that grid is
    the whole-signal grid when ``L + off`` is a multiple of the stride, and a
    push of ``n`` frames (a multiple of the stride) completes exactly
    ``n / stride`` outputs when ``span - stride <= L <= span - 1``: one value
    of ``L`` does both. Its output then leads with ``(L + off) / stride``
    garbage frames. ``L < 0`` (a stride longer than the span) keeps no state
    and skips ``-L`` frames at the start of each push instead.
    """
    plan, offset = [], 0
    for span, stride in windows:
        keep = span - stride + (-(span - stride + offset)) % stride
        plan.append((max(keep, 0), max(-keep, 0)))
        offset = (keep + offset) // stride
    return plan, offset


class Conv1dAs2d(nn.Module):
    """An ``nn.Conv1d`` run as a ``Conv2d`` of height 1: the same sums, which onnxruntime's CPU kernels do
    2-4x faster on a few frames (its NCHWc convolutions, depthwise ones included, take 4-D inputs only)."""

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, (1, conv.kernel_size[0]), stride=(1, conv.stride[0]),
                              padding=(0, conv.padding[0]), dilation=(1, conv.dilation[0]), groups=conv.groups,
                              bias=conv.bias is not None)
        with torch.no_grad():
            self.conv.weight.copy_(conv.weight.unsqueeze(2))
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias)

    @staticmethod
    def supports(module: nn.Module) -> bool:
        return type(module) is nn.Conv1d and module.padding_mode == "zeros" and isinstance(module.padding, tuple)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.unsqueeze(2)).squeeze(2)


class SpectrogramAs2d(nn.Module):
    """``FramedSpectrogram`` in its ``dft_as_conv`` form, the strided DFT convolution run as a ``Conv2d``."""

    def __init__(self, spectrogram: FramedSpectrogram) -> None:
        super().__init__()
        self.bins = spectrogram.n_fft // 2 + 1
        kernels = spectrogram.dft_kernels().float()  # [2 * bins, 1, n_fft]
        self.conv = nn.Conv2d(1, kernels.shape[0], (1, spectrogram.n_fft), stride=(1, spectrogram.hop_length), bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(kernels.unsqueeze(2))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spectrum = self.conv(wave[:, None, None, :]).squeeze(2)  # [B, 2 * bins, frames]
        real, imaginary = spectrum[:, : self.bins], spectrum[:, self.bins :]
        return torch.sqrt(real * real + imaginary * imaginary)


def _onnx_runtime_friendly(module: nn.Module) -> None:
    """Swap, in place, every Conv1d and DFT front end under ``module`` for its 2-D form (same arithmetic)."""
    for name, child in module.named_children():
        if Conv1dAs2d.supports(child):
            setattr(module, name, Conv1dAs2d(child))
        elif isinstance(child, FramedSpectrogram):
            setattr(module, name, SpectrogramAs2d(child))
        elif hasattr(child, "dft_as_conv"):  # a pitch gate's tracker: a few low bins, its 1-D convolution will do
            child.dft_as_conv = True
        else:
            _onnx_runtime_friendly(child)


class ExternalStateWindow(nn.Module):
    """A window layer whose input tail is a tensor handed in and out (``incoming`` / ``outgoing``), not kept.

    ``StatefulStreamGraph.forward`` sets ``incoming`` before running the model
    and collects ``outgoing`` after: traced, they become a graph input and
    output. ``incoming`` None (shape probing) stands for zeros.
    """

    def __init__(self, module: nn.Module, span: int, stride: int, state: int, skip: int) -> None:
        super().__init__()
        self.module, self.span, self.stride, self.state, self.skip = module, span, stride, state, skip
        self.incoming: torch.Tensor | None = None
        self.outgoing: torch.Tensor | None = None
        self.input_shape: tuple[int, ...] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.skip:
            x = x[..., self.skip :]
        if self.state:
            self.input_shape = tuple(x.shape[:-1])
            incoming = self.incoming if self.incoming is not None else x.new_zeros(*x.shape[:-1], self.state)
            x = torch.cat((incoming, x), dim=-1)
            self.outgoing = x[..., x.shape[-1] - self.state :]
        return self.module(x)


class StatefulStreamGraph(nn.Module):
    """One fixed push of a stateful stream: (chunk [1, P], *states) -> (probabilities [1, P / hop], *new states).

    Built on ``streaming.streaming_copy`` (the ``StatefulScanner``'s layer
    list and its check against ``model.time_layers``): each ``StreamingWindow``
    is swapped for an ``ExternalStateWindow``, the model's own ``forward`` runs
    unchanged. Its 1-D convolutions become 2-D ones of height 1 and the
    spectrogram's DFT a strided 2-D convolution (``Conv1dAs2d``,
    ``SpectrogramAs2d``): the same sums, in the layout onnxruntime's fastest
    CPU kernels take. ``state_shapes`` are the states' shapes, in input order.
    """

    def __init__(self, model: Detector, push_samples: int) -> None:
        super().__init__()
        from audioconv.streaming import StreamingWindow, streaming_copy

        if push_samples < model.hop or push_samples % model.hop:
            raise ValueError(f"push_samples must be a positive multiple of the hop ({model.hop}), got {push_samples}")
        self.push_samples, self.hop = push_samples, model.hop
        float_model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32)
        stream, windows = streaming_copy(float_model, few_frame_layers=False)
        plan, leading = [], set()
        for branch in stream.branches:  # an ensemble's members run side by side: one chain of windows each
            chain = [module for module in branch.modules() if isinstance(module, StreamingWindow)]
            branch_plan, branch_leading = stream_plan([(window.span, window.stride) for window in chain])
            plan += branch_plan
            leading.add(branch_leading)
        if len(plan) != len(windows) or len(leading) != 1:
            raise ExportError(f"{type(model).__name__}: its branches' windows do not make one frame grid")
        (self.leading_frames,) = leading
        replacement = {id(window): ExternalStateWindow(window.module, window.span, window.stride, state, skip)
                       for window, (state, skip) in zip(windows, plan)}
        for parent in list(stream.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, StreamingWindow):
                    setattr(parent, name, replacement[id(child)])
        _onnx_runtime_friendly(stream)
        self.stream = stream
        self.windows = [replacement[id(window)] for window in windows]
        self.stateful = [window for window in self.windows if window.state]
        with torch.inference_mode():  # one run with zero states gives every state's shape
            probabilities = self.stream(torch.zeros(1, push_samples))
        if probabilities.shape != (1, push_samples // model.hop):
            raise ExportError(f"a push of {push_samples} samples gave {tuple(probabilities.shape)} frames, "
                              f"expected (1, {push_samples // model.hop})")
        self.state_shapes = [(*window.input_shape, window.state) for window in self.stateful]

    def zero_states(self) -> list[torch.Tensor]:
        return [torch.zeros(shape) for shape in self.state_shapes]

    def forward(self, chunk: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        for window, state in zip(self.stateful, states, strict=True):
            window.incoming = state
        try:
            logits = self.stream(chunk)
            return (torch.sigmoid(logits), *[window.outgoing for window in self.stateful])
        finally:
            for window in self.stateful:
                window.incoming = window.outgoing = None


def stream_metadata(model: Detector, info: Mapping[str, Any], graph: StatefulStreamGraph) -> dict[str, Any]:
    """``metadata`` plus what a stream runner needs: push size, leading frames, state names and shapes."""
    names = [STATE_INPUT.format(index) for index in range(len(graph.state_shapes))]
    return {
        **metadata(model, info),
        "kind": STREAM_KIND,
        "push_samples": graph.push_samples,
        "push_ms": 1000 * graph.push_samples / model.sample_rate,
        "leading_frames": graph.leading_frames,
        "states": [[name, list(shape)] for name, shape in zip(names, graph.state_shapes)],
        "windows": [[w.span, w.stride, w.state, w.skip] for w in graph.windows],
        "input": f"{STREAM_INPUT}: float32 [1, push_samples], the next push; state_i: each window's input tail "
                 "(zeros at the start of a stream)",
        "output": f"{OUTPUT_NAME}: float32 [1, push_samples / hop], the frames this push completes (the first "
                  "leading_frames of a stream are made from the zero states: drop them); new_state_i: the next states",
    }


def onnx_stream_bytes(model: Detector, info: Mapping[str, Any], push_samples: int, opset: int = ONNX_OPSET) -> bytes:
    """The serialized stateful streaming graph (see the module docstring), checked with ``onnx.checker``."""
    import onnx

    graph = StatefulStreamGraph(model, push_samples).eval()
    names = [STATE_INPUT.format(index) for index in range(len(graph.state_shapes))]
    outputs = [STATE_OUTPUT.format(index) for index in range(len(graph.state_shapes))]
    example = (0.1 * torch.randn(1, push_samples, generator=torch.Generator().manual_seed(CHECK_SEED)), *graph.zero_states())
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad(), _as_export_error("ONNX stream export failed"):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            example,
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=[STREAM_INPUT, *names],
            output_names=[OUTPUT_NAME, *outputs],
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in stream_metadata(model, info, graph).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    proto.doc_string = ("audioconv keyword detector, stateful stream: (chunk [1, push_samples], states) -> "
                        "(frame probabilities [1, push_samples / hop], new states)")
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _verify_stream(model: Detector, data: bytes) -> None:
    """Raise ``ExportError`` unless the stream, pushed in uneven pieces and flushed, gives the PyTorch frames."""
    reference_model = FrameProbabilities(copy.deepcopy(model).cpu().float().eval())
    runner = onnx_backend.OnnxStatefulStream(data)
    for wave in _check_inputs(model):
        with torch.inference_mode():
            reference = reference_model(wave).numpy()[0]
        signal, pieces, start = wave.numpy()[0], [], 0
        for index in range(signal.size):
            if start >= signal.size:
                break
            size = STREAM_CHECK_PUSHES[index % len(STREAM_CHECK_PUSHES)]
            pieces.append(runner.push(signal[start : start + size]))
            start += size
        pieces.append(runner.flush())
        got = np.concatenate(pieces)
        runner.reset()
        if got.shape != reference.shape:
            raise ExportError(f"ONNX stream export: {signal.size} samples gave {got.size} frames, "
                              f"PyTorch gives {reference.size}")
        error = float(np.max(np.abs(got - reference))) if got.size else 0.0
        if not error <= CHECK_TOLERANCE:
            raise ExportError(f"ONNX stream export: differs from PyTorch by {error:.2e} (> {CHECK_TOLERANCE:.0e})")


def export_onnx_stream(model: Detector, info: Mapping[str, Any], out: str | os.PathLike,
                       push_ms: float = DEFAULT_PUSH_MS, opset: int = ONNX_OPSET) -> Path:
    """Write ``out`` (``<name>.stream.onnx``), a stateful streaming graph for pushes of ``push_ms``, once checked."""
    data = onnx_stream_bytes(model, info, push_samples_for(model, push_ms), opset)
    _verify_stream(model, data)
    out = Path(out)
    write_atomically(out, lambda tmp: Path(tmp).write_bytes(data))
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
    write_atomically(out, lambda tmp: _quietly(torch.jit.save, traced, tmp, _extra_files=extra))
    return out


def _quietly(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``function`` with warnings silenced (torch.jit's deprecation notices)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def export(model: Detector, info: Mapping[str, Any], out: str | os.PathLike, format: str,
           push_ms: float = DEFAULT_PUSH_MS) -> Path:
    """Export ``model`` (with its ``info`` from ``checkpoints.load_detector``) as ``format`` to ``out``.

    ``push_ms`` is the push size of an ``onnx-stream`` export (a whole number of hops).
    """
    if format == "onnx":
        return export_onnx(model, info, out)
    if format == "onnx-stream":
        return export_onnx_stream(model, info, out, push_ms)
    if format == "torchscript":
        return export_torchscript(model, info, out)
    raise ValueError(f"unknown export format {format!r}; expected one of {', '.join(FORMATS)}")


def load_torchscript(path: str | os.PathLike) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """A TorchScript export and its metadata (``torch.jit.load`` plus the ``audioconv.json`` extra file)."""
    extra = {TORCHSCRIPT_METADATA_FILE: ""}
    module = _quietly(torch.jit.load, str(path), map_location="cpu", _extra_files=extra)
    return module.eval(), json.loads(extra[TORCHSCRIPT_METADATA_FILE] or "{}")
