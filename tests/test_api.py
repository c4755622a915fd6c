"""The Python API over both backends: shipped weights by name, files, arrays, scores, live streams, no torch.

Real weights (the shipped ones) on real speech (the demo stream, a held-out
voice), so a disagreement between paths shows in real events. Thresholds are
chosen where no frame score lies near them: the backends and the scan orders
agree to ~1e-5, not bit for bit, and a frame sitting on the threshold could
otherwise flip.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import audioconv
from audioconv import api, audio, registry
from audioconv.onnx_backend import OnnxDetector, OnnxStreamingScanner

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "streams" / "demo" / "stream_000.flac"
TOLERANCE = 1e-4
BACKENDS = ("torch", "onnx")


def robust_threshold(probabilities: np.ndarray, low: float = 0.4, high: float = 0.6) -> float:
    """A threshold in [low, high] as far as possible from every frame score (at least 1e-3)."""
    candidates = np.linspace(low, high, 2001)
    distance = np.min(np.abs(probabilities[None, :].astype(np.float64) - candidates[:, None]), axis=1)
    best = int(np.argmax(distance))
    assert distance[best] > 1e-3
    return float(candidates[best])


def in_pieces(rng: np.random.Generator, wave: np.ndarray, largest: int):
    position = 0
    while position < wave.size:
        size = int(rng.integers(1, largest + 1))
        yield wave[position : position + size]
        position += size


def assert_same_events(got: list, expected: list) -> None:
    assert len(got) == len(expected) >= 3
    for a, b in zip(got, expected):
        assert (a.start, a.end) == (b.start, b.end)
        assert abs(a.score - b.score) < TOLERANCE


@pytest.fixture(scope="module")
def demo_int16() -> np.ndarray:
    samples, rate = sf.read(DEMO, dtype="int16")
    assert rate == 16_000 and samples.ndim == 1
    return samples


@pytest.fixture(scope="module")
def detectors() -> dict[str, api.Detector]:
    return {backend: audioconv.load_detector("spectrogram", backend) for backend in BACKENDS}


@pytest.fixture(scope="module")
def threshold(detectors) -> float:
    return robust_threshold(detectors["torch"].scores(DEMO).probabilities)


def test_shipped_weights_load_by_name_with_their_settings(detectors) -> None:
    assert registry.default_model() == "spectrogram"
    for backend, detector in detectors.items():
        assert detector.backend == backend
        assert detector.source == registry.weights_dir() / f"spectrogram{registry.WEIGHTS_SUFFIX[backend]}"
        assert detector.source.is_file()
        assert (detector.sample_rate, detector.hop, detector.receptive_field) == (16_000, 320, 15_120)
    assert detectors["torch"].settings == detectors["onnx"].settings  # the export carries the shipped settings
    assert 0.9 < detectors["onnx"].settings["threshold"] < 1.0
    assert audioconv.load_detector().source.stem == "spectrogram"  # the default model
    assert audioconv.load_detector("conv1d", "onnx").receptive_field == 14_776


@pytest.mark.parametrize("name", registry.MODEL_NAMES)
def test_shipped_onnx_exports_match_the_shipped_weights(name: str) -> None:
    wave = audio.load(DEMO)[: 20 * 16_000]
    torch_detector = audioconv.load_detector(name, "torch")
    torch_scores = torch_detector.scores(wave).probabilities
    onnx_scores = audioconv.load_detector(name, "onnx").scores(wave).probabilities
    assert torch_scores.shape == onnx_scores.shape == ((wave.size - torch_detector.receptive_field) // 320 + 1,)
    assert np.max(np.abs(torch_scores - onnx_scores)) < TOLERANCE
    assert torch_scores.max() - torch_scores.min() > 0.3  # real scores, not a constant


@pytest.mark.parametrize("backend", BACKENDS)
def test_files_arrays_and_scores_agree(backend: str, detectors, threshold: float, demo_int16: np.ndarray) -> None:
    detector = detectors[backend]
    from_file = detector.detect(DEMO, threshold=threshold)
    from_array = detector.detect(demo_int16, 16_000, threshold=threshold)
    assert [(e.start, e.end, e.score) for e in from_array] == [(e.start, e.end, e.score) for e in from_file]
    assert all(e.file == str(DEMO) for e in from_file) and all(e.file == "" for e in from_array)
    assert len(from_file) >= 3
    scores = detector.scores(demo_int16.astype(np.float32) / 32768, 16_000)
    assert len(scores) == detector.scorer.output_length(demo_int16.size)
    assert scores.start[1] == pytest.approx(0.02) and scores.end[0] == pytest.approx(15_120 / 16_000)
    peak = int(np.argmax(scores.probabilities))
    assert any(e.start <= scores.start[peak] and scores.end[peak] <= e.end + 1e-9 for e in from_file)
    stereo = np.stack([demo_int16, demo_int16], axis=1)  # [frames, channels] is averaged
    assert [e.start for e in detector.detect(stereo, 16_000, threshold=threshold)] == [e.start for e in from_file]
    assert detector.detect(demo_int16[:1000], 16_000) == [] and len(detector.scores(demo_int16[:1000])) == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_stream_in_irregular_pieces_gives_the_file_events(backend: str, detectors, threshold, demo_int16) -> None:
    detector = detectors[backend]
    expected = detector.detect(DEMO, threshold=threshold)
    stream = detector.stream(threshold=threshold, file="live")
    got, released_at = [], []
    for piece in in_pieces(np.random.default_rng(1), demo_int16, largest=6_000):
        for event in stream.push(piece):
            got.append(event)
            released_at.append(stream.time)
    assert len(got) >= len(expected) - 1  # all but (at most) the last came out while the stream ran
    assert all(at < event.end + 2.5 for event, at in zip(got, released_at))
    got += stream.close()
    assert stream.close() == [] and stream.time == demo_int16.size / 16_000
    assert all(e.file == "live" for e in got)
    assert_same_events(got, expected)


def test_stream_at_another_rate_is_resampled(detectors, threshold: float) -> None:
    detector = detectors["onnx"]
    wave = audio.load(DEMO, sample_rate=22_050)
    expected = detector.detect(wave, 22_050, threshold=threshold)
    stream = detector.stream(22_050, threshold=threshold)
    got = [event for piece in in_pieces(np.random.default_rng(2), wave, 4_000) for event in stream.push(piece)]
    got += stream.close()
    assert len(got) == len(expected) >= 3
    for a, b in zip(got, expected):  # streaming and whole-signal resampling differ a little at the edges
        assert abs(a.start - b.start) <= 0.05 and abs(a.end - b.end) <= 0.05 and abs(a.score - b.score) < 0.02


def test_onnx_streaming_scanner_gives_the_offline_frames() -> None:
    detector = OnnxDetector(registry.backend_file("conv1d", "onnx"))
    wave = audio.load(DEMO)[: 12 * 16_000]
    offline = detector.scores(wave)
    scanner = OnnxStreamingScanner(detector, chunk_seconds=2.0)  # a large push is run in several pieces
    rng = np.random.default_rng(3)
    pieces, position = [], 0
    for size in [1, 2, 15_000, 319, 321, 40_000, *rng.integers(1, 3_000, 200)]:
        pieces.append(scanner.push(wave[position : position + size]))
        position += size
        assert scanner.pending_samples < detector.receptive_field
    pieces.append(scanner.push(wave[position:]))
    online = np.concatenate(pieces)
    assert online.shape == offline.shape and scanner.frames_emitted == offline.size
    assert np.max(np.abs(online - offline)) < 1e-5
    scanner.reset()
    assert scanner.push(wave[: detector.receptive_field]).size == 1


def test_bad_requests_say_what_is_wrong(tmp_path: Path, detectors) -> None:
    with pytest.raises(ValueError, match="unknown model 'nonsense'"):
        audioconv.load_detector("nonsense")
    with pytest.raises(ValueError, match="unknown backend"):
        audioconv.load_detector("spectrogram", "tensorflow")
    with pytest.raises(ValueError, match="onnx backend, not torch"):
        audioconv.load_detector(registry.backend_file("conv1d", "onnx"), "torch")
    with pytest.raises(ValueError, match="needs an .onnx export"):
        audioconv.load_detector(registry.backend_file("conv1d", "torch"), "onnx")
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(ValueError, match=f"{missing}: no such file"):
        audioconv.load_detector(missing)
    with pytest.raises(ValueError, match="threshold"):
        audioconv.load_detector("conv1d", "onnx", threshold=2.0)
    with pytest.raises(TypeError, match="unknown detection setting"):
        detectors["onnx"].detect(np.zeros(16_000, dtype=np.float32), thresold=0.5)
    with pytest.raises(ValueError, match="NaN"):
        detectors["onnx"].detect(np.full(16_000, np.nan, dtype=np.float32))
    with pytest.raises(audio.AudioError, match="no such file"):
        detectors["onnx"].detect(tmp_path / "missing.wav")


def test_import_audioconv_and_the_onnx_api_import_no_torch() -> None:
    """torch made unimportable: ``import audioconv`` and the whole ONNX path still work, auto picks onnx."""
    code = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "torchaudio", "librosa", "lightning"):
            raise ImportError(name + " is blocked in this test")
sys.meta_path.insert(0, Block())
import numpy as np, audioconv
assert "audioconv.api" not in sys.modules  # lazy: loaded on first use
det = audioconv.load_detector("spectrogram", threshold=0.5)
assert det.backend == "onnx", det.backend
events = det.detect({str(DEMO)!r})
stream = det.stream()
live = stream.push(np.zeros(40_000, dtype=np.float32)) + stream.close()
try:
    audioconv.load_detector("spectrogram", "torch")
except audioconv.BackendUnavailable as error:
    print("refused:", error)
print(len(events), len(live), sorted(m for m in sys.modules if m.partition(".")[0] in ("torch", "librosa")))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("refused:") and "pip install" in lines[0]
    count, live, leaked = lines[1].split(" ", 2)
    assert int(count) >= 3 and live == "0" and leaked == "[]"
