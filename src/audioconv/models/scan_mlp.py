"""A CNN is an MLP scanned along the signal: the identity, written out three ways.

Take a small MLP that looks at ONE window of K feature frames (x[B, C, T]: C mel
bins, or C = 1 raw samples) and says "keyword or not". To scan a recording,
slide it along time S frames at a time and call it on every window:

    for t in range(0, T - K + 1, S):            # ScanMLP.scan: the naive loop
        score[t // S] = mlp(x[:, :, t : t + K])

1. Non-distributed CNN (``to_conv``). The MLP's first layer multiplies the
   flattened window by a matrix W1 [H1, C*K]. Flattening x[:, :, t:t+K] puts
   channel c, time k at index c*K + k, so ``W1.view(H1, C, K)`` is exactly a
   Conv1d weight [out, in, kernel]: a Conv1d(C, H1, K, stride=S) computes the
   same H1 numbers for every window at once. Every later layer sees one vector
   per window and never mixes windows, so it is a 1x1 convolution with the same
   weights. Same products, same sums, one batched call instead of a Python loop:
   the numbers agree to rounding. No work is saved, though: each output frame
   still costs C*K*H1 + ... multiply-adds, because the first layer's K-frame
   kernel is applied afresh at every stride.

2. Distributed CNN (``DistributedScanCNN``). Split the window across layers:
   small kernels k_i with strides s_i, chosen so that the receptive field
   1 + sum_i (k_i - 1) * prod_{j<i} s_j equals K and the hop prod_i s_i equals S.
   Restricted to one window, this network is still an MLP (``distributed_as_mlp``
   builds its dense matrices): a layer-i unit at window position p reads
   layer-(i-1) positions p*s_i ... p*s_i + k_i - 1, with the SAME kernel for
   every p. That is weight sharing inside the window: a block-Toeplitz matrix.

   Why the reordered loop gives the same numbers: the loop is "for each window,
   for each layer, for each position in the window"; the CNN is "for each layer,
   for each position in the whole signal". Every window starts at a multiple of
   S, and S is a multiple of every layer's jump (product of the strides so
   far), so the window's own layer-i grid lands exactly on the global layer-i
   grid: the unit the loop computes at window position p of window t is the
   unit the CNN computes at global position t*S/jump_i + p. Same inputs, same
   weights, same value. Swapping the loops only changes WHEN it is computed.

   Where the work is shared: neighbouring windows overlap by K - S frames, and
   so do their layer-i grids. The loop recomputes every unit in the overlap
   once per window that contains it; the CNN computes it once and lets every
   window that needs it read it. Per output frame the CNN does only S / jump_i
   new positions of layer i instead of the window's whole layer-i grid: that
   is the saving (``macs_per_frame`` vs ``window_macs``), and it grows with
   the overlap K / S.

``count_parameters`` and ``macs_per_frame`` put numbers on the three forms:
loop MLP == non-distributed CNN (same weights, same arithmetic), and the
distributed CNN, with far fewer parameters and, when S < K, fewer
multiply-adds per output frame than scanning its own window-MLP by a loop.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from audioconv import geometry
from audioconv.geometry import TimeLayer


class ScanMLP(nn.Module):
    """An MLP over one window of K frames: window [B, C, K] -> one logit [B].

    The window is flattened channel-major (``window.flatten(1)``: index c*K + k),
    which is the memory order of a Conv1d weight [out, in, kernel]. ``stride`` is
    the default hop of ``scan``; the MLP itself has no notion of time.
    """

    def __init__(self, in_channels: int, window: int, hidden: Sequence[int] = (64, 32), stride: int = 1) -> None:
        super().__init__()
        self.in_channels, self.window, self.stride = in_channels, window, stride
        sizes = [in_channels * window, *hidden, 1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    @property
    def time_layers(self) -> list[TimeLayer]:
        return [TimeLayer("window", self.window, self.stride)]

    def forward_window(self, window: Tensor) -> Tensor:
        """window [B, C, K] -> logit [B]."""
        h = window.flatten(1)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = torch.relu(h)
        return h.squeeze(-1)

    def scan(self, x: Tensor, stride: int | None = None) -> Tensor:
        """The naive scan: x [B, C, T] -> logits [B, T'], T' = (T - K) // S + 1, one call per window."""
        stride = stride or self.stride
        starts = range(0, x.shape[-1] - self.window + 1, stride)
        return torch.stack([self.forward_window(x[..., t : t + self.window]) for t in starts], dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        return self.scan(x)


def to_conv(mlp: ScanMLP, stride: int | None = None) -> nn.Sequential:
    """The same MLP as a convolution: x [B, C, T] -> logits [B, T'], equal to ``mlp.scan(x, stride)``.

    First layer: Conv1d(C, H1, K, stride=S) with weight W1.view(H1, C, K) (valid
    because the window was flattened channel-major). Later layers: 1x1 convs.
    """
    stride = stride or mlp.stride
    modules: list[nn.Module] = []
    for i, linear in enumerate(mlp.layers):
        if i == 0:
            conv = nn.Conv1d(mlp.in_channels, linear.out_features, mlp.window, stride=stride)
            weight = linear.weight.view(linear.out_features, mlp.in_channels, mlp.window)
        else:
            conv = nn.Conv1d(linear.in_features, linear.out_features, 1)
            weight = linear.weight.unsqueeze(-1)
        conv = conv.to(linear.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(weight)
            conv.bias.copy_(linear.bias)
        modules.append(conv)
        if i < len(mlp.layers) - 1:
            modules.append(nn.ReLU())
    modules.append(nn.Flatten(1))  # [B, 1, T'] -> [B, T']
    return nn.Sequential(*modules)


class DistributedScanCNN(nn.Module):
    """The window split across layers: Conv1d(k_i, s_i) -> ReLU per layer, then a 1x1 head.

    x [B, C, T] -> logits [B, T'] with receptive field K = 1 + sum (k_i - 1) prod_{j<i} s_j
    and hop S = prod s_i (see ``audioconv.geometry``). E.g. kernels (4, 3), strides
    (2, 2): K = 1 + 3 + 2*2 = 8 frames, S = 4.
    """

    def __init__(
        self, in_channels: int, channels: Sequence[int], kernels: Sequence[int], strides: Sequence[int]
    ) -> None:
        super().__init__()
        if not len(channels) == len(kernels) == len(strides):
            raise ValueError("channels, kernels and strides need one entry per layer")
        self.in_channels = in_channels
        self.kernels, self.strides = tuple(kernels), tuple(strides)
        sizes = [in_channels, *channels]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, k, stride=s) for a, b, k, s in zip(sizes[:-1], sizes[1:], kernels, strides))
        self.head = nn.Conv1d(sizes[-1], 1, 1)

    @property
    def time_layers(self) -> list[TimeLayer]:
        return [TimeLayer(f"conv{i}", k, s) for i, (k, s) in enumerate(zip(self.kernels, self.strides))]

    @property
    def window(self) -> int:
        """K: input frames behind one output frame."""
        return geometry.receptive_field(self.time_layers)

    @property
    def stride(self) -> int:
        """S: input frames between output frames."""
        return geometry.hop(self.time_layers)

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = torch.relu(conv(x))
        return self.head(x).squeeze(1)

    def scan_loop(self, x: Tensor) -> Tensor:
        """The same network run on each window separately, by a loop: no work shared between windows."""
        starts = range(0, x.shape[-1] - self.window + 1, self.stride)
        return torch.stack([self(x[..., t : t + self.window]).squeeze(-1) for t in starts], dim=-1)


def conv_as_matrix(conv: nn.Conv1d, length: int) -> tuple[Tensor, Tensor]:
    """The dense matrix and bias of ``conv`` on an input of ``length`` steps, flattened channel-major.

    Output unit (o, p) reads input units (c, p*s + j) with weight W[o, c, j], for
    every output position p: the same block copied along the diagonal.
    """
    out_channels, in_channels, kernel = conv.weight.shape
    stride = conv.stride[0]
    out_length = (length - kernel) // stride + 1
    matrix = conv.weight.new_zeros(out_channels, out_length, in_channels, length)
    for p in range(out_length):
        matrix[:, p, :, p * stride : p * stride + kernel] = conv.weight
    bias = conv.bias.detach().repeat_interleave(out_length)  # index o*L + p, matching the flatten
    return matrix.reshape(out_channels * out_length, in_channels * length).detach(), bias


def distributed_as_mlp(cnn: DistributedScanCNN) -> ScanMLP:
    """The distributed CNN restricted to one window, as a plain ScanMLP whose loop equals the CNN.

    Hidden layer i has channels_i * L_i units (L_i = positions of layer i inside
    one window); its weight matrix is block-Toeplitz (``conv_as_matrix``). The
    last conv leaves exactly one position, so the head is an ordinary Linear.
    """
    lengths, length = [], cnn.window
    for conv in cnn.convs:
        lengths.append(length)
        length = (length - conv.kernel_size[0]) // conv.stride[0] + 1
    assert length == 1, "a window of K frames must leave exactly one position after the last conv"
    hidden = [conv.out_channels * ((n - conv.kernel_size[0]) // conv.stride[0] + 1) for conv, n in zip(cnn.convs, lengths)]
    mlp = ScanMLP(cnn.in_channels, cnn.window, hidden, stride=cnn.stride).to(cnn.head.weight.dtype)
    with torch.no_grad():
        for linear, conv, n in zip(mlp.layers, cnn.convs, lengths):
            matrix, bias = conv_as_matrix(conv, n)
            linear.weight.copy_(matrix)
            linear.bias.copy_(bias)
        mlp.layers[-1].weight.copy_(cnn.head.weight.view(1, -1))
        mlp.layers[-1].bias.copy_(cnn.head.bias)
    return mlp


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (``geometry.count_parameters``)."""
    return geometry.count_parameters(model)


def macs_per_frame(model: nn.Module) -> int:
    """Multiply-adds per output frame in a long scan.

    - ScanMLP: the whole MLP once per window: sum of in * out over its layers.
    - A conv stack (``to_conv`` output or DistributedScanCNN): layer i produces
      S / jump_i positions per output frame (jump_i = product of its stride and
      the strides before it), each costing out * in * kernel.
    """
    if isinstance(model, ScanMLP):
        return sum(layer.in_features * layer.out_features for layer in model.layers)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    hop = math.prod(conv.stride[0] for conv in convs)
    total, jump = 0, 1
    for conv in convs:
        jump *= conv.stride[0]
        total += conv.weight.numel() * hop // jump
    return total


def window_macs(cnn: DistributedScanCNN) -> int:
    """Multiply-adds to run the distributed CNN on ONE isolated window (``scan_loop``): nothing shared.

    Counts only the real products (the shared kernel at each position inside the
    window), not the zeros of the dense ``distributed_as_mlp`` matrices.
    """
    total, length = 0, cnn.window
    for conv in cnn.convs:
        length = (length - conv.kernel_size[0]) // conv.stride[0] + 1
        total += conv.weight.numel() * length
    return total + cnn.head.weight.numel()
