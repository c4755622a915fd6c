"""What one shared FFT saves the pitch-gated model: its offline scan, the copies' FFTs shared against separate.

    python benchmarks/gate_fft.py [--seconds 60] [--threads 1] [--repeats 5]

``PitchGated`` scores every frame with one of three copies of the spectrogram
network that differ only in their mel filterbank. At inference they share one
framed FFT (``PitchGated.shares_magnitude``); the baseline, run in the same
process on the same audio, is each copy with its own (``run_branches``, what a
streaming copy still does). Prints the best of ``--repeats`` for each, their
ratio, and the largest difference between the two outputs (expected: 0).
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch

from audioconv.checkpoints import load_detector
from audioconv.models import PitchGated
from audioconv.models.base import run_branches
from audioconv.registry import shipped_weights


def best_ms(run: Callable[[], torch.Tensor], repeats: int) -> float:
    run()  # warm-up: allocations, lazy initialisation
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio scanned in one forward pass")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_detector(shipped_weights("spectrogram"))
    if not isinstance(model, PitchGated):
        raise SystemExit("the shipped spectrogram weights are not pitch-gated: nothing to compare")
    model.eval()
    wave = 0.1 * torch.randn(1, round(args.seconds * model.sample_rate), generator=torch.Generator().manual_seed(0))

    def separate() -> torch.Tensor:
        *logits, voice = run_branches(model.branches, wave)
        return model.combine(logits, voice)

    with torch.inference_mode():
        difference = (model(wave) - separate()).abs().max().item()
        alone, shared = best_ms(separate, args.repeats), best_ms(lambda: model(wave), args.repeats)
    print(f"pitch-gated spectrogram, {args.seconds:g} s of audio, {args.threads} thread(s), best of {args.repeats}:")
    print(f"  each copy its own FFT: {alone:8.1f} ms")
    print(f"  one shared FFT:        {shared:8.1f} ms   ({alone / shared:.2f}x faster; largest output difference {difference:.1e})")


if __name__ == "__main__":
    main()
