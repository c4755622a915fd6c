"""The Python API: load a detector once, then find the keyword in files, arrays or a live stream.

    import audioconv
    det = audioconv.load_detector("spectrogram")      # shipped weights; or a .safetensors / .ckpt / .onnx path
    events = det.detect("meeting.wav")                # [Event(file, start, end, score), ...], seconds
    events = det.detect(samples, sample_rate=44_100)  # a numpy array: any rate, mono or [frames, channels]
    scores = det.scores(samples, sample_rate=44_100)  # per-hop probabilities with their window times
    stream = det.stream()                             # live: push audio as it arrives ...
    events = stream.push(chunk)                       # ... get the events it settles
    events = stream.close()                           # end of stream: the rest

The same ``Detector`` wraps either backend: ``torch`` (the model itself) or
``onnx`` (an export, run by onnxruntime; no torch needed). ``backend="auto"``
takes torch when it is installed, else onnx, so one script runs on a training
machine and on a torch-free install. Detection settings (threshold, smoothing,
refractory period) are the weights' own unless given, at load or per call.
Live detection gives exactly the events of ``detect`` on the same scores
(``audioconv.tracker``). This module imports neither torch nor onnxruntime
until a backend is loaded.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from audioconv import audio, detect, registry
from audioconv.detect import Event
from audioconv.tracker import EventTracker

if TYPE_CHECKING:
    from audioconv.detect import Scorer
    from audioconv.models import Detector as TorchDetector

BACKEND_CHOICES = ("auto", *registry.BACKENDS)
AudioInput = Union[str, os.PathLike, np.ndarray]
TORCH_SUFFIXES = (".safetensors", ".ckpt")


class BackendUnavailable(ImportError):
    """The backend a model needs is not installed; the message says what to install."""


def torch_available() -> bool:
    """Whether the torch backend can be used (torch installed), without importing it."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a broken or deliberately blocked install
        return False


def torch_stream_scanner(model: TorchDetector) -> Any:
    """The torch backend's live scanner (``push(samples) -> new frame probabilities``, ``reset()``).

    The stateful per-layer scanner (``audioconv.streaming``) when the package
    has it, else ``scan.StreamingScanner`` (re-runs one receptive field per
    push; same frames, more work).
    """
    try:
        from audioconv.streaming import StatefulScanner as Scanner
    except ImportError:
        from audioconv.scan import StreamingScanner as Scanner
    return Scanner(model)


@dataclass(frozen=True)
class FrameScores:
    """Per-hop keyword probabilities; frame ``i`` saw the audio from ``start[i]`` to ``end[i]`` (seconds)."""

    probabilities: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return int(self.probabilities.size)


