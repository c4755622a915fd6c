"""Stateful streaming: each time layer keeps the input frames its next outputs need.

``scan.StreamingScanner`` re-runs one whole receptive field (~0.95 s) per push
to emit a few 20 ms frames. This module does what google-research's
kws_streaming and microWakeWord do instead: every layer that looks along time
(a convolution, a pooling, the spectrogram's framing, a residual block) is
wrapped in a ``StreamingWindow`` that remembers the tail of its input, so a
push computes only the frames it completes, at every layer.

Why this is exact and general:

- A window layer with span ``k`` (= (kernel - 1) * dilation + 1) and stride
  ``s``, unpadded in time, makes output ``j`` from inputs ``[j * s, j * s + k)``
  and nothing else (``audioconv.geometry``). So the wrapper keeps the inputs
  from the start of its next output on (``k - 1`` frames for a stride-1 layer,
  plus the phase of a strided one), runs the *unchanged* module on that tail
  followed by the new frames, and hands on exactly the outputs they complete.
- Everything between window layers acts on each frame alone at inference
  (BatchNorm in eval mode, ReLU, log, 1x1 convolutions, the mel matrix,
  flattening frequency into channels), so it can run on however many new
  frames arrive. The model's own ``forward`` therefore runs as it is, on a copy
  whose window layers carry state: no per-model streaming code.
- When a layer has no complete output yet, nothing after it can change: it
  raises ``NoNewFrames`` and the push ends there (a 1x1 convolution would
  refuse an empty time axis anyway).

The window layers are found by walking the model's submodules in registration
order: a module that declares ``time_layers`` (a spectrogram front end, a
``TemporalBlock`` with its residual crop, a ``Conv2dBlock``) is wrapped whole;
any other convolution or pooling with a kernel or stride along time (the last
axis) is wrapped by itself; an ensemble's member detectors are walked into, one
after the other (``Detector.branches``). The walk must find the very layers the
model lists in ``time_layers`` (of each branch in turn), in order, or ``streaming_copy`` refuses the model:
a time operation hidden in ``forward`` (a functional pooling, a padded
convolution) would otherwise make the stream silently wrong.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from audioconv import geometry
from audioconv.fast_layers import speed_up_for_few_frames
from audioconv.geometry import TimeLayer
from audioconv.models import Detector
from audioconv.models.base import NoNewFrames  # raised here; Ensemble.forward lets every member take the push first
from audioconv.scan import STREAM_CHUNK_SECONDS, _as_wave, _model_dtype_device

PUSH_THREADS = 1  # a push is a few hundred µs of tiny ops: OpenMP hand-offs cost more than they save
WINDOW_MODULES = (nn.Conv1d, nn.Conv2d, nn.AvgPool1d, nn.AvgPool2d, nn.MaxPool1d, nn.MaxPool2d)


def _along_time(value: int | tuple[int, ...] | str) -> int | str:
    """The time (last-axis) entry of a conv/pool size argument, which may be an int, a tuple or a string."""
    if isinstance(value, (tuple, list)):
        return value[-1]
    return value


def _single_layer(module: nn.Module) -> TimeLayer | None:
    """The ``TimeLayer`` of a plain convolution or pooling, or None when it acts on each frame alone."""
    if not isinstance(module, WINDOW_MODULES):
        return None
    padding = _along_time(module.padding)
    if padding not in (0, "valid"):
        raise ValueError(f"{module}: padded along time, so it cannot be streamed (nor scanned exactly)")
    if getattr(module, "ceil_mode", False):
        raise ValueError(f"{module}: ceil_mode makes a partial window at the end of each run")
    kernel = _along_time(module.kernel_size)
    stride = _along_time(module.stride if module.stride is not None else kernel)
    dilation = _along_time(getattr(module, "dilation", 1))
    layer = TimeLayer(type(module).__name__, kernel, stride, dilation)
    return None if layer.span == 1 and layer.stride == 1 else layer


class _Tail:
    """A window's state, kept in a plain object: ``nn.Module.__setattr__`` would cost microseconds per push."""

    __slots__ = ("cache", "skip")

    def __init__(self) -> None:
        self.cache: Tensor | None = None  # input frames from the next output's first one on
        self.skip = 0  # incoming frames that no output will use (a stride longer than the span)


