"""How much the reordered loop buys: scanning ~60 s of log-mel features four ways.

    python benchmarks/scan_mlp_speed.py [--seconds 60] [--threads 1] [--repeats 3]

1. loop MLP                 ScanMLP.scan: one Python call per window (the baseline)
2. non-distributed CNN      to_conv(mlp): the same arithmetic in one batched conv call
3. loop distributed         DistributedScanCNN.scan_loop: the small-kernel net, window by window
4. distributed CNN          DistributedScanCNN: the same net over the whole signal, overlap shared

1 and 2 compute the same numbers (as do 3 and 4); the benchmark checks that
before timing. Times are the best of ``--repeats`` runs; ratios are to the
loop MLP measured in the same run. Random features and weights: the speed does
not depend on the values.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch

from audioconv.models.scan_mlp import (
    DistributedScanCNN,
    ScanMLP,
    count_parameters,
    distributed_as_mlp,
    macs_per_frame,
    to_conv,
    window_macs,
)

N_MELS = 40
FRAMES_PER_SECOND = 100  # 10 ms feature hop
HIDDEN = (64, 32)  # loop MLP
CHANNELS, KERNELS, STRIDES = (32, 32, 32, 32, 32), (4, 8, 8, 8, 8), (2, 1, 1, 1, 1)  # K = 60 frames, S = 2


def best_time(function: Callable[[], torch.Tensor], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the feature sequence")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cnn = DistributedScanCNN(N_MELS, CHANNELS, KERNELS, STRIDES).eval()
    mlp = ScanMLP(N_MELS, cnn.window, HIDDEN, stride=cnn.stride).eval()
    conv = to_conv(mlp).eval()
    x = torch.randn(1, N_MELS, int(args.seconds * FRAMES_PER_SECOND))

    with torch.no_grad():
        assert torch.allclose(mlp.scan(x), conv(x), atol=1e-4), "to_conv disagrees with the loop"
        assert torch.allclose(cnn.scan_loop(x), cnn(x), atol=1e-4), "distributed CNN disagrees with its loop"
        assert torch.allclose(distributed_as_mlp(cnn).scan(x[..., :500]), cnn(x[..., :500]), atol=1e-4)
        forms = [
            ("loop MLP", mlp, lambda: mlp.scan(x), macs_per_frame(mlp)),
            ("non-distributed CNN", conv, lambda: conv(x), macs_per_frame(conv)),
            ("loop distributed", cnn, lambda: cnn.scan_loop(x), window_macs(cnn)),
            ("distributed CNN", cnn, lambda: cnn(x), macs_per_frame(cnn)),
        ]
        frames = mlp.scan(x).shape[-1]
        print(
            f"{args.seconds:g} s of {N_MELS}-bin features ({x.shape[-1]} frames) -> {frames} scores; "
            f"window K = {cnn.window} frames, stride S = {cnn.stride}; {args.threads} thread(s), best of {args.repeats}"
        )
        print(f"{'form':<22}{'time (ms)':>11}{'x loop':>9}{'params':>10}{'MACs/frame':>12}")
        baseline = None
        for name, model, function, macs in forms:
            seconds = best_time(function, args.repeats)
            baseline = baseline or seconds
            print(f"{name:<22}{1000 * seconds:>11.1f}{seconds / baseline:>9.3f}{count_parameters(model):>10,}{macs:>12,}")


if __name__ == "__main__":
    main()
