"""Score a recording with a detector: naive, whole-file, chunked and streaming scans.

Frame ``i`` of a detector depends on input samples ``[i * hop, i * hop +
receptive_field)`` and on nothing else (``audioconv.geometry``). So the four
scans below compute the same numbers and differ only in how they share work
and how much memory they hold:

- ``scan_naive``: the detector re-run on every window, one per hop. The slow
  reference that the identity "a scanned detector is a CNN" is tested against.
- ``scan_whole``: one forward pass; every layer's work is shared between
  neighbouring windows. Memory grows with the file.
- ``scan_chunked``: the whole-file pass cut into chunks that overlap by
  ``receptive_field - hop`` samples, so no frame is lost or repeated and the
  activations stay bounded however long the file is.
- ``StreamingScanner``: the chunked scan fed by a live source, chunk sizes
  chosen by the caller. It re-runs one receptive field per push: the simple
  reference. For live use, ``audioconv.streaming.StatefulScanner`` gives the
  same frames computing only the new ones at every layer
  (``benchmarks/stream_speed.py`` compares the two).

All of them return frame probabilities (sigmoid of the logits) as 1-D float32
numpy arrays. Scans run in eval mode: a BatchNorm in training mode would
normalize with the statistics of whatever span it is given, and the scores
would then depend on how the signal was cut.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch

from audioconv.models import Detector

DEFAULT_CHUNK_SECONDS = 60.0  # ~15 MB of first-layer activations for the shipped detectors
NAIVE_BATCH_WINDOWS = 64  # windows per forward pass in the naive scan: batching, not sharing
STREAM_CHUNK_SECONDS = 10.0  # most audio a streaming scanner holds and runs the model over at once


@contextlib.contextmanager
def _scanning(model: Detector) -> Iterator[None]:
    """Eval mode and no autograd for the duration of a scan; the caller's mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _model_dtype_device(model: Detector) -> tuple[torch.dtype, torch.device]:
    parameter = next(model.parameters(), None)
    if parameter is None:
        return torch.float32, torch.device("cpu")
    return parameter.dtype, parameter.device


def _as_wave(wave: np.ndarray | torch.Tensor) -> np.ndarray:
    """A 1-D numpy view of the signal (no copy when it already is one)."""
    if isinstance(wave, torch.Tensor):
        wave = wave.detach().cpu().numpy()
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {wave.shape}")
    return wave


def _probabilities(model: Detector, span: np.ndarray | torch.Tensor) -> np.ndarray:
    """Frame probabilities for one span (1-D) or a batch of windows (2-D). Call inside ``_scanning``."""
    dtype, device = _model_dtype_device(model)
    if isinstance(span, np.ndarray) and not span.flags.writeable:
        span = span.copy()  # torch will not share read-only memory (memmaps, window views); one chunk is cheap
    batch = torch.as_tensor(span).to(device=device, dtype=dtype)  # a view when dtype and device already match
    if batch.ndim == 1:
        batch = batch.unsqueeze(0)
    logits = model(batch)
    return torch.sigmoid(logits).to(device="cpu", dtype=torch.float32).numpy()


