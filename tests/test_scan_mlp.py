"""A scanned MLP and its convolutional forms give the same numbers; the distributed one does less work."""

import shutil
import subprocess

import numpy as np
import pytest
import torch

from audioconv import audio
from audioconv.features import LogSpectrogram
from audioconv.models.scan_mlp import (
    DistributedScanCNN,
    ScanMLP,
    count_parameters,
    distributed_as_mlp,
    macs_per_frame,
    to_conv,
    window_macs,
)

TOLERANCE = 1e-5


def max_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def speech_features() -> dict[str, torch.Tensor]:
    """2 s of espeak-ng speech, as raw samples [1, 1, T] and log-mel [1, 40, frames]."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "welcome.wav"
        subprocess.run(["espeak-ng", "-w", str(path), "welcome, you are very welcome here"], check=True)
        wave = audio.load(path)
    two_seconds = 2 * audio.SAMPLE_RATE
    wave = np.pad(wave, (0, max(0, two_seconds - wave.size)))[:two_seconds]
    raw = torch.from_numpy(wave).view(1, 1, -1)
    return {"raw": raw, "mel": LogSpectrogram()(raw[:, 0])}


@pytest.mark.parametrize("window, stride", [(8, 4), (8, 1), (5, 5), (12, 3)])
def test_to_conv_equals_the_loop_on_random_input(window: int, stride: int) -> None:
    torch.manual_seed(0)
    mlp = ScanMLP(in_channels=6, window=window, hidden=(16, 8), stride=stride)
    x = torch.randn(3, 6, 57)
    with torch.no_grad():
        assert max_difference(mlp.scan(x), to_conv(mlp)(x)) < TOLERANCE


@pytest.mark.parametrize("kernels, strides", [((4, 3), (2, 2)), ((2, 4), (2, 2)), ((3, 3, 3), (1, 2, 1)), ((5,), (3,))])
def test_distributed_cnn_equals_its_window_mlp_on_random_input(kernels, strides) -> None:
    torch.manual_seed(1)
    cnn = DistributedScanCNN(in_channels=6, channels=(12, 8, 4)[: len(kernels)], kernels=kernels, strides=strides)
    x = torch.randn(3, 6, 61)
    with torch.no_grad():
        scanned = cnn(x)
        assert scanned.shape[-1] == (61 - cnn.window) // cnn.stride + 1
        assert max_difference(scanned, cnn.scan_loop(x)) < TOLERANCE
        assert max_difference(scanned, distributed_as_mlp(cnn).scan(x)) < TOLERANCE


def test_flatten_order_matters() -> None:
    """The conv weight is W1.view(H1, C, K) only for a channel-major flatten; time-major would scramble it."""
    torch.manual_seed(2)
    mlp = ScanMLP(in_channels=3, window=4, hidden=(5,), stride=2)
    x = torch.randn(1, 3, 20)
    conv = to_conv(mlp)
    with torch.no_grad():
        conv[0].weight.copy_(mlp.layers[0].weight.view(5, 4, 3).transpose(1, 2))  # the wrong order
        assert max_difference(mlp.scan(x), conv(x)) > 1e-3


@pytest.mark.parametrize("kind", ["mel", "raw"])
def test_forms_agree_on_speech(speech_features, kind: str) -> None:
    torch.manual_seed(3)
    x = speech_features[kind]
    channels = x.shape[1]
    if kind == "mel":  # 40 bins x 24 frames (240 ms) windows every 2 frames; kernels (4, 3, 5, 5), strides (2, 1, 1, 1)
        mlp = ScanMLP(channels, window=24, hidden=(32, 16), stride=2)
        cnn = DistributedScanCNN(channels, (16, 16, 16, 16), kernels=(4, 3, 5, 5), strides=(2, 1, 1, 1))
    else:  # raw samples: 400-sample (25 ms) windows every 160 samples
        mlp = ScanMLP(channels, window=400, hidden=(16,), stride=160)
        cnn = DistributedScanCNN(channels, (8, 8), kernels=(80, 9), strides=(40, 4))  # K = 1 + 79 + 8 * 40
    assert (cnn.window, cnn.stride) == (mlp.window, mlp.stride)
    with torch.no_grad():
        assert max_difference(mlp.scan(x), to_conv(mlp)(x)) < TOLERANCE
        assert max_difference(cnn(x), distributed_as_mlp(cnn).scan(x)) < TOLERANCE


def test_parameter_counts() -> None:
    mlp = ScanMLP(in_channels=40, window=24, hidden=(32, 16), stride=2)
    assert count_parameters(to_conv(mlp)) == count_parameters(mlp) == 40 * 24 * 32 + 32 + 32 * 16 + 16 + 16 + 1
    cnn = DistributedScanCNN(40, (16, 16), kernels=(4, 3), strides=(2, 2))
    # the dense window-MLP repeats the shared kernels at every position: more numbers, same free parameters
    assert count_parameters(distributed_as_mlp(cnn)) > count_parameters(cnn)


def test_macs_per_frame() -> None:
    mlp = ScanMLP(in_channels=40, window=24, hidden=(32, 16), stride=2)
    # the non-distributed CNN does exactly the loop's arithmetic, batched
    assert macs_per_frame(to_conv(mlp)) == macs_per_frame(mlp) == 40 * 24 * 32 + 32 * 16 + 16
    for kernels, strides in [((4, 3, 5, 5), (2, 1, 1, 1)), ((4, 3), (2, 2)), ((2, 2, 2), (2, 2, 2))]:
        cnn = DistributedScanCNN(40, (16,) * len(kernels), kernels, strides)
        if cnn.stride < cnn.window:  # overlapping windows: the CNN shares the overlap
            assert macs_per_frame(cnn) < window_macs(cnn)
        else:  # no overlap, nothing to share: the same work either way
            assert macs_per_frame(cnn) == window_macs(cnn)


def test_time_geometry() -> None:
    cnn = DistributedScanCNN(1, (4, 4), kernels=(4, 3), strides=(2, 2))
    assert (cnn.window, cnn.stride) == (8, 4)
