"""The stateful streaming ONNX export gives the frames of ``scan_whole``, whatever the pushes.

``export.onnx_stream_bytes`` turns a model into one fixed push of audio plus
each window layer's input tail in, that push's frame probabilities plus the
new tails out; ``onnx_backend.OnnxStatefulStream`` runs it on pushes of any
size. Checked here against ``scan_whole`` (float32, <= 1e-4): random models
(BatchNorm statistics and a head rescaled so the probabilities spread over
(0, 1): a frame one hop early or late could not hide), layer-zoo variants
whose strided layers need other state lengths, the shipped weights on real
speech, the first frames of a stream, ``flush()``, ``reset()``; and the API
and CLI around them (the shipped ``.stream.onnx`` is what the ONNX backend's
``stream()`` runs, a stale one is refused).
"""

from __future__ import annotations

import fnmatch
import json
import math
import shutil
import tomllib
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import audioconv
from audioconv import audio, checkpoints, export, geometry, registry
from audioconv.cli import export as export_cli
from audioconv.models import Conv1dDetector, Detector, SpectrogramDetector
from audioconv.onnx_backend import OnnxDetector, OnnxModelError, OnnxStatefulStream, stream_file
from audioconv.scan import scan_whole
from scanning_helpers import SAMPLE_RATE, make_model, make_wave, one_thread, push_in_pieces  # noqa: F401 (one_thread: autouse)

TOLERANCE = 1e-4
PUSH = 1280  # 80 ms, the shipped push
ODD_TAIL = 123  # the signal is not a whole number of hops
IRREGULAR = [1, 7, 319, 320, 321, 1279, 1280, 1281, 4099, 20_000]
ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "streams" / "demo" / "stream_000.flac"
SHIPPED_SECONDS = 6.0
VARIANTS = {  # model class, config, push: strided layers whose state is not span - stride, other push sizes
    "conv1d": (Conv1dDetector, {}, PUSH),
    "spectrogram": (SpectrogramDetector, {}, PUSH),
    "conv1d-one-hop-maxpool-layernorm-gated-full": (
        Conv1dDetector, dict(pool="max", norm="layer", gated=True, separable=False), 320),
    "spectrogram-strided-first-no-mel-400ms": (
        SpectrogramDetector, dict(conv2d_time_strides=(2, 1), n_mels=0, dilations=(1, 3)), 6400),
}