class StreamingWindow(nn.Module):
    """A window layer run on a stream: keeps the input frames its next outputs need, emits only new outputs.

    ``module`` maps input [..., T] to output [..., T'] where output ``j`` is
    made from inputs ``[j * stride, j * stride + span)``. The state is the
    input from the next output's first frame on, and, when the stride is
    longer than the span, how many incoming frames no output will ever use:
    together they keep the phase of the strided grid across pushes.
    """

    def __init__(self, module: nn.Module, span: int, stride: int) -> None:
        super().__init__()
        self.module, self.span, self.stride = module, span, stride
        self.tail = _Tail()

    def reset(self) -> None:
        """Forget the stream: the next input frame is frame 0 of a new signal."""
        self.tail = _Tail()

    def forward(self, x: Tensor) -> Tensor:
        tail = self.tail
        if tail.skip:
            dropped = min(tail.skip, x.shape[-1])
            x, tail.skip = x[..., dropped:], tail.skip - dropped
        if tail.cache is not None:
            x = torch.cat((tail.cache, x), dim=-1)
        length = x.shape[-1]
        count = (length - self.span) // self.stride + 1 if length >= self.span else 0
        consumed = count * self.stride
        if consumed < length:
            tail.cache = x[..., consumed:]  # a view: at most one run's input stays alive
        else:
            tail.cache, tail.skip = None, tail.skip + consumed - length
        if count == 0:
            raise NoNewFrames
        used = (count - 1) * self.stride + self.span
        return self.module(x if used == length else x[..., :used])


def _wrap_windows(parent: nn.Module, found: list[TimeLayer], windows: list[StreamingWindow]) -> None:
    """Replace, in registration order, every window layer under ``parent`` by a ``StreamingWindow``."""
    for name, child in parent.named_children():
        # a block that knows its geometry is one window; a whole detector (an ensemble's member) is walked into
        declared = None if isinstance(child, Detector) else getattr(child, "time_layers", None)
        if declared is not None:  # a block that knows its own geometry: stream it as one window
            layers = list(declared)
            span, stride = geometry.receptive_field(layers), geometry.hop(layers)
        else:
            layer = _single_layer(child)
            if layer is None:
                _wrap_windows(child, found, windows)
                continue
            layers, span, stride = [layer], layer.span, layer.stride
        found.extend(layers)
        window = StreamingWindow(child, span, stride)
        setattr(parent, name, window)
        windows.append(window)


def _geometry_key(layers: list[TimeLayer]) -> list[tuple[int, int, int]]:
    return [(layer.kernel, layer.stride, layer.dilation) for layer in layers]


