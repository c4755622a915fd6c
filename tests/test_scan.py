"""Every scan equals the naive one: a detector re-run on every window IS the convolutional pass.

Models are randomly initialized with non-trivial BatchNorm statistics (a few
training-mode passes) and a head rescaled so their logits are centered and
spread, so the probabilities vary over (0, 1) and a misaligned frame could not
hide in a flat or saturated score.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from audioconv.models import Conv1dDetector, Detector, SpectrogramDetector
from audioconv.scan import StreamingScanner, scan_chunked, scan_naive, scan_whole
from scanning_helpers import SAMPLE_RATE, make_model, make_wave

MODELS = [Conv1dDetector, SpectrogramDetector]
TOLERANCE = 1e-5
FLOAT32_ROUNDING = 1e-7  # probabilities come back as float32, whatever the model's dtype
WAVE_SECONDS = 3.0
ODD_TAIL = 123  # samples past a whole second: the length is not a multiple of the hop


@pytest.fixture(scope="module", params=MODELS, ids=lambda c: c.__name__)
def case(request) -> tuple[Detector, np.ndarray, np.ndarray]:
    """(model, wave, naive scores) — the naive scan is the slow part, so it is computed once per model."""
    model = make_model(request.param)
    wave = make_wave(int(WAVE_SECONDS * SAMPLE_RATE) + ODD_TAIL)
    return model, wave, scan_naive(model, wave)


def assert_same(scores: np.ndarray, reference: np.ndarray) -> None:
    assert scores.dtype == np.float32 and scores.ndim == 1
    assert scores.shape == reference.shape
    assert np.max(np.abs(scores - reference), initial=0.0) <= TOLERANCE


def test_naive_scan_has_the_geometry_and_spread(case) -> None:
    model, wave, naive = case
    assert naive.size == model.output_length(wave.size) == (wave.size - model.receptive_field) // model.hop + 1
    assert naive.max() - naive.min() > 0.1, "probabilities too flat to test alignment"


def test_whole_equals_naive(case) -> None:
    model, wave, naive = case
    assert_same(scan_whole(model, wave), naive)


@pytest.mark.parametrize("chunk_seconds", [1e-3, 0.95, 1.0, 1.3, 100.0])
def test_chunked_equals_naive(case, chunk_seconds: float) -> None:
    model, wave, naive = case
    assert_same(scan_chunked(model, wave, chunk_seconds=chunk_seconds), naive)


def test_chunked_of_float64_and_tensor_input(case) -> None:
    model, wave, naive = case
    assert_same(scan_chunked(model, wave.astype(np.float64), chunk_seconds=1.0), naive)
    assert_same(scan_chunked(model, torch.from_numpy(wave), chunk_seconds=1.0), naive)


def test_chunked_scan_of_a_read_only_memory_map(case, tmp_path) -> None:
    """A long recording can be scanned straight from a memory-mapped file, never loaded whole."""
    model, wave, naive = case
    np.save(tmp_path / "wave.npy", wave)
    mapped = np.load(tmp_path / "wave.npy", mmap_mode="r")
    assert_same(scan_chunked(model, mapped, chunk_seconds=1.0), naive)


@pytest.mark.parametrize("chunk", [1280, 16_000, 777, 100_000])
def test_streaming_equals_naive(case, chunk: int) -> None:
    model, wave, naive = case
    scanner = StreamingScanner(model)
    pieces = []
    for start in range(0, wave.size, chunk):
        pieces.append(scanner.push(wave[start : start + chunk]))
        assert scanner.pending_samples < model.receptive_field  # only the tail the next frames need
    assert scanner.frames_emitted == naive.size
    assert_same(np.concatenate(pieces), naive)


def test_streaming_one_sample_at_a_time(case) -> None:
    model, wave, naive = case
    short = wave[: model.receptive_field + 5 * model.hop + 7]
    scanner = StreamingScanner(model)
    pieces = [scanner.push(short[i : i + 1]) for i in range(short.size)]
    assert sum(p.size for p in pieces) == 6
    assert_same(np.concatenate(pieces), naive[:6])


def test_streaming_random_chunk_sizes_and_reset(case) -> None:
    model, wave, naive = case
    rng = np.random.default_rng(7)
    scanner = StreamingScanner(model, chunk_seconds=1.2)  # small internal runs: big pushes are split
    for _ in range(2):  # the second pass after reset() must start from frame 0 again
        pieces, start = [], 0
        while start < wave.size:
            size = int(rng.choice([1, 2, 319, 321, 1280, 5000, 40_000]))
            pieces.append(scanner.push(wave[start : start + size]))
            start += size
        assert_same(np.concatenate(pieces), naive)
        scanner.reset()
        assert scanner.frames_emitted == 0 and scanner.pending_samples == 0


@pytest.mark.parametrize("model_class", MODELS, ids=lambda c: c.__name__)
def test_identity_is_exact_in_float64(model_class) -> None:
    """In float64 the scans agree to rounding of the float32 output: the identity is exact, not approximate."""
    model = make_model(model_class).double()
    wave = make_wave(model.receptive_field + 9 * model.hop + ODD_TAIL).astype(np.float64)
    naive = scan_naive(model, wave)
    assert naive.size == 10
    for scores in (scan_whole(model, wave), scan_chunked(model, wave, chunk_seconds=1.0), StreamingScanner(model).push(wave)):
        np.testing.assert_allclose(scores, naive, rtol=0, atol=FLOAT32_ROUNDING)


@pytest.mark.parametrize("model_class", MODELS, ids=lambda c: c.__name__)
def test_edge_lengths(model_class) -> None:
    """Exactly one receptive field -> one frame; one sample less -> none, from every scan."""
    model = make_model(model_class)
    rf, hop = model.receptive_field, model.hop
    for length, frames in ((rf, 1), (rf + hop - 1, 1), (rf + hop, 2), (rf - 1, 0), (0, 0)):
        wave = make_wave(length)
        naive = scan_naive(model, wave)
        assert naive.size == frames
        assert_same(scan_whole(model, wave), naive)
        assert_same(scan_chunked(model, wave, chunk_seconds=0.5), naive)
        assert_same(StreamingScanner(model).push(wave), naive)


def test_scans_use_eval_mode_and_restore_training(case) -> None:
    model, wave, naive = case
    model.train()
    try:
        assert_same(scan_chunked(model, wave, chunk_seconds=1.0), naive)
        assert model.training
    finally:
        model.eval()


def test_chunks_are_bounded_views_of_the_wave(case) -> None:
    """Chunked scanning never copies the signal, and no forward pass sees more than one chunk."""
    model, wave, naive = case
    chunk_seconds = 1.1
    low = wave.__array_interface__["data"][0]
    high = low + wave.nbytes
    lengths = []

    def check(module, inputs) -> None:
        batch = inputs[0]
        assert low <= batch.data_ptr() < high, "chunk was copied"
        lengths.append(batch.shape[-1])

    handle = model.register_forward_pre_hook(check)
    try:
        assert_same(scan_chunked(model, wave, chunk_seconds=chunk_seconds), naive)
    finally:
        handle.remove()
    assert len(lengths) > 1
    assert max(lengths) <= chunk_seconds * SAMPLE_RATE


@pytest.mark.slow
def test_hour_long_scan_in_bounded_memory() -> None:
    """One hour of audio: the wave (230 MB) plus scanning stays under 500 MB above the baseline."""
    code = textwrap.dedent(
        """
        import resource, numpy as np
        from audioconv.models import SpectrogramDetector
        from audioconv.scan import scan_chunked
        model = SpectrogramDetector().eval()
        scan_chunked(model, np.zeros(16_000 * 5, np.float32))
        base = int(open("/proc/self/statm").read().split()[1]) * 4096
        wave = np.full(16_000 * 3600, 0.01, np.float32)
        scores = scan_chunked(model, wave)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        assert scores.size == model.output_length(wave.size)
        print((peak - base) / 2**20)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(done.stdout.strip()) < 500