def scan_naive(model: Detector, wave: np.ndarray | torch.Tensor, hop: int | None = None) -> np.ndarray:
    """Reference scan: the detector run separately on each ``receptive_field`` window, one per ``hop``.

    Every window is its own model input (windows are batched only to save
    Python overhead), so nothing is shared between neighbouring windows. With
    the default ``hop = model.hop`` it must equal every other scan here.
    """
    wave = _as_wave(wave)
    rf = model.receptive_field
    hop = model.hop if hop is None else hop
    if hop < 1:
        raise ValueError(f"hop must be at least 1 sample, got {hop}")
    if wave.size < rf:
        return np.zeros(0, dtype=np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(wave, rf)[::hop]  # a view: [frames, rf]
    scores = []
    with _scanning(model):
        for first in range(0, len(windows), NAIVE_BATCH_WINDOWS):
            batch = np.ascontiguousarray(windows[first : first + NAIVE_BATCH_WINDOWS])
            probabilities = _probabilities(model, batch)
            if probabilities.shape[-1] != 1:
                raise RuntimeError(f"a window of {rf} samples gave {probabilities.shape[-1]} frames, expected 1")
            scores.append(probabilities[:, 0])
    return np.concatenate(scores).astype(np.float32, copy=False)


def scan_whole(model: Detector, wave: np.ndarray | torch.Tensor) -> np.ndarray:
    """One forward pass over the whole signal: all work shared, memory proportional to the file."""
    wave = _as_wave(wave)
    if wave.size < model.receptive_field:
        return np.zeros(0, dtype=np.float32)
    with _scanning(model):
        return _probabilities(model, wave)[0]


def frames_per_chunk(model: Detector, chunk_seconds: float) -> int:
    """Frames one chunk of about ``chunk_seconds`` yields (at least one, however short the chunk)."""
    if not chunk_seconds > 0:
        raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
    chunk_samples = int(round(chunk_seconds * model.sample_rate))
    return max(1, (chunk_samples - model.receptive_field) // model.hop + 1)


def scan_chunked(
    model: Detector, wave: np.ndarray | torch.Tensor, chunk_seconds: float = DEFAULT_CHUNK_SECONDS
) -> np.ndarray:
    """The whole-file scan in bounded memory: chunks overlapping by ``receptive_field - hop``.

    A chunk that starts at a multiple of the hop lines up with the whole-file
    frame grid at every layer, so chunk ``k``'s frames are exactly frames
    ``k * n .. k * n + n - 1`` of the whole scan. Chunks are views of ``wave``
    (converted one chunk at a time if its dtype differs from the model's), so
    the signal is never copied as a whole.
    """
    wave = _as_wave(wave)
    rf, hop = model.receptive_field, model.hop
    total = model.output_length(wave.size)
    scores = np.empty(total, dtype=np.float32)
    per_chunk = frames_per_chunk(model, chunk_seconds)
    with _scanning(model):
        for first in range(0, total, per_chunk):
            count = min(per_chunk, total - first)
            span = wave[first * hop : (first + count - 1) * hop + rf]
            probabilities = _probabilities(model, span)[0]
            if probabilities.size != count:
                raise RuntimeError(f"chunk gave {probabilities.size} frames, the geometry says {count}")
            scores[first : first + count] = probabilities
    return scores


class StreamingScanner:
    """Scores a live signal pushed in chunks of any size, exactly as ``scan_whole`` would.

    The scanner holds at most ``receptive_field - hop`` samples of context plus
    the samples that do not yet complete a frame. Each push appends to that
    buffer and runs the detector over the span that completes whole frames;
    a large push is processed ``STREAM_CHUNK_SECONDS`` at a time, so memory
    stays bounded whatever the caller sends. (Recomputing the context for each
    push costs time, not exactness; ``audioconv.streaming.StatefulScanner``,
    which keeps each layer's input tail instead, avoids it.)
    """

    def __init__(self, model: Detector, chunk_seconds: float = STREAM_CHUNK_SECONDS) -> None:
        self.model = model
        self.hop, self.receptive_field = model.hop, model.receptive_field
        self._frames_per_run = frames_per_chunk(model, chunk_seconds)
        capacity = self.receptive_field + (self._frames_per_run - 1) * self.hop
        self._buffer = np.zeros(capacity, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next push starts a new signal at frame 0."""
        self._length = 0
        self.frames_emitted = 0  # index of the next frame push() will return

    @property
    def pending_samples(self) -> int:
        """Samples held back: context for the next frames plus those not yet completing one."""
        return self._length

    def push(self, samples: np.ndarray | torch.Tensor) -> np.ndarray:
        """Append ``samples`` (1-D) and return the probabilities of the frames they complete (maybe none)."""
        samples = _as_wave(samples)
        capacity = self._buffer.size
        results: list[np.ndarray] = []
        position = 0
        while position < samples.size:
            take = min(capacity - self._length, samples.size - position)
            self._buffer[self._length : self._length + take] = samples[position : position + take]
            self._length += take
            position += take
            if self._length == capacity or position == samples.size:
                results.append(self._run())
        if not results:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(results) if len(results) > 1 else results[0]

    def _run(self) -> np.ndarray:
        """Score the frames the buffer completes, then keep only the tail the next frames need."""
        count = self.model.output_length(self._length)
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        with _scanning(self.model):
            probabilities = _probabilities(self.model, self._buffer[: (count - 1) * self.hop + self.receptive_field])[0]
        consumed = count * self.hop
        remaining = self._length - consumed
        self._buffer[:remaining] = self._buffer[consumed : self._length]  # numpy handles the overlap
        self._length = remaining
        self.frames_emitted += count
        return probabilities