def streaming_copy(model: Detector, few_frame_layers: bool = True) -> tuple[Detector, list[StreamingWindow]]:
    """An eval-mode copy of ``model`` whose window layers keep state, and those layers in data-flow order.

    The original model is left untouched (its weights are copied, not shared:
    a model trained further afterwards needs a new scanner). With
    ``few_frame_layers`` its convolutions, pools and batch norms are swapped
    for equivalents that are cheap on a few frames (``audioconv.fast_layers``):
    a push feeds each layer only the frames it completes. Raises
    ``ValueError`` when the layers found do not match ``model.time_layers``.
    """
    stream = copy.deepcopy(model).eval()
    for parameter in stream.parameters():
        parameter.requires_grad_(False)
    found: list[TimeLayer] = []
    windows: list[StreamingWindow] = []
    _wrap_windows(stream, found, windows)
    declared = [layer for branch in model.branches for layer in branch.time_layers]
    if _geometry_key(found) != _geometry_key(declared):
        raise ValueError(
            f"{type(model).__name__}: its modules hold the time layers {_geometry_key(found)} but it declares "
            f"{_geometry_key(declared)} (kernel, stride, dilation); a time operation outside a "
            "module, or modules registered out of data-flow order, cannot be streamed"
        )
    if few_frame_layers:
        speed_up_for_few_frames(stream)
    return stream, windows


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run torch on ``threads`` threads inside the block (None: as configured); the setting is restored after."""
    previous = torch.get_num_threads()
    if threads is None or threads == previous:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class StatefulScanner:
    """Scores a live signal pushed in pieces of any size, each push computing only the frames it completes.

    Gives exactly the frames of ``scan.scan_whole`` (to float rounding): frame
    ``i`` covers samples ``[i * hop, i * hop + receptive_field)`` of the stream
    (``frame_span(i)`` in seconds), and ``frames_emitted`` is the index of the
    next frame ``push`` will return: the ``n`` frames a push returns are
    ``frames_emitted - n .. frames_emitted - 1`` after it. A frame is returned
    by the push that delivers its last sample. A push of more than ``chunk_seconds`` is run
    in pieces of that length, so memory stays bounded whatever the caller sends.

    Pushes run on ``threads`` torch threads (default 1; None leaves torch's
    setting alone), restored afterwards. A push is a few hundred microseconds
    of tiny operations: a second thread has nothing to share, and on a busy
    machine each OpenMP hand-off can stall for milliseconds (measured on the
    2-core CI machine: 2 threads averaged 7 ms per 80 ms push, 1 thread 0.5 ms).
    """

    def __init__(
        self,
        model: Detector,
        chunk_seconds: float = STREAM_CHUNK_SECONDS,
        few_frame_layers: bool = True,
        threads: int | None = PUSH_THREADS,
    ) -> None:
        if not chunk_seconds > 0:
            raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
        self.hop, self.receptive_field, self.sample_rate = model.hop, model.receptive_field, model.sample_rate
        self._dtype, self._device = _model_dtype_device(model)  # the copy's layers may hold buffers only
        self._stream, self._windows = streaming_copy(model, few_frame_layers)
        self._piece = max(1, int(round(chunk_seconds * self.sample_rate)))
        self.threads = threads
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next push starts a new signal at frame 0."""
        for window in self._windows:
            window.reset()
        self.frames_emitted = 0  # index of the next frame push() will return
        self.samples_pushed = 0

    def frame_span(self, index: int) -> tuple[float, float]:
        """Stream time (seconds) of the audio frame ``index`` saw: ``[index * hop, index * hop + receptive_field)``."""
        start = index * self.hop
        return start / self.sample_rate, (start + self.receptive_field) / self.sample_rate

    def push(self, samples: np.ndarray | torch.Tensor) -> np.ndarray:
        """Append ``samples`` (1-D) and return the probabilities of the frames they complete (maybe none)."""
        samples = _as_wave(samples)
        with _torch_threads(self.threads):
            results = [self._run(samples[first : first + self._piece]) for first in range(0, samples.size, self._piece)]
        results = [r for r in results if r.size]
        if not results:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(results) if len(results) > 1 else results[0]

    def _run(self, piece: np.ndarray) -> np.ndarray:
        self.samples_pushed += piece.size
        if not piece.flags.writeable:
            piece = piece.copy()  # torch will not share read-only memory
        wave = torch.as_tensor(piece).to(device=self._device, dtype=self._dtype).unsqueeze(0)
        with torch.inference_mode():
            try:
                logits = self._stream(wave)
            except NoNewFrames:
                return np.zeros(0, dtype=np.float32)
        probabilities = torch.sigmoid(logits[0]).to(device="cpu", dtype=torch.float32).numpy()
        self.frames_emitted += probabilities.size
        return probabilities
