"""The stateful stream equals the naive scan, whatever the push sizes: each layer's cached tail is exact.

Random models get non-trivial BatchNorm statistics and a head rescaled so
their probabilities spread over (0, 1): a frame emitted one hop early or late,
or a cache one frame short, could not hide in a flat or saturated score. The
shipped weights are checked too, on real speech (the demo stream).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from audioconv import audio, checkpoints
from audioconv.geometry import TimeLayer
from audioconv.models import Conv1dDetector, Detector, SpectrogramDetector
from audioconv.scan import scan_naive, scan_whole
from audioconv.streaming import NoNewFrames, StatefulScanner, StreamingWindow, streaming_copy
from scanning_helpers import SAMPLE_RATE, make_model, make_wave, one_thread, push_in_pieces  # noqa: F401 (one_thread: autouse)

TOLERANCE = 1e-5
FLOAT32_ROUNDING = 1e-7
WAVE_SECONDS = 2.0
ODD_TAIL = 123  # the total length is not a multiple of the hop
PUSH_SIZES = [1, 7, 160, 319, 320, 1280, 5120]  # shorter than a hop, around one, a few, many
SHORT_PUSH = 320  # pushes below this size stream a shorter wave (one Python call per push)
SHORT_EXTRA_FRAMES = 2
IRREGULAR_SIZES = [1, 2, 63, 319, 321, 1000, 1280, 4099, 20_000]
DEMO_STREAM = Path(__file__).resolve().parents[1] / "data" / "streams" / "demo" / "stream_000.flac"
SHIPPED_SECONDS = 4.0
VARIANTS = {
    "conv1d-maxpool-layernorm-gated-full": (Conv1dDetector, dict(pool="max", norm="layer", gated=True, separable=False)),
    "spectrogram-strided-first-no-mel": (SpectrogramDetector, dict(conv2d_time_strides=(2, 1), n_mels=0, dilations=(1, 3))),
}


def stream(scanner: StatefulScanner, wave: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Push ``wave`` in pieces cycling through ``sizes``; the concatenated frames."""
    return np.concatenate(push_in_pieces(scanner.push, wave, sizes))


def assert_same(scores: np.ndarray, reference: np.ndarray, tolerance: float = TOLERANCE) -> None:
    assert scores.dtype == np.float32 and scores.ndim == 1
    assert scores.shape == reference.shape
    assert np.max(np.abs(scores - reference), initial=0.0) <= tolerance


@pytest.fixture(scope="module", params=[Conv1dDetector, SpectrogramDetector], ids=lambda c: c.__name__)
def case(request) -> tuple[Detector, np.ndarray, np.ndarray]:
    """(model, wave, reference scores) once per model. The reference is ``scan_whole``, which
    tests/test_scan.py proves equal to the naive per-window scan (and which is ~50x faster);
    the float64 and layer-zoo tests below compare with ``scan_naive`` directly."""
    model = make_model(request.param)
    wave = make_wave(int(WAVE_SECONDS * SAMPLE_RATE) + ODD_TAIL)
    reference = scan_whole(model, wave)
    assert reference.max() - reference.min() > 0.1, "probabilities too flat to test alignment"
    return model, wave, reference


@pytest.mark.parametrize("push", PUSH_SIZES)
def test_stream_equals_naive_for_every_push_size(case, push: int) -> None:
    model, wave, naive = case
    if push < SHORT_PUSH:
        wave = wave[: model.receptive_field + SHORT_EXTRA_FRAMES * model.hop + ODD_TAIL]
        naive = naive[: model.output_length(wave.size)]
    scanner = StatefulScanner(model)
    assert_same(stream(scanner, wave, [push]), naive)
    assert scanner.frames_emitted == naive.size
    assert scanner.samples_pushed == wave.size


def test_irregular_pushes_and_reset(case) -> None:
    model, wave, naive = case
    scanner = StatefulScanner(model, chunk_seconds=0.5)  # large pushes are also run in pieces
    sizes = list(np.random.default_rng(7).choice(IRREGULAR_SIZES, size=64))
    for _ in range(2):  # after reset() the same signal gives the same frames from frame 0
        assert_same(stream(scanner, wave, sizes), naive)
        scanner.reset()
        assert scanner.frames_emitted == 0 and scanner.samples_pushed == 0


