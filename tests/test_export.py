"""Exports (ONNX, TorchScript) reproduce the PyTorch detectors, and detection runs on ONNX without torch.

The detectors are randomly initialized, with the head rescaled so that the
frame probabilities spread over (0, 1) instead of sitting at one value: a mismatch
between backends then shows in the probabilities and in the events. The audio
is real speech from espeak-ng (22.05 kHz, so loading also resamples).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from audioconv import audio, checkpoints, export, onnx_backend, scan
from audioconv.features import FramedSpectrogram, LogSpectrogram
from audioconv.models import Conv1dDetector, Detector, SpectrogramDetector
from audioconv.onnx_backend import OnnxDetector
from audioconv.scan import scan_chunked, scan_whole

ROOT = Path(__file__).resolve().parent.parent
DETECT = ROOT / "scripts" / "detect.py"
EXPORT = ROOT / "scripts" / "export.py"
TOLERANCE = 1e-4
LOGIT_SPREAD = 2.0  # the random detectors' probabilities spread over (0, 1) instead of sitting at one value
SENTENCE = "Welcome to the lab. It is nice to see you here today. Welcome back, everyone, and welcome again."
MODELS = {"conv1d": Conv1dDetector, "spectrogram": SpectrogramDetector}
# Importing any of these in the ONNX path fails the no-torch test.
BLOCKED = ("torch", "torchaudio", "librosa", "lightning", "pytorch_lightning", "torchmetrics")
NO_TORCH_PRELUDE = """
import importlib.abc, runpy, sys
BLOCKED = set({blocked!r})
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked in this test")
        return None
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    leaked = sorted({{m.partition(".")[0] for m in sys.modules}} & BLOCKED)
    print("LEAKED", leaked, file=sys.stderr)
"""


def run(*args: str | Path, prelude: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, *(["-c", prelude] if prelude else []), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def spread(kind: str, wave: np.ndarray) -> Detector:
    """A random detector whose head is rescaled so its logits on ``wave`` have mean 0 and std LOGIT_SPREAD."""
    torch.manual_seed(0)
    model = MODELS[kind]().eval()
    with torch.inference_mode():
        logits = model(torch.from_numpy(wave)[None, :])
    gain = LOGIT_SPREAD / float(logits.std())
    with torch.no_grad():
        model.head.weight.mul_(gain)
        model.head.bias.sub_(float(logits.mean())).mul_(gain)
    return model


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    """About 6 s of espeak-ng speech with the keyword in it, as espeak writes it (22.05 kHz int16)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path_factory.mktemp("speech") / "welcome.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-w", str(path), SENTENCE], check=True, capture_output=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory, speech: Path) -> dict[str, dict[str, Path]]:
    """Per model kind: its weights (.safetensors), ONNX and TorchScript exports."""
    directory = tmp_path_factory.mktemp("exports")
    files: dict[str, dict[str, Path]] = {}
    wave = audio.load(speech)
    for kind, cls in MODELS.items():
        model = spread(kind, wave)
        weights = directory / f"{kind}.safetensors"
        config = {"_target_": f"audioconv.models.{cls.__name__}"}
        checkpoints.save_detector(weights, model, config, threshold=0.6, smoothing_frames=3, refractory_seconds=0.5)
        model, info = checkpoints.load_detector(weights)
        files[kind] = {
            "weights": weights,
            "onnx": export.export(model, info, directory / f"{kind}.onnx", "onnx"),
            "torchscript": export.export(model, info, directory / f"{kind}.pt", "torchscript"),
        }
    return files


def test_onnx_backend_constants_match_the_torch_side() -> None:
    """The torch-free registry holds two constants the torch side uses too (onnx_backend may not import torch)."""
    assert onnx_backend.DEFAULT_CHUNK_SECONDS == scan.DEFAULT_CHUNK_SECONDS
    assert onnx_backend.EXPORT_FORMAT == export.EXPORT_FORMAT


