"""Run an exported detector (``audioconv.export``, ONNX) with onnxruntime and numpy only.

``OnnxDetector`` has the geometry of a PyTorch ``Detector`` (``hop``,
``receptive_field``, ``sample_rate``, ``output_length``) read from the file's
metadata, its detection defaults in ``info``, and ``scores(wave)``: the
chunked scan of ``audioconv.scan.scan_chunked`` (chunks overlapping by
``receptive_field - hop``, so memory stays bounded and the frames equal a
whole-file pass). ``OnnxStreamingScanner`` scores a live signal pushed in
pieces, with the same frames, by re-running one receptive field per push.
``OnnxStatefulStream`` runs a stateful streaming export (``<name>.stream.onnx``,
``audioconv.export``: each window layer's input tail is a state tensor the
graph takes and returns), so a push computes only the frames it completes;
``stream_file`` says where it lies beside an export. With ``audioconv.detect`` and ``audioconv.audio``
it detects keywords without torch, torchaudio, librosa or lightning installed:
this module must import none of them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from audioconv.registry import DEFAULT_CHUNK_SECONDS, EXPORT_FORMAT, STREAM_CHUNK_SECONDS
REQUIRED_KEYS = ("sample_rate", "hop", "receptive_field", "time_layers")
STREAM_KEYS = ("push_samples", "leading_frames", "states")
SETTING_KEYS = ("threshold", "smoothing_frames", "refractory_seconds")
STREAM_KIND = "stateful-stream"  # metadata "kind" of a stateful streaming export
STREAM_SUFFIX = ".stream.onnx"  # <name>.stream.onnx lies beside <name>.onnx
STREAM_THREADS = 1  # a push is ~100 small nodes: a second thread only adds hand-offs


class OnnxModelError(ValueError):
    """A file that is not a usable ONNX detector export. The message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")


def _first_line(error: BaseException, limit: int = 200) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:limit]


def stream_file(onnx_path: str | os.PathLike) -> Path:
    """The stateful streaming export that goes with ``<name>.onnx``: ``<name>.stream.onnx`` beside it."""
    path = Path(onnx_path)
    name = path.name[: -len(".onnx")] if path.name.lower().endswith(".onnx") else path.name
    return path.with_name(name + STREAM_SUFFIX)


def _session(source: str | os.PathLike | bytes, threads: int | None, single_threaded: bool = False) -> Any:
    """An onnxruntime CPU session of a file or of serialized bytes; ``OnnxModelError`` for a bad file."""
    import onnxruntime

    label = "<bytes>" if isinstance(source, bytes) else source
    if not isinstance(source, bytes):
        path = Path(source)
        if not path.is_file():
            raise OnnxModelError(source, "no such file" if not path.exists() else "not a file")
        source = str(path)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: warnings would clutter stderr
    if threads is not None:
        options.intra_op_num_threads = threads
    if single_threaded:
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    try:
        return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types for every kind of bad file
        raise OnnxModelError(label, f"not a readable ONNX model ({_first_line(error)})") from None


def _read_metadata(session: Any, path: str | os.PathLike, required: tuple[str, ...] = REQUIRED_KEYS) -> dict[str, Any]:
    """The export's metadata (JSON values), refusing files that are not audioconv exports or lack ``required``."""
    raw = session.get_modelmeta().custom_metadata_map
    if raw.get("format") != json.dumps(EXPORT_FORMAT):
        raise OnnxModelError(path, "not an audioconv export (no audioconv metadata in the ONNX model)")
    try:
        values = {key: json.loads(value) for key, value in raw.items()}
    except json.JSONDecodeError as error:
        raise OnnxModelError(path, f"unreadable metadata ({error})") from None
    missing = [key for key in required if key not in values]
    if missing:
        raise OnnxModelError(path, f"metadata lacks {', '.join(missing)}")
    return values


def _geometry(metadata: dict[str, Any], path: str | os.PathLike) -> tuple[int, int, int, list[tuple[int, int]]]:
    """(sample_rate, hop, receptive_field, time_layers) from an export's metadata, checked."""
    try:
        sample_rate, hop, receptive_field = (int(metadata[key]) for key in ("sample_rate", "hop", "receptive_field"))
        time_layers = [(int(span), int(stride)) for span, stride in metadata["time_layers"]]
    except (TypeError, ValueError) as error:
        raise OnnxModelError(path, f"metadata gives no usable geometry ({_first_line(error)})") from None
    layers_ok = time_layers and all(span >= 1 and stride >= 1 for span, stride in time_layers)
    if min(sample_rate, hop, receptive_field) < 1 or not layers_ok:
        raise OnnxModelError(path, "metadata gives an impossible geometry")
    return sample_rate, hop, receptive_field, time_layers