def test_frame_times_follow_the_geometry(case) -> None:
    """Frame i covers [i * hop, i * hop + receptive_field): it is emitted by the push holding its last sample."""
    model, wave, naive = case
    scanner = StatefulScanner(model)
    rf, hop = model.receptive_field, model.hop
    assert scanner.push(wave[: rf - 1]).size == 0  # one sample short of the first frame
    assert scanner.push(wave[rf - 1 : rf]).size == 1  # its last sample completes frame 0
    assert scanner.push(wave[rf : rf + hop - 1]).size == 0
    assert scanner.push(wave[rf + hop - 1 : rf + hop]).size == 1
    assert scanner.frames_emitted == 2
    assert scanner.frame_span(1) == (hop / SAMPLE_RATE, (hop + rf) / SAMPLE_RATE)


def test_original_model_is_untouched(case) -> None:
    model, wave, naive = case
    keys = list(model.state_dict())
    model.train()
    try:
        StatefulScanner(model).push(wave[: model.receptive_field])
        assert model.training and list(model.state_dict()) == keys
    finally:
        model.eval()
    assert_same(scan_whole(model, wave), naive)


@pytest.mark.parametrize("model_class", [Conv1dDetector, SpectrogramDetector], ids=lambda c: c.__name__)
def test_identity_is_exact_in_float64(model_class) -> None:
    """In float64 the stream and the naive scan agree to float32 rounding: the caches are exact, not approximate."""
    model = make_model(model_class).double()
    wave = make_wave(model.receptive_field + 9 * model.hop + ODD_TAIL).astype(np.float64)
    naive = scan_naive(model, wave)
    scores = stream(StatefulScanner(model), wave, [1000, 7, 320])
    np.testing.assert_allclose(scores, naive, rtol=0, atol=FLOAT32_ROUNDING)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_layer_zoo_variants_stream_exactly(variant: str) -> None:
    """Max pooling, layer norm, gating, full convolutions, a strided first conv2d, plain log-magnitude."""
    model_class, config = VARIANTS[variant]
    model = make_model(model_class, **config)
    wave = make_wave(model.receptive_field + 12 * model.hop + ODD_TAIL)
    assert_same(stream(StatefulScanner(model), wave, [777, 160, 2000]), scan_naive(model, wave))


@pytest.mark.parametrize("name", ["conv1d", "spectrogram"])
def test_shipped_weights_stream_exactly_on_speech(name: str) -> None:
    model, _ = checkpoints.load_detector(checkpoints.shipped_weights(name))
    wave = audio.load(DEMO_STREAM)[: int(SHIPPED_SECONDS * SAMPLE_RATE) + ODD_TAIL]
    whole = scan_whole(model, wave)
    sizes = list(np.random.default_rng(3).choice(IRREGULAR_SIZES[2:], size=32))
    for pushes in ([1280], [320], sizes):
        assert_same(stream(StatefulScanner(model), wave, pushes), whole)


@pytest.mark.parametrize("span, stride", [(3, 1), (4, 2), (2, 3)], ids=["stride-1", "strided", "stride-past-span"])
def test_window_keeps_the_phase_of_its_stride(span: int, stride: int) -> None:
    """A strided window, even one whose stride skips inputs, emits what it would on the whole signal."""
    pool = nn.AvgPool1d(span, stride)
    signal = torch.randn(1, 2, 101)
    window = StreamingWindow(pool, span, stride)
    pieces, start = [], 0
    for size in [1, 2, 5, 1, 13, 3, 40, 36]:
        try:
            pieces.append(window(signal[..., start : start + size]))
        except NoNewFrames:
            pass
        start += size
    torch.testing.assert_close(torch.cat(pieces, dim=-1), pool(signal), rtol=0, atol=0)


class HiddenPooling(Detector):
    """Declares a pooling in ``time_layers`` but applies it functionally in ``forward``: not streamable."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 3)

    @property
    def time_layers(self) -> list[TimeLayer]:
        return [TimeLayer("conv", 3), TimeLayer("pool", 2, 2)]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return F.avg_pool1d(self.conv(wave.unsqueeze(1)), 2).squeeze(1)


def test_a_time_operation_outside_a_module_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be streamed"):
        streaming_copy(HiddenPooling())