def stream(runner: OnnxStatefulStream, wave: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Push ``wave`` in pieces cycling through ``sizes``, then flush; the concatenated frames."""
    return np.concatenate([*push_in_pieces(runner.push, wave, sizes), runner.flush()])


def assert_same(scores: np.ndarray, reference: np.ndarray) -> None:
    assert scores.dtype == np.float32 and scores.ndim == 1
    assert scores.shape == reference.shape
    assert np.max(np.abs(scores - reference), initial=0.0) <= TOLERANCE


@pytest.fixture(scope="module", params=list(VARIANTS))
def case(request) -> tuple[Detector, OnnxStatefulStream, np.ndarray, np.ndarray]:
    """(random model, its stream runner, a wave, scan_whole of the wave) per variant."""
    model_class, config, push = VARIANTS[request.param]
    model = make_model(model_class, **config)
    runner = OnnxStatefulStream(export.onnx_stream_bytes(model, {}, push))
    wave = make_wave(model.receptive_field + 40 * model.hop + ODD_TAIL)
    reference = scan_whole(model, wave)
    assert reference.max() - reference.min() > 0.1, "probabilities too flat to test alignment"
    return model, runner, wave, reference


def test_irregular_pushes_give_the_whole_scan_and_reset_starts_again(case) -> None:
    model, runner, wave, reference = case
    sizes = [int(size) for size in np.random.default_rng(7).choice(IRREGULAR, size=48)]
    for _ in range(2):  # after reset() the same signal gives the same frames from frame 0
        assert_same(stream(runner, wave, sizes), reference)
        assert runner.frames_emitted == reference.size == model.output_length(wave.size)
        assert runner.samples_pushed == wave.size
        runner.reset()
        assert runner.frames_emitted == runner.samples_pushed == runner.pending_samples == 0


def test_whole_blocks_return_every_frame_they_complete(case) -> None:
    """A push of whole blocks returns exactly the frames its samples complete: no latency beyond the push."""
    model, runner, wave, reference = case
    block = runner.push_samples
    for first in range(0, wave.size - block + 1, block):
        got = runner.push(wave[first : first + block])
        assert runner.frames_emitted == model.output_length(first + block) and runner.pending_samples == 0
        assert_same(got, reference[model.output_length(first) : runner.frames_emitted])
    runner.reset()


def test_first_frames_come_from_the_signal_not_the_zero_states(case) -> None:
    model, runner, wave, reference = case
    rf, hop = model.receptive_field, model.hop
    assert runner.push(wave[: rf - 1]).size == 0 and runner.flush().size == 0  # one sample short of frame 0
    assert_same(np.concatenate([runner.push(wave[rf - 1 : rf]), runner.flush()]), reference[:1])  # its last sample
    assert runner.frames_emitted == 1
    assert runner.flush().size == 0  # nothing returned twice
    rest = runner.push(wave[rf : rf + 2 * hop])
    assert_same(np.concatenate([rest, runner.flush()]), reference[1:3])
    assert runner.frame_span(1) == (hop / SAMPLE_RATE, (hop + rf) / SAMPLE_RATE)
    runner.reset()


def test_state_lengths_keep_the_stride_grid() -> None:
    """Each state lies in [span - stride, span - 1]; the garbage frames are ceil((rf - hop) / hop)."""
    for windows in ([(400, 160), (3, 1), (3, 2), (5, 1), (9, 1), (17, 1), (17, 1)],
                    [(64, 8), (40, 20), (3, 2), (5, 1), (9, 1)],
                    [(2, 3), (4, 2), (1, 5), (7, 1)],
                    [(5, 5), (3, 3)]):
        plan, leading = export.stream_plan(windows)
        layers = [geometry.TimeLayer("w", span, stride) for span, stride in windows]
        rf, hop = geometry.receptive_field(layers), geometry.hop(layers)
        assert leading == math.ceil((rf - hop) / hop)
        for (span, stride), (state, skip) in zip(windows, plan):
            assert span - stride <= state - skip <= span - 1 and min(state, skip) == 0


def test_push_size_must_be_whole_hops() -> None:
    model = make_model(Conv1dDetector)
    assert export.push_samples_for(model, 80) == 1280
    with pytest.raises(ValueError, match="whole number of hops"):
        export.push_samples_for(model, 30)
    with pytest.raises(ValueError, match="multiple of the hop"):
        export.StatefulStreamGraph(model, 1000)


@pytest.mark.parametrize("name", registry.MODEL_NAMES)
def test_shipped_stream_exports_give_the_shipped_weights_frames_on_speech(name: str) -> None:
    path = stream_file(registry.backend_file(name, "onnx"))
    assert path.name == f"{name}.stream.onnx" and path.is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert any(fnmatch.fnmatch(f"weights/{path.name}", pattern) for pattern in package_data["audioconv"])  # in the wheel
    model, _ = checkpoints.load_detector(checkpoints.shipped_weights(name))
    runner = OnnxStatefulStream(path)
    assert (runner.push_samples, runner.hop, runner.receptive_field) == (PUSH, model.hop, model.receptive_field)
    offline = OnnxDetector(registry.backend_file(name, "onnx"))
    assert runner.metadata["threshold"] == offline.info["threshold"]  # the detection defaults travel too
    wave = audio.load(DEMO)[: int(SHIPPED_SECONDS * SAMPLE_RATE) + ODD_TAIL]
    whole = scan_whole(model, wave)
    assert whole.max() - whole.min() > 0.3  # real scores, not a constant
    sizes = [int(size) for size in np.random.default_rng(3).choice(IRREGULAR, size=32)]
    for pushes in ([PUSH], [160], sizes):
        assert_same(stream(runner, wave, pushes), whole)
        runner.reset()
    assert_same(stream(runner, wave, sizes), offline.scores(wave))


def test_stream_metadata_and_graph_io() -> None:
    path = stream_file(registry.backend_file("spectrogram", "onnx"))
    proto = onnx.load(path)
    meta = {entry.key: json.loads(entry.value) for entry in proto.metadata_props}
    assert meta["kind"] == "stateful-stream" and meta["push_samples"] == PUSH and meta["push_ms"] == 80
    assert meta["hop"] == 320 and meta["receptive_field"] == 15_120 and meta["sample_rate"] == SAMPLE_RATE
    assert meta["leading_frames"] == math.ceil((15_120 - 320) / 320)
    assert {"threshold", "smoothing_frames", "refractory_seconds", "model_config"} <= set(meta)
    inputs = [(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim]) for i in proto.graph.input]
    assert inputs == [("chunk", [1, PUSH]), *[(name, shape) for name, shape in meta["states"]]]
    assert [o.name for o in proto.graph.output] == ["probabilities", *[f"new_state_{i}" for i in range(len(meta["states"]))]]
    with pytest.raises(OnnxModelError, match="streams only"):
        OnnxDetector(path)
    with pytest.raises(OnnxModelError, match="not a stateful streaming export"):
        OnnxStatefulStream(registry.backend_file("spectrogram", "onnx"))


def test_onnx_backend_streams_with_the_stateful_export(tmp_path: Path) -> None:
    detector = audioconv.load_detector("conv1d", "onnx", threshold=0.5)
    assert detector.stream_scanner == "stateful onnx"
    live = detector.stream()
    assert isinstance(live._scanner, OnnxStatefulStream)
    wave = audio.load(DEMO)[: 8 * SAMPLE_RATE]
    pieces = [live.push(wave[i : i + 1000]) for i in range(0, wave.size, 1000)]
    events = [event for piece in pieces for event in piece] + live.close()
    assert live.frames == detector.scorer.output_length(wave.size)  # close() flushed the last block's frames
    assert [(e.start, e.end) for e in events] == [(e.start, e.end) for e in detector.detect(wave)]

    alone = tmp_path / "alone"  # an export with no stream file beside it: the re-run scanner
    alone.mkdir()
    shutil.copy2(registry.backend_file("conv1d", "onnx"), alone / "conv1d.onnx")
    assert audioconv.load_detector(alone / "conv1d.onnx").stream_scanner == "re-run onnx"

    stale = tmp_path / "stale"  # another model's stream file beside it: refused with a warning, not run
    stale.mkdir()
    shutil.copy2(registry.backend_file("conv1d", "onnx"), stale / "conv1d.onnx")
    shutil.copy2(stream_file(registry.backend_file("spectrogram", "onnx")), stale / "conv1d.stream.onnx")
    with pytest.warns(UserWarning, match="re-runs the model"):
        assert audioconv.load_detector(stale / "conv1d.onnx").stream_scanner == "re-run onnx"

    model, info = checkpoints.load_detector(checkpoints.shipped_weights("conv1d"))
    with torch.no_grad():
        model.head.bias.add_(0.5)  # same config, geometry and settings; other weights: only the probe can tell
    export.export_onnx_stream(model, info, stale / "conv1d.stream.onnx")
    with pytest.warns(UserWarning, match="frames differ"):
        assert audioconv.load_detector(stale / "conv1d.onnx").stream_scanner == "re-run onnx"


def test_export_cli_writes_a_checked_stream_export(tmp_path: Path) -> None:
    out = tmp_path / "model.stream.onnx"  # the format follows from the name
    assert export_cli.main(["--model", "conv1d", "--push-ms", "40", str(out)]) == 0
    runner = OnnxStatefulStream(out)
    assert runner.push_samples == 640 and sorted(p.name for p in tmp_path.iterdir()) == ["model.stream.onnx"]
    assert export_cli.DEFAULT_PUSH_MS == export.DEFAULT_PUSH_MS
    assert export_cli.main(["--model", "conv1d", "--push-ms", "30", str(tmp_path / "x.stream.onnx")]) == 2
    assert not (tmp_path / "x.stream.onnx").exists()
    with pytest.raises(SystemExit):
        export_cli.main(["--model", "conv1d", "--push-ms", "80", str(tmp_path / "x.onnx")])  # onnx-stream only
