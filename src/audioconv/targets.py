"""Per-frame training targets from where the keyword is in a clip.

Output frame ``i`` of a detector sees input samples ``[i * hop, i * hop +
receptive_field)`` and nothing else (``audioconv.geometry``). A scan should
fire on a frame exactly when its window holds the keyword, so, for a keyword
at samples ``[start, end)`` of a clip:

- a frame whose window holds the **whole** keyword is a positive (target 1);
- a frame whose window holds **none** of it is a negative (target 0);
- a frame that sees part of it is ignored (mask 0): "welco" is neither a
  keyword nor clearly not one, and the loss should not decide.

Every frame of a negative clip (span ``[-1, -1]``) is a negative. A keyword
longer than the receptive field, or cut by the clip's edges so that no frame
sees it whole, has no positive frame: the loss falls back to the clip's max
for such clips (``audioconv.module``).
"""

from __future__ import annotations

import torch

NO_SPAN = (-1.0, -1.0)  # the span of a clip without the keyword


def frame_windows(num_frames: int, hop: int, receptive_field: int, device: torch.device | None = None) -> torch.Tensor:
    """[num_frames, 2]: the input samples ``[first, end)`` each output frame sees."""
    first = torch.arange(num_frames, device=device, dtype=torch.float32) * hop
    return torch.stack([first, first + receptive_field], dim=-1)


def frame_targets(
    spans: torch.Tensor, num_frames: int, hop: int, receptive_field: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and mask [B, num_frames] for keyword spans [B, 2] (samples, ``[start, end)``; ``-1`` = none).

    ``targets`` is 1 where the frame's window holds the whole span, else 0;
    ``mask`` is 1 where the target is to be trained (whole span or none of
    it), 0 where the window sees part of the keyword.
    """
    spans = spans.to(torch.float32).reshape(-1, 2)  # sample indices: exact in float32 up to 2**24
    windows = frame_windows(num_frames, hop, receptive_field, spans.device)
    first, last = windows[None, :, 0], windows[None, :, 1]  # [1, T']
    start, end = spans[:, :1], spans[:, 1:]  # [B, 1]
    present = (end > start) & (start >= 0)  # [B, 1]
    whole = present & (first <= start) & (end <= last)
    overlap = present & (first < end) & (start < last)
    targets = whole.to(torch.float32)
    mask = (whole | ~overlap).to(torch.float32)
    return targets, mask