class Stream:
    """Live detection on one signal: ``push`` audio as it arrives, get the events it settles.

    Audio may come at any rate (resampled to the model's as it streams) and
    in pieces of any size. Event times are seconds since the stream began.
    An event comes out once nothing later can change it, about its refractory
    period plus one receptive field (~1 s) after its peak; ``close()`` ends
    the stream and returns the rest.
    """

    def __init__(self, detector: Detector, sample_rate: int | None, settings: dict[str, Any], file: str) -> None:
        self.detector = detector
        self.sample_rate = int(sample_rate or detector.sample_rate)
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self._scanner = detector._stream_scanner()
        self._tracker = EventTracker(
            detector.hop, detector.receptive_field, detector.sample_rate, file=file, **settings
        )
        self._resampler = None
        if self.sample_rate != detector.sample_rate:
            import soxr

            self._resampler = soxr.ResampleStream(self.sample_rate, detector.sample_rate, 1, dtype="float32", quality="HQ")
        self.samples = 0  # samples scanned so far, at the model's rate
        self.frames = 0  # frame probabilities computed so far
        self._closed = False

    @property
    def time(self) -> float:
        """Seconds of audio scanned so far (the stream time)."""
        return self.samples / self.detector.sample_rate

    def push(self, samples: np.ndarray) -> list[Event]:
        """Scan the next samples (1-D, or [frames, channels]; float in [-1, 1] or integer PCM); return settled events."""
        if self._closed:
            raise RuntimeError("the stream is closed: start another with detector.stream()")
        wave = _as_mono_float(samples)
        if self._resampler is not None:
            wave = self._resampler.resample_chunk(wave)
        return self._scan(wave)

    def close(self) -> list[Event]:
        """End of stream: scan what the resampler and the scanner still hold; return every event not yet returned."""
        if self._closed:
            return []
        events = []
        if self._resampler is not None:
            events = self._scan(self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        flush = getattr(self._scanner, "flush", None)  # a block-wise scanner holds back up to one block
        if flush is not None:
            probabilities = flush()
            self.frames += probabilities.size
            events += self._tracker.push(probabilities)
        self._closed = True
        return events + self._tracker.flush(duration=self.time)

    def _scan(self, wave: np.ndarray) -> list[Event]:
        self.samples += wave.size
        probabilities = self._scanner.push(wave) if wave.size else np.zeros(0, dtype=np.float32)
        self.frames += probabilities.size
        return self._tracker.push(probabilities)


class Detector:
    """A loaded keyword detector, either backend: ``detect``, ``scores`` and ``stream``.

    Build one with ``load_detector``. ``settings`` holds the detection
    settings used unless a call overrides them: ``threshold`` (score in
    [0, 1]), ``smoothing_frames`` (odd; 1 = off) and ``refractory_seconds``.
    """

    def __init__(self, scorer: TorchDetector | Scorer, info: dict[str, Any], backend: str, source: Path,
                 settings: dict[str, Any]) -> None:
        self.scorer, self.info, self.backend, self.source = scorer, info, backend, source
        self.settings = settings
        self._stateful_checked, self._stateful_path, self._spare_stream = False, None, None  # onnx live streaming

    @property
    def sample_rate(self) -> int:
        """The rate the model works at (inputs at other rates are resampled)."""
        return int(self.scorer.sample_rate)

    @property
    def hop(self) -> int:
        """Samples between neighbouring frames (20 ms for the shipped models)."""
        return int(self.scorer.hop)

    @property
    def receptive_field(self) -> int:
        """Samples each frame sees (~0.95 s for the shipped models)."""
        return int(self.scorer.receptive_field)

    def scores(self, audio_input: AudioInput, sample_rate: int | None = None) -> FrameScores:
        """Frame probabilities of a file or an array (an array shorter than one receptive field has none)."""
        wave = self._wave(audio_input, sample_rate)
        probabilities = detect.frame_probabilities(self.scorer, wave)
        start = np.arange(probabilities.size) * (self.hop / self.sample_rate)
        return FrameScores(probabilities, start, start + self.receptive_field / self.sample_rate)

    def detect(self, audio_input: AudioInput, sample_rate: int | None = None, **settings: Any) -> list[Event]:
        """Keyword events in a file (path) or an array (``sample_rate``, default the model's).

        ``settings`` override ``self.settings`` for this call. A file that
        cannot be used raises ``audio.AudioError`` naming it and the reason.
        """
        chosen = self._settings(settings)
        if isinstance(audio_input, (str, os.PathLike)):
            return detect.detect_file(self.scorer, audio_input, **chosen)
        wave = self._wave(audio_input, sample_rate)
        probabilities = detect.frame_probabilities(self.scorer, wave)
        return detect.detect_model_events(self.scorer, probabilities, duration=wave.size / self.sample_rate, **chosen)

    def stream(self, sample_rate: int | None = None, file: str = "", **settings: Any) -> Stream:
        """A live stream of audio at ``sample_rate`` (default the model's); events carry ``file`` as their name."""
        return Stream(self, sample_rate, self._settings(settings), file)

    def _settings(self, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = set(overrides) - set(self.settings)
        if unknown:
            raise TypeError(f"unknown detection setting(s) {', '.join(sorted(unknown))}; expected {', '.join(self.settings)}")
        chosen = {**self.settings, **{k: v for k, v in overrides.items() if v is not None}}
        detect.check_settings(**chosen)
        return chosen

    def _wave(self, audio_input: AudioInput, sample_rate: int | None) -> np.ndarray:
        if isinstance(audio_input, (str, os.PathLike)):
            return audio.load(audio_input, sample_rate=self.sample_rate, min_samples=self.receptive_field)
        wave = _as_mono_float(audio_input)
        rate = int(sample_rate or self.sample_rate)
        if rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        return audio.resample(wave, rate, self.sample_rate)

    @property
    def stream_scanner(self) -> str:
        """What ``stream()`` scans with: ``"stateful onnx"`` (a matching ``<name>.stream.onnx`` beside the
        ``.onnx``), ``"re-run onnx"`` (none there), or ``"torch"``."""
        if self.backend != "onnx":
            return "torch"
        return "stateful onnx" if self._stateful_onnx_file() is not None else "re-run onnx"

    def _stateful_onnx_file(self) -> Path | None:
        """The ``.stream.onnx`` beside the export when it matches it (checked once), else None.

        A file there that does not match (``onnx_backend.stateful_stream_for``)
        is reported once, as a warning, and the re-run scanner is used instead.
        """
        if not self._stateful_checked:
            from audioconv.onnx_backend import stateful_stream_for

            self._spare_stream, reason = stateful_stream_for(self.scorer)  # kept for the first stream()
            self._stateful_path = self._spare_stream.path if self._spare_stream is not None else None
            self._stateful_checked = True
            if reason is not None:
                import warnings

                warnings.warn(f"live streaming re-runs the model on every push: {reason}", stacklevel=3)
        return self._stateful_path

    def _stateful_onnx(self) -> Any:
        """A fresh stateful ONNX stream (see ``_stateful_onnx_file``), or None."""
        path = self._stateful_onnx_file()
        if path is None:
            return None
        if self._spare_stream is not None:
            stream, self._spare_stream = self._spare_stream, None  # the one the check made (reset, unused)
            return stream
        from audioconv.onnx_backend import OnnxStatefulStream

        threads = self.scorer.threads
        return OnnxStatefulStream(path, **({} if threads is None else {"threads": threads}))

    def _stream_scanner(self) -> Any:
        if self.backend == "onnx":
            from audioconv.onnx_backend import OnnxStreamingScanner

            stateful = self._stateful_onnx()
            return stateful if stateful is not None else OnnxStreamingScanner(self.scorer)
        return torch_stream_scanner(self.scorer)

    def __repr__(self) -> str:
        return f"Detector({str(self.source)!r}, backend={self.backend!r}, threshold={self.settings['threshold']:.3g})"


def _as_mono_float(samples: np.ndarray) -> np.ndarray:
    """float32 mono from a 1-D or [frames, channels] array; integer PCM scaled to [-1, 1) as soundfile does."""
    array = np.asarray(samples)
    if array.ndim not in (1, 2):
        raise ValueError(f"expected audio as [samples] or [samples, channels], got shape {array.shape}")
    kind, half_range = array.dtype.kind, 2.0 ** (8 * array.dtype.itemsize - 1)
    if kind == "i":  # int16 -> x / 32768
        array = (array / half_range).astype(np.float32)
    elif kind == "u":  # unsigned PCM (8-bit wav) is centered on half its range
        array = ((array - half_range) / half_range).astype(np.float32)
    elif kind == "f":
        array = array.astype(np.float32, copy=False)
    else:
        raise ValueError(f"expected float or integer samples, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array.mean(axis=1, dtype=np.float32)
    if not np.isfinite(array.sum(dtype=np.float64)):
        raise ValueError("audio has NaN or infinite samples")
    return np.ascontiguousarray(array)


def _resolve(model: str | os.PathLike | None, backend: str) -> tuple[Path, str]:
    """(file to load, backend) for a shipped name or a path, refusing mismatched pairs with a clear reason."""
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"unknown backend {backend!r}, expected one of {', '.join(BACKEND_CHOICES)}")
    if model is None or (isinstance(model, str) and model in registry.MODELS):
        if backend == "auto":
            backend = "torch" if torch_available() else "onnx"
        return registry.backend_file(model, backend), backend
    path = Path(model)
    if isinstance(model, str) and not path.suffix and os.sep not in model and not path.exists():
        raise ValueError(f"unknown model {model!r}: expected one of {', '.join(registry.MODEL_NAMES)}, or a file")
    if path.suffix.lower() == ".onnx":
        if backend == "torch":
            raise ValueError(f"{path}: an ONNX export runs on the onnx backend, not torch")
        return path, "onnx"
    if backend == "onnx":
        raise ValueError(f"{path}: the onnx backend needs an .onnx export (make one with audioconv-export)")
    return path, "torch"


def load_detector(
    model: str | os.PathLike | None = None,
    backend: str = "auto",
    *,
    threshold: float | None = None,
    smoothing_frames: int | None = None,
    refractory_seconds: float | None = None,
    threads: int | None = None,
) -> Detector:
    """Load a keyword detector.

    ``model``: a shipped model's name (``"spectrogram"``, ``"conv1d"``; ``None``
    is the default one), or a path: ``.safetensors`` / ``.ckpt`` (torch
    backend) or ``.onnx`` (onnx backend). ``backend``: ``"auto"`` (torch if
    installed, else onnx), ``"torch"`` or ``"onnx"``; it picks the shipped
    file for a name. The settings default to the weights' own.
    ``threads`` caps onnxruntime's threads (the torch backend uses torch's).

    Raises ``ValueError`` (naming the file) for an unusable model and
    ``BackendUnavailable`` when the backend it needs is not installed.
    """
    path, chosen = _resolve(model, backend)
    if chosen == "onnx":
        try:
            from audioconv.onnx_backend import OnnxDetector
        except ImportError as error:
            raise BackendUnavailable(f"the onnx backend needs onnxruntime ({error}): pip install onnxruntime") from None
        scorer: Any = OnnxDetector(path, threads=threads)
        info = scorer.info
    else:
        if not torch_available():
            raise BackendUnavailable(f"{path}: the torch backend needs torch: pip install 'audioconv[train]', "
                                     "or load an .onnx export (the shipped models have one)")
        from audioconv import checkpoints

        scorer, info = checkpoints.load_detector(path)
    try:
        settings = detect.detection_settings(info, threshold, smoothing_frames, refractory_seconds)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: detection settings: {error}") from None
    return Detector(scorer, info, chosen, path, settings)
