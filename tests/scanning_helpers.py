"""Shared by the scan, streaming and ONNX-stream tests: a seeded test signal, seeded models, pushing in pieces.

Test models get BatchNorm statistics away from (0, 1) and their logits centred and spread
(``LOGIT_SPREAD``), so probabilities are neither flat nor saturated and exactness checks mean something.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import torch

from audioconv.models import Detector

SAMPLE_RATE = 16_000
AMPLITUDE = 0.1
LOGIT_SPREAD = 1.0  # std of the test models' logits, like a trained model's near its threshold


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny forward passes: on a busy 2-core machine a second OpenMP thread only adds stalls.

    Import it into a test module to use it there (it is autouse within that module).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_wave(num_samples: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.7 * t) > 0)  # bursts: scores that vary in time
    return (AMPLITUDE * (rng.standard_normal(num_samples) + tone)).astype(np.float32)


def make_model(model_class: type[Detector], seed: int = 0, **config) -> Detector:
    torch.manual_seed(seed)
    model = model_class(**config)
    model.train()
    with torch.no_grad():
        for _ in range(3):  # running BatchNorm statistics away from (0, 1)
            model(torch.randn(4, SAMPLE_RATE) * AMPLITUDE + 0.01)
        model.eval()
        logits = model(torch.from_numpy(make_wave(2 * SAMPLE_RATE, seed=seed + 100))[None])
        gain = LOGIT_SPREAD / logits.std()  # centered, spread logits: probabilities neither flat nor saturated
        model.head.weight.mul_(gain)
        model.head.bias.copy_(gain * (model.head.bias - logits.mean()))
    return model


def push_in_pieces(push: Callable[[np.ndarray], np.ndarray], wave: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """``push`` ``wave`` in pieces cycling through ``sizes``; what each push returned, in order."""
    pieces, start, turn = [], 0, 0
    while start < wave.size:
        size = sizes[turn % len(sizes)]
        pieces.append(push(wave[start : start + size]))
        start, turn = start + size, turn + 1
    return pieces
