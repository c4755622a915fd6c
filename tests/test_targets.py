"""Frame targets from the keyword's span, checked against the models' real geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audioconv.data import place_keyword, place_keyword_span
from audioconv.models import Conv1dDetector, SpectrogramDetector
from audioconv.module import keyword_loss, loss_settings
from audioconv.targets import NO_SPAN, frame_targets

MODELS = [Conv1dDetector, SpectrogramDetector]
CLIP = 24_000  # 1.5 s, the training clip


def test_targets_by_hand() -> None:
    # hop 10, receptive field 30: frame i sees [10 i, 10 i + 30)
    targets, mask = frame_targets(torch.tensor([[25.0, 40.0], [-1.0, -1.0]]), 6, hop=10, receptive_field=30)
    # windows: [0,30) [10,40) [20,50) [30,60) [40,70) [50,80)
    assert targets[0].tolist() == [0, 1, 1, 0, 0, 0]
    assert mask[0].tolist() == [0, 1, 1, 0, 1, 1]  # [0,30) and [30,60) see part of it; [40,70) none (end is exclusive)
    assert targets[1].tolist() == [0] * 6 and mask[1].tolist() == [1] * 6
    # a keyword longer than the receptive field: no positive frame, none of the frames that see it is trained
    targets, mask = frame_targets(torch.tensor([[0.0, 45.0]]), 6, hop=10, receptive_field=30)
    assert targets.sum() == 0 and mask[0].tolist() == [0, 0, 0, 0, 0, 1]


@pytest.mark.parametrize("model_class", MODELS)
def test_targets_match_the_model_geometry(model_class) -> None:
    """A burst over the keyword's span: negative frames never see it, positive frames see all of it."""
    torch.manual_seed(0)
    model = model_class().double().eval()
    hop, rf = model.hop, model.receptive_field
    length = rf + 60 * hop  # long enough for frames on both sides of the keyword
    frames = model.output_length(length)
    # not on a multiple of the hop (a periodic Hann window is 0 at each STFT frame's first sample);
    # the end lands exactly on the end of a window: that frame must be a positive
    start = 6 * hop + 37
    end = 2 * hop + rf
    targets, mask = frame_targets(torch.tensor([[start, end]]), frames, hop, rf)
    targets, mask = targets[0].bool(), mask[0].bool()
    positive, negative, ignored = targets, mask & ~targets, ~mask
    assert positive.tolist() == [2 <= i <= 6 for i in range(frames)]
    assert negative.any() and ignored.any()

    # geometry: a positive frame's window holds [start, end), a negative one's misses it, an ignored one overlaps it
    for i in range(frames):
        first, last = i * hop, i * hop + rf
        if positive[i]:
            assert first <= start and end <= last
        elif negative[i]:
            assert last <= start or end <= first
        else:
            assert first < end and start < last

    base = torch.randn(1, length, dtype=torch.float64) * 0.1
    with torch.no_grad():
        assert model(base).shape[-1] == frames
        reference = model(base)[0]
        burst = base.clone()
        burst[0, start:end] += torch.randn(end - start, dtype=torch.float64)
        changed = (model(burst)[0] - reference).abs() > 1e-12
        assert not torch.any(changed & negative), "a negative frame sees the keyword"
        assert torch.all(changed[positive | ignored]), "a frame that sees the keyword does not react to it"
        # the span's first and last samples both reach every positive frame (a few inputs: ReLUs may block one path)
        for position in (start, end - 1):
            reached = torch.zeros(frames, dtype=torch.bool)
            for trial in range(4):
                other = torch.randn(1, length, dtype=torch.float64, generator=torch.Generator().manual_seed(trial))
                probe = other.clone()
                probe[0, position] += 5.0
                reached |= (model(probe)[0] - model(other)[0]).abs() > 1e-13
            assert torch.all(reached[positive]), f"a positive frame does not see sample {position} of the keyword"
            assert not torch.any(reached[negative])


def test_dataset_span_is_where_the_keyword_lands() -> None:
    rng = np.random.default_rng(0)
    wave = np.zeros(40_000, np.float32)
    wave[10_000:19_000] = 1.0
    for seed in range(20):
        clip, span = place_keyword_span(wave, 10_000, 19_000, CLIP, np.random.default_rng(seed))
        assert span.dtype == np.float32 and span[1] - span[0] == 9_000
        assert np.all(clip[int(span[0]) : int(span[1])] == 1.0)
        assert clip.sum() == 9_000  # the whole keyword, nothing else
        # same draws as place_keyword: clips do not change
        assert np.array_equal(clip, place_keyword(wave, 10_000, 19_000, CLIP, np.random.default_rng(seed)))
    # longer than the clip: centered, span clamped to the clip
    _, span = place_keyword_span(np.ones(60_000, np.float32), 1_000, 51_000, CLIP, rng)
    assert span.tolist() == [0.0, CLIP]


@pytest.mark.parametrize("pooling", ["max", "lse", "frames"])
def test_losses_train_the_right_frames(pooling: str) -> None:
    settings = loss_settings({"pooling": pooling})
    logits = torch.zeros(2, 8, requires_grad=True)
    label = torch.tensor([1.0, 0.0])
    spans = torch.tensor([[25.0, 40.0], list(NO_SPAN)])
    loss = keyword_loss(logits, label, spans, hop=10, receptive_field=30, settings=settings)
    loss.backward()
    grad = logits.grad
    assert torch.all(grad[1] >= 0) and grad[1].sum() > 0, "a negative clip's frames are pushed down"
    if pooling == "frames":
        # frames 1, 2 hold the whole keyword: pushed up; frames 0, 3 see part of it: untouched by the frame loss
        assert grad[0, 1] < 0 and grad[0, 2] < 0
        assert grad[0, 4:].ge(0).all()
    if pooling == "lse":
        assert torch.all(grad[0] < 0), "soft pooling: every frame of a positive clip gets a share"


def test_loss_settings_are_checked() -> None:
    assert loss_settings(None)["pooling"] == "frames"  # the default, as in conf/config.yaml
    with pytest.raises(ValueError):
        loss_settings({"pooling": "mean"})
    with pytest.raises(ValueError):
        loss_settings({"pooling": "lse", "sharpness": 0})
    with pytest.raises(ValueError):
        loss_settings({"temperature": 1.0})
