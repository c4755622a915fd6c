"""Run an exported detector (``audioconv.export``, ONNX) with onnxruntime and numpy only.

``OnnxDetector`` has the geometry of a PyTorch ``Detector`` (``hop``,
``receptive_field``, ``sample_rate``, ``output_length``) read from the file's
metadata, its detection defaults in ``info``, and ``scores(wave)``: the
chunked scan of ``audioconv.scan.scan_chunked`` (chunks overlapping by
``receptive_field - hop``, so memory stays bounded and the frames equal a
whole-file pass). ``OnnxStreamingScanner`` scores a live signal pushed in
pieces, with the same frames. With ``audioconv.detect`` and ``audioconv.audio``
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
SETTING_KEYS = ("threshold", "smoothing_frames", "refractory_seconds")


class OnnxModelError(ValueError):
    """A file that is not a usable ONNX detector export. The message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")


def _first_line(error: BaseException, limit: int = 200) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:limit]


class OnnxDetector:
    """An ONNX export as a detector: wave (1-D, mono at ``sample_rate``) -> frame probabilities."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        import onnxruntime

        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxModelError(path, "no such file" if not self.path.exists() else "not a file")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: warnings would clutter stderr
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types for every kind of bad file
            raise OnnxModelError(path, f"not a readable ONNX model ({_first_line(error)})") from None
        self.metadata = self._read_metadata()
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0].shape) != 2:
            raise OnnxModelError(path, "not a detector export (expected one input [batch, samples] and one output)")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        try:
            self.sample_rate = int(self.metadata["sample_rate"])
            self.hop = int(self.metadata["hop"])
            self.receptive_field = int(self.metadata["receptive_field"])
            self.time_layers = [(int(span), int(stride)) for span, stride in self.metadata["time_layers"]]
        except (TypeError, ValueError) as error:
            raise OnnxModelError(path, f"metadata gives no usable geometry ({_first_line(error)})") from None
        layers_ok = self.time_layers and all(span >= 1 and stride >= 1 for span, stride in self.time_layers)
        if min(self.sample_rate, self.hop, self.receptive_field) < 1 or not layers_ok:
            raise OnnxModelError(path, "metadata gives an impossible geometry")
        self.info: dict[str, Any] = {key: self.metadata[key] for key in SETTING_KEYS if key in self.metadata}
        self.info["model_config"] = self.metadata.get("model_config", {})

    def _read_metadata(self) -> dict[str, Any]:
        raw = self.session.get_modelmeta().custom_metadata_map
        if raw.get("format") != json.dumps(EXPORT_FORMAT):
            raise OnnxModelError(self.path, "not an audioconv export (no audioconv metadata in the ONNX model)")
        try:
            values = {key: json.loads(value) for key, value in raw.items()}
        except json.JSONDecodeError as error:
            raise OnnxModelError(self.path, f"unreadable metadata ({error})") from None
        missing = [key for key in REQUIRED_KEYS if key not in values]
        if missing:
            raise OnnxModelError(self.path, f"metadata lacks {', '.join(missing)}")
        return values

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