def test_dft_as_conv_matches_rfft_and_is_off_by_default() -> None:
    torch.manual_seed(1)
    wave = 0.1 * torch.randn(2, 7_000)
    front = LogSpectrogram()
    assert front.spectrogram.dft_as_conv is False
    reference_magnitude, reference = front.spectrogram(wave), front(wave)
    state = front.state_dict()
    front.spectrogram.dft_as_conv = True
    magnitude = front.spectrogram(wave)
    assert magnitude.shape == reference_magnitude.shape
    scale = reference_magnitude.abs().max()
    assert torch.allclose(magnitude, reference_magnitude, atol=1e-5 * scale, rtol=0)
    assert torch.allclose(front(wave), reference, atol=1e-4, rtol=0)
    assert front.state_dict().keys() == state.keys()  # no new buffers: checkpoints load as before
    plain = FramedSpectrogram(n_fft=64, hop_length=16)
    plain.dft_as_conv = True
    assert plain.dft_kernels().shape == (2 * 33, 1, 64)


@pytest.mark.parametrize("kind", MODELS)
def test_onnx_matches_pytorch_on_speech_at_two_lengths(kind: str, speech: Path, exported) -> None:
    model, info = checkpoints.load_detector(exported[kind]["weights"])
    proto = onnx.load(str(exported[kind]["onnx"]))
    meta = {entry.key: json.loads(entry.value) for entry in proto.metadata_props}
    assert meta["format"] == export.EXPORT_FORMAT
    assert (meta["hop"], meta["receptive_field"], meta["sample_rate"]) == (model.hop, model.receptive_field, 16_000)
    assert (meta["threshold"], meta["smoothing_frames"], meta["refractory_seconds"]) == (0.6, 3, 0.5)
    assert meta["model_config"]["_target_"] == f"audioconv.models.{MODELS[kind].__name__}"
    session = onnxruntime.InferenceSession(str(exported[kind]["onnx"]), providers=["CPUExecutionProvider"])
    wave = audio.load(speech)
    lengths = [wave.size, model.receptive_field + 37 * model.hop + 123]
    assert lengths[0] > lengths[1] + 10 * model.hop
    for length in lengths:
        span = wave[:length]
        got = session.run(None, {export.INPUT_NAME: span[None, :]})[0][0]
        reference = scan_whole(model, span)
        assert got.shape == reference.shape == (model.output_length(length),)
        assert np.max(np.abs(got - reference)) < TOLERANCE
        assert reference.max() - reference.min() > 0.3  # the comparison is not between two constants


@pytest.mark.parametrize("kind", MODELS)
def test_onnx_detector_scans_in_chunks_like_pytorch(kind: str, speech: Path, exported) -> None:
    model, _ = checkpoints.load_detector(exported[kind]["weights"])
    detector = OnnxDetector(exported[kind]["onnx"])
    assert (detector.hop, detector.receptive_field, detector.sample_rate) == (model.hop, model.receptive_field, 16_000)
    assert detector.info["threshold"] == 0.6 and detector.info["model_config"]["_target_"].endswith(MODELS[kind].__name__)
    wave = audio.load(speech)
    for length in (wave.size, model.receptive_field - 1, model.receptive_field, model.receptive_field + 5 * model.hop):
        assert detector.output_length(length) == model.output_length(length)
    whole = scan_whole(model, wave)
    chunked = detector.scores(wave, chunk_seconds=1.3)  # several chunks, the last one short
    assert chunked.shape == whole.shape and chunked.dtype == np.float32
    assert np.max(np.abs(chunked - whole)) < TOLERANCE
    assert detector.scores(wave[: model.receptive_field - 1]).shape == (0,)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("kind", MODELS)