class OnnxDetector:
    """An ONNX export as a detector: wave (1-D, mono at ``sample_rate``) -> frame probabilities."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.path = Path(path)
        self.threads = threads
        self.session = _session(self.path, threads)
        self.metadata = _read_metadata(self.session, self.path)
        if self.metadata.get("kind") == STREAM_KIND:
            raise OnnxModelError(path, "a stateful streaming export (.stream.onnx) streams only: load the "
                                 "whole-signal export beside it (.onnx), whose stream() uses this file")
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0].shape) != 2:
            raise OnnxModelError(path, "not a detector export (expected one input [batch, samples] and one output)")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self.sample_rate, self.hop, self.receptive_field, self.time_layers = _geometry(self.metadata, path)
        self.info: dict[str, Any] = {key: self.metadata[key] for key in SETTING_KEYS if key in self.metadata}
        self.info["model_config"] = self.metadata.get("model_config", {})

    def output_length(self, num_samples: int) -> int:
        """Frames produced from ``num_samples`` input samples (0 if too short), as ``geometry.output_length``."""
        length = num_samples
        for span, stride in self.time_layers:
            if length < span:
                return 0
            length = (length - span) // stride + 1
        return length

    def frames_per_chunk(self, chunk_seconds: float) -> int:
        """Frames one chunk of about ``chunk_seconds`` yields (at least one)."""
        if not chunk_seconds > 0:
            raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
        chunk_samples = int(round(chunk_seconds * self.sample_rate))
        return max(1, (chunk_samples - self.receptive_field) // self.hop + 1)

    def probabilities(self, span: np.ndarray) -> np.ndarray:
        """One forward pass: 1-D span -> its frame probabilities (1-D float32)."""
        batch = np.ascontiguousarray(span, dtype=np.float32)[None, :]
        try:
            output = self.session.run([self.output_name], {self.input_name: batch})[0]
        except Exception as error:  # noqa: BLE001 - onnxruntime's own types: the graph does not run on this input
            raise OnnxModelError(self.path, f"inference failed ({_first_line(error)})") from None
        if output.ndim != 2 or output.shape[0] != 1:
            raise OnnxModelError(self.path, f"output has shape {output.shape}, expected [1, frames]")
        return np.asarray(output[0], dtype=np.float32)

    def scores(self, wave: np.ndarray, chunk_seconds: float | None = None) -> np.ndarray:
        """Frame probabilities of a 1-D signal, scanned in chunks overlapping by ``receptive_field - hop``.

        Chunk ``k`` starts at a multiple of the hop, so its frames are exactly
        frames ``k * n ..`` of a whole-file pass (see ``audioconv.scan``).
        """
        wave = np.asarray(wave)
        if wave.ndim != 1:
            raise ValueError(f"expected a 1-D signal, got shape {wave.shape}")
        total = self.output_length(wave.size)
        scores = np.empty(total, dtype=np.float32)
        per_chunk = self.frames_per_chunk(DEFAULT_CHUNK_SECONDS if chunk_seconds is None else chunk_seconds)
        for first in range(0, total, per_chunk):
            count = min(per_chunk, total - first)
            span = wave[first * self.hop : (first + count - 1) * self.hop + self.receptive_field]
            probabilities = self.probabilities(span)
            if probabilities.size != count:
                raise OnnxModelError(self.path, f"a chunk gave {probabilities.size} frames, the metadata says {count}")
            scores[first : first + count] = probabilities
        return scores

    def __repr__(self) -> str:
        return f"OnnxDetector({str(self.path)!r}, hop={self.hop}, receptive_field={self.receptive_field})"


class OnnxStreamingScanner:
    """Scores a live signal pushed in pieces of any size with an ONNX export, as ``OnnxDetector.scores`` would.

    Between pushes it keeps only the samples later frames still need: the last
    ``receptive_field - hop`` samples of context plus any that do not yet
    complete a frame. Each push runs the session over the span that completes
    whole frames, starting on the hop grid, so the frames are those of a
    whole-signal pass. A large push is run ``chunk_seconds`` at a time.
    (The interface of ``audioconv.scan.StreamingScanner``, without torch.)
    """

    def __init__(self, detector: OnnxDetector, chunk_seconds: float = STREAM_CHUNK_SECONDS) -> None:
        self.detector = detector
        self.hop, self.receptive_field = detector.hop, detector.receptive_field
        self._frames_per_run = detector.frames_per_chunk(chunk_seconds)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next push starts a new signal at frame 0."""
        self._pending = np.zeros(0, dtype=np.float32)
        self.frames_emitted = 0  # index of the next frame push() will return

    @property
    def pending_samples(self) -> int:
        """Samples held back: context for the next frames plus those not yet completing one."""
        return self._pending.size

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Append ``samples`` (1-D) and return the probabilities of the frames they complete (maybe none)."""
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise ValueError(f"expected a 1-D signal, got shape {samples.shape}")
        signal = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        total = self.detector.output_length(signal.size)
        scores = np.empty(total, dtype=np.float32)
        for first in range(0, total, self._frames_per_run):
            count = min(self._frames_per_run, total - first)
            probabilities = self.detector.probabilities(
                signal[first * self.hop : (first + count - 1) * self.hop + self.receptive_field]
            )
            if probabilities.size != count:
                raise OnnxModelError(self.detector.path, f"a chunk gave {probabilities.size} frames, the metadata says {count}")
            scores[first : first + count] = probabilities
        self._pending = signal[total * self.hop :].copy()  # a copy: the pushed array is not held on to
        self.frames_emitted += total
        return scores


class OnnxStatefulStream:
    """Scores a live signal with a stateful streaming export: each push computes only the frames it completes.

    The graph (``audioconv.export``, ``<name>.stream.onnx``) takes one block of
    ``push_samples`` samples and every window layer's input tail (its state),
    and returns the block's frame probabilities and the new states. ``push``
    takes any number of samples: it runs every block they complete and keeps
    the rest for the next push, so a frame comes out with the push that
    completes its block (at most ``push_samples - 1`` samples after its last
    sample; with pushes of exactly ``push_samples`` samples, with the push that
    delivers it). ``flush()`` returns the frames the held-back samples already
    complete (a zero-padded run on a copy of the state: the graph is causal,
    so the padding cannot change them), e.g. at the end of a stream.

    The first ``leading_frames`` outputs of a stream are made from the zero
    start states and dropped; frame ``i`` returned covers samples
    ``[i * hop, i * hop + receptive_field)`` of the stream and equals frame
    ``i`` of a whole-signal scan (to float32 rounding). The interface of
    ``OnnxStreamingScanner``: ``push``, ``reset``, ``frames_emitted``,
    ``pending_samples``. ``source``: a path or the serialized model.
    """

    def __init__(self, source: str | os.PathLike | bytes, threads: int | None = STREAM_THREADS) -> None:
        self.path = "<bytes>" if isinstance(source, bytes) else Path(source)
        self.session = _session(source, threads, single_threaded=threads == 1)
        self.metadata = _read_metadata(self.session, self.path)
        if self.metadata.get("kind") != STREAM_KIND:
            raise OnnxModelError(self.path, "not a stateful streaming export (make one with audioconv-export "
                                 "--format onnx-stream)")
        missing = [key for key in STREAM_KEYS if key not in self.metadata]
        if missing:
            raise OnnxModelError(self.path, f"metadata lacks {', '.join(missing)}")
        self.sample_rate, self.hop, self.receptive_field, self.time_layers = _geometry(self.metadata, self.path)
        try:
            self.push_samples = int(self.metadata["push_samples"])
            self.leading_frames = int(self.metadata["leading_frames"])
            states = [(str(name), tuple(int(size) for size in shape)) for name, shape in self.metadata["states"]]
        except (TypeError, ValueError) as error:
            raise OnnxModelError(self.path, f"metadata gives no usable stream geometry ({_first_line(error)})") from None
        if self.push_samples < self.hop or self.push_samples % self.hop or self.leading_frames < 0:
            raise OnnxModelError(self.path, "metadata gives an impossible stream geometry")
        self.frames_per_push = self.push_samples // self.hop
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        expected = [(inputs[0].name if inputs else None, (1, self.push_samples)), *states]
        found = [(node.name, tuple(node.shape)) for node in inputs]
        if found != expected or len(outputs) != len(inputs):
            raise OnnxModelError(self.path, f"inputs {found} do not match the metadata's {expected}")
        self._input_names = [name for name, _ in expected]
        self._state_shapes = [shape for _, shape in states]
        self._block = np.zeros((1, self.push_samples), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next push starts a new signal at frame 0."""
        self._states = [np.zeros(shape, dtype=np.float32) for shape in self._state_shapes]
        self._held = 0  # samples of the next block already in self._block
        self._blocks = 0  # blocks run so far
        self.frames_emitted = 0  # index of the next frame push() will return
        self.samples_pushed = 0

    @property
    def pending_samples(self) -> int:
        """Samples held back until they complete a block."""
        return self._held

    def frame_span(self, index: int) -> tuple[float, float]:
        """Stream time (seconds) of the audio frame ``index`` saw: ``[index * hop, index * hop + receptive_field)``."""
        start = index * self.hop
        return start / self.sample_rate, (start + self.receptive_field) / self.sample_rate

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Append ``samples`` (1-D) and return the probabilities of the frames of every block they complete."""
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise ValueError(f"expected a 1-D signal, got shape {samples.shape}")
        samples = samples.astype(np.float32, copy=False)
        size, block, position, results = samples.size, self.push_samples, 0, []
        if self._held:
            position = min(block - self._held, size)
            self._block[0, self._held : self._held + position] = samples[:position]
            self._held += position
            if self._held == block:
                results.append(self._commit(self._block))
                self._held = 0
        while size - position >= block:
            results.append(self._commit(np.ascontiguousarray(samples[None, position : position + block])))
            position += block
        if position < size:
            self._block[0, : size - position] = samples[position:]
            self._held = size - position
        self.samples_pushed += size
        results = [r for r in results if r.size]
        if not results:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(results) if len(results) > 1 else results[0]

    def flush(self) -> np.ndarray:
        """The frames the held-back samples complete (not returned before); the stream can go on after it."""
        if not self._held:
            return np.zeros(0, dtype=np.float32)
        padded = np.zeros_like(self._block)
        padded[0, : self._held] = self._block[0, : self._held]
        probabilities, _ = self._run(padded)
        complete = (self.samples_pushed - self.receptive_field) // self.hop + 1  # frames the samples so far complete
        return self._take(probabilities, self._blocks * self.frames_per_push - self.leading_frames, complete)

    def _run(self, block: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        feed = dict(zip(self._input_names, [block, *self._states]))
        try:
            probabilities, *states = self.session.run(None, feed)
        except Exception as error:  # noqa: BLE001 - onnxruntime's own types: the graph does not run
            raise OnnxModelError(self.path, f"inference failed ({_first_line(error)})") from None
        return probabilities[0], states

    def _commit(self, block: np.ndarray) -> np.ndarray:
        probabilities, self._states = self._run(block)
        first = self._blocks * self.frames_per_push - self.leading_frames  # stream frame of the block's first output
        self._blocks += 1
        return self._take(probabilities, first, None)

    def _take(self, probabilities: np.ndarray, first: int, end: int | None) -> np.ndarray:
        """Frames ``first ..`` of a run, from the next one to return up to (not including) frame ``end``."""
        low = max(self.frames_emitted - first, 0)
        high = probabilities.size if end is None else min(probabilities.size, end - first)
        if high <= low:
            return np.zeros(0, dtype=np.float32)
        self.frames_emitted = first + high
        return np.asarray(probabilities[low:high], dtype=np.float32)

    def __repr__(self) -> str:
        return (f"OnnxStatefulStream({str(self.path)!r}, push_samples={self.push_samples}, "
                f"leading_frames={self.leading_frames})")


PROBE_SECONDS = 1.5  # the signal a stream export is checked on against the whole-signal export it sits beside
PROBE_TOLERANCE = 1e-4
MATCHING_KEYS = ("sample_rate", "hop", "receptive_field", "time_layers", *SETTING_KEYS, "model_config")


def _probe(sample_rate: int) -> np.ndarray:
    """A fixed test signal that keeps the scores moving: tone bursts at three pitches in noise (seeded)."""
    t = np.arange(int(PROBE_SECONDS * sample_rate)) / sample_rate
    bursts = ((220, 1.3), (700, 2.1), (1900, 3.7))  # (pitch, on/off rate) in Hz
    tones = sum(np.sin(2 * np.pi * pitch * t) * (np.sin(2 * np.pi * rate * t) > 0) for pitch, rate in bursts)
    noise = np.random.default_rng(0).standard_normal(t.size)
    return (0.1 * tones + 0.05 * noise).astype(np.float32)


def stateful_stream_for(detector: OnnxDetector) -> tuple[OnnxStatefulStream | None, str | None]:
    """The stateful stream export beside ``detector``'s file, checked to match it, and None; or None and why not.

    The reason is None when there is no such file (nothing to report). Its
    metadata must give the same geometry, detection settings and model config,
    and it must give ``detector``'s frames (to 1e-4) on a fixed probe signal:
    a stale ``.stream.onnx`` left beside a re-exported ``.onnx`` is refused,
    not run.
    """
    path = stream_file(detector.path)
    if path == detector.path or not path.is_file():
        return None, None
    try:
        stream = OnnxStatefulStream(path, threads=detector.threads if detector.threads is not None else STREAM_THREADS)
    except OnnxModelError as error:
        return None, str(error)
    differ = [key for key in MATCHING_KEYS if stream.metadata.get(key) != detector.metadata.get(key)]
    if differ:
        return None, f"{path}: its {', '.join(differ)} differ from {detector.path.name}'s"
    probe = _probe(detector.sample_rate)
    try:
        expected = detector.probabilities(probe)
        got = np.concatenate([stream.push(probe), stream.flush()])
    except OnnxModelError as error:
        return None, str(error)
    stream.reset()
    if got.shape != expected.shape or not np.max(np.abs(got - expected), initial=0.0) <= PROBE_TOLERANCE:
        return None, f"{path}: its frames differ from {detector.path.name}'s (made from other weights?)"
    return stream, None