def test_torchscript_export_loads_and_matches(kind: str, speech: Path, exported) -> None:
    model, _ = checkpoints.load_detector(exported[kind]["weights"])
    module, meta = export.load_torchscript(exported[kind]["torchscript"])
    assert isinstance(module, torch.jit.ScriptModule)
    assert (meta["hop"], meta["receptive_field"], meta["threshold"]) == (model.hop, model.receptive_field, 0.6)
    plain = torch.jit.load(str(exported[kind]["torchscript"]))  # no audioconv code needed to run it
    wave = audio.load(speech)
    for length in (wave.size, model.receptive_field + 11 * model.hop):
        with torch.inference_mode():
            got = plain(torch.from_numpy(wave[:length])[None, :])[0].numpy()
        reference = scan_whole(model, wave[:length])
        assert got.shape == reference.shape and np.max(np.abs(got - reference)) < TOLERANCE


def test_export_script(exported, tmp_path: Path) -> None:
    weights = exported["spectrogram"]["weights"]
    out = tmp_path / "deep" / "model.onnx"
    done = run(EXPORT, "--checkpoint", weights, out)  # format from the suffix
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.onnx"]  # no temporary file left
    assert OnnxDetector(out).hop == 320
    done = run(EXPORT, "--checkpoint", tmp_path / "missing.safetensors", "--format", "onnx", tmp_path / "x.onnx")
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert not (tmp_path / "x.onnx").exists()
    assert run(EXPORT, "--checkpoint", weights, tmp_path / "model.bin").returncode == 2  # format unknown


def _robust_threshold(probabilities: np.ndarray) -> float:
    """A threshold with several frames on each side and no frame within 1e-3 of it: backends cannot disagree."""
    values = np.unique(np.round(probabilities, 6))
    middle = values[(values > np.quantile(probabilities, 0.3)) & (values < np.quantile(probabilities, 0.8))]
    gaps = np.diff(middle)
    best = int(np.argmax(gaps))
    assert gaps[best] > 2e-3
    return float((middle[best] + middle[best + 1]) / 2)


def _events(done: subprocess.CompletedProcess) -> list[dict]:
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _assert_same_events(got: list[dict], expected: list[dict]) -> None:
    assert len(got) == len(expected) >= 2
    for a, b in zip(got, expected):
        assert (a["file"], a["start"], a["end"]) == (b["file"], b["start"], b["end"])
        assert abs(a["score"] - b["score"]) < TOLERANCE


@pytest.fixture(scope="module")
def torch_events(speech: Path, exported) -> tuple[list[str], list[dict]]:
    """The torch backend's events on the speech file, with a threshold no backend difference can flip."""
    model, _ = checkpoints.load_detector(exported["spectrogram"]["weights"])
    threshold = _robust_threshold(scan_chunked(model, audio.load(speech)))
    settings = ["--threshold", f"{threshold:.6f}", "--smoothing", "1", "--refractory", "0.1", "--json"]
    return settings, _events(run(DETECT, speech, "--checkpoint", exported["spectrogram"]["weights"], *settings))


def test_detect_cli_onnx_backend_gives_the_torch_events(speech: Path, exported, torch_events) -> None:
    settings, expected = torch_events
    onnx_file = exported["spectrogram"]["onnx"]
    _assert_same_events(_events(run(DETECT, speech, "--backend", "onnx", "--onnx", onnx_file, *settings)), expected)
    _assert_same_events(_events(run(DETECT, speech, "--checkpoint", onnx_file, *settings)), expected)


def test_onnx_detection_runs_without_torch(speech: Path, exported, torch_events, tmp_path: Path) -> None:
    """torch, torchaudio, librosa and lightning made unimportable: the ONNX path still detects, plots included."""
    settings, expected = torch_events
    prelude = NO_TORCH_PRELUDE.format(blocked=BLOCKED)
    plot = tmp_path / "plot.png"
    onnx_file = exported["spectrogram"]["onnx"]
    done = run(DETECT, speech, "--onnx", onnx_file, *settings, "--plot", plot, prelude=prelude)
    assert "LEAKED []" in done.stderr, done.stderr
    _assert_same_events(_events(done), expected)
    assert plot.read_bytes().startswith(b"\x89PNG")
    blocked = run(DETECT, speech, "--checkpoint", exported["spectrogram"]["weights"], prelude=prelude)
    assert blocked.returncode == 2 and "the torch backend needs torch" in blocked.stderr  # the blocker does block torch
