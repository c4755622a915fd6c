"""The phonetic training signal: phoneme targets from text, whole-utterance batches, the CTC head, and how the
module adds its loss without touching the keyword detector's shipped weights or running statistics."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader

from audioconv import phonetic, utterances
from audioconv.data import ClipDataset, KeywordDataModule, WaveStore
from audioconv.models import SpectrogramDetector
from audioconv.module import KeywordModule, norms_evaluating


def fake_phonemize(words):
    """One IPA-like symbol per letter, a stress mark before the word: no espeak-ng needed."""
    return ["ˈ" + " ".join(word.replace("'", "")) for word in words]


def test_settings_fill_defaults_and_refuse_bad_values() -> None:
    assert phonetic.phonetic_settings(None) == phonetic.DEFAULT_PHONETIC
    assert phonetic.phonetic_settings({"weight": 0.3})["weight"] == 0.3
    assert phonetic.phonetic_settings({"depth": 2})["depth"] == 2
    for bad in ({"weight": -1}, {"batch_size": 0}, {"window_seconds": 1.0, "margin_seconds": 0.5}, {"margin_seconds": -0.1},
                {"weights": 1.0}, {"depth": -1}, {"depth": 1.5}, {"depth": "2"}, {"depth": True}):
        with pytest.raises(ValueError):
            phonetic.phonetic_settings(bad)


def test_sounds_drop_stress_and_keep_marks_with_their_symbol() -> None:
    assert phonetic.sounds("juː ɑːɹ wˈɛlkʌm") == ("j", "uː", "ɑː", "ɹ", "w", "ɛ", "l", "k", "ʌ", "m")
    assert phonetic.sounds("bˈʌʔn̩") == ("b", "ʌ", "ʔ", "n̩")


def test_targets_spell_each_word_in_order_and_name_an_unknown_word() -> None:
    texts = ["Welcome, Bo!", "bob's here?"]
    lexicon = phonetic.lexicon(texts, phonemize=fake_phonemize)
    assert set(lexicon) == {"welcome", "bo", "bob's", "here"}
    symbols = phonetic.inventory(lexicon)
    assert symbols == tuple(sorted(set("welcomboshr")))
    targets = phonetic.phoneme_targets("bo, welcome?", lexicon, symbols)
    assert [symbols[i - 1] for i in targets] == list("bowelcome")
    assert phonetic.BLANK not in targets
    with pytest.raises(KeyError, match="jo"):
        phonetic.phoneme_targets("welcome jo", lexicon, symbols)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (Debian package espeak-ng)")
def test_espeak_lexicon_is_a_canonical_pronunciation() -> None:
    lexicon = phonetic.lexicon(["You are welcome!", "Malcolm is here."])
    assert lexicon["welcome"] == ("w", "ɛ", "l", "k", "ʌ", "m")
    assert lexicon["malcolm"][-3:] == ("k", "ə", "m")  # the confusable shares the keyword's tail, not its head


def spoken_set(lengths, targets, window=4000, margin=500, draws=12, augmentation=None):
    waves = [np.full(n, 0.1 * (i + 1), np.float32) for i, n in enumerate(lengths)]
    return utterances.UtteranceDataset(waves, targets, [], draws_per_epoch=draws, window_samples=window,
                                       margin_samples=margin, seed=3, augmentation=augmentation)


def test_an_utterance_lies_whole_inside_its_window_with_margins() -> None:
    dataset = spoken_set([1000, 2000, 3000, 3500, 400], [[1, 2], [3], [1], [2], []])
    assert dataset.fits.tolist() == [0, 1, 2]  # 3500 samples leave no 500-sample margins; no phonemes: left out
    offsets = set()
    for key in range(3 * len(dataset)):
        wave, target = dataset[key]
        assert wave.shape == (4000,)
        filled = np.flatnonzero(wave.numpy())
        index = int(round(float(wave[filled[0]]) / 0.1)) - 1  # which utterance: its constant level
        assert len(filled) == [1000, 2000, 3000][index] and filled[-1] - filled[0] + 1 == len(filled)
        assert 500 <= filled[0] and filled[-1] < 3500
        assert target.tolist() == [[1, 2], [3], [1]][index]
        offsets.add(int(filled[0]))
    assert len(offsets) > 3  # at random offsets, not one place


def test_utterances_are_seeded_and_every_one_is_drawn() -> None:
    dataset = spoken_set([1000] * 5, [[1]] * 5, draws=4)
    first = [dataset.utterance(0, p) for p in range(4)] + [dataset.utterance(1, p) for p in range(4)]
    assert sorted(first[:5]) == [0, 1, 2, 3, 4]  # a permutation before anything repeats, across epochs
    again = spoken_set([1000] * 5, [[1]] * 5, draws=4)
    assert all(torch.equal(dataset[k][0], again[k][0]) for k in range(8))  # the same seed: the same items
    other = utterances.UtteranceDataset(dataset.waves, dataset.targets, [], 4, 4000, 500, seed=4, augmentation=None)
    assert [other.utterance(0, p) for p in range(4)] != first[:4]  # another seed: another order


def test_no_utterance_that_fits_is_an_error() -> None:
    with pytest.raises(ValueError, match="no utterance fits"):
        spoken_set([3900], [[1]])


def test_collate_pads_targets_and_counts_them() -> None:
    items = [(torch.zeros(8), torch.tensor([3, 1, 2])), (torch.ones(8), torch.tensor([5]))]
    waves, targets, lengths = utterances.collate(items)
    assert waves.shape == (2, 8)
    assert targets.tolist() == [[3, 1, 2], [5, 0, 0]] and lengths.tolist() == [3, 1]


def test_the_head_gives_frame_log_probabilities_and_a_gradient_to_the_features() -> None:
    torch.manual_seed(0)
    head = phonetic.PhoneticHead(in_channels=6, phonemes=4)
    features = torch.randn(2, 6, 30, requires_grad=True)
    log_probs = head(features)
    assert log_probs.shape == (30, 2, 5)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(30, 2))
    loss = head.loss(features, torch.tensor([30, 30]), torch.tensor([[1, 2, 3], [4, 0, 0]]), torch.tensor([3, 1]))
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert features.grad is not None and features.grad.abs().sum() > 0


def test_ctc_learns_a_sequence_from_the_features() -> None:
    """A few steps on one fixed input lower the loss: the head and loss are wired to train, not just to run."""
    torch.manual_seed(0)
    head = phonetic.PhoneticHead(in_channels=4, phonemes=3)
    features = torch.randn(1, 4, 20)
    args = (torch.tensor([20]), torch.tensor([[1, 3, 2]]), torch.tensor([3]))
    optimizer = torch.optim.Adam(head.parameters(), lr=0.1)
    with torch.no_grad():
        first = float(head.loss(features, *args))
    for _ in range(30):
        optimizer.zero_grad()
        head.loss(features, *args).backward()
        optimizer.step()
    with torch.no_grad():
        assert float(head.loss(features, *args)) < 0.5 * first


def small_module(weight: float) -> KeywordModule:
    torch.manual_seed(0)
    model = SpectrogramDetector(conv2d_channels=(4, 8), channels=16, dilations=(1, 2), dropout=0.0, freq_mask=0, time_mask=0)
    return KeywordModule(model, {}, {"lr": 1e-3, "weight_decay": 0.0}, clip_seconds=1.0,
                         phonetic={"weight": weight}, phonemes=("a", "b", "c"))


def norm_buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}


def test_the_phonetic_pass_is_normalized_by_the_clips_statistics_and_leaves_them_alone() -> None:
    module = small_module(0.5)
    module.train()
    before = norm_buffers(module.model)
    with norms_evaluating(module.model):
        features = module.model.embed(torch.randn(2, 24000))
    features.sum().backward()
    after = norm_buffers(module.model)
    assert all(torch.equal(before[k], after[k]) for k in before)  # running mean, variance and batch count
    norms = [m for m in module.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(m.training for m in norms)  # back in training mode
    assert all(m.weight.grad is not None for m in norms)  # their scales still learn from the task
    module.model.embed(torch.randn(2, 24000))
    assert any(not torch.equal(before[k], v) for k, v in norm_buffers(module.model).items())  # outside it they move


def test_an_utterance_that_just_fits_sits_exactly_between_the_margins() -> None:
    dataset = spoken_set([3000], [[1]], window=4000, margin=500)
    for key in range(4):
        filled = np.flatnonzero(dataset[key][0].numpy())
        assert filled[0] == 500 and filled[-1] == 3499


def test_adversary_and_phonetic_task_train_together(monkeypatch) -> None:
    torch.manual_seed(0)
    model = SpectrogramDetector(conv2d_channels=(4, 8), channels=16, dilations=(1, 2))
    module = KeywordModule(model, {}, {"lr": 1e-3, "weight_decay": 0.0}, clip_seconds=1.0, adversary={"weight": 0.5},
                           domains=("a", "b"), phonetic={"weight": 0.3}, phonemes=("x", "y"))
    monkeypatch.setattr(module, "adversary_scale", lambda: 0.5)  # the ramp needs a trainer
    module.train()
    clips = (torch.randn(3, 16000), torch.tensor([1.0, 0.0, 0.0]), torch.tensor([[2000.0, 9000.0], [-1, -1], [-1, -1]]),
             torch.tensor([0, 1, -1]))
    spoken = (torch.randn(2, 32000), torch.tensor([[1, 2], [2, 0]]), torch.tensor([2, 1]))
    loss = module.training_step({"clips": clips, "utterances": spoken}, 0)
    assert torch.isfinite(loss)
    loss.backward()
    for part in (module.model, module.adversary, module.phonetic_head):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_the_training_loss_adds_the_weighted_ctc_loss() -> None:
    module = small_module(0.5)
    module.eval()  # deterministic: running statistics, no dropout
    clips = (torch.randn(3, 16000), torch.tensor([1.0, 0.0, 0.0]), torch.tensor([[2000.0, 9000.0], [-1, -1], [-1, -1]]),
             torch.tensor([0, 1, -1]))
    spoken = (torch.randn(2, 32000), torch.tensor([[1, 2, 3], [3, 0, 0]]), torch.tensor([3, 1]))
    keyword_only = module.training_step(clips, 0)
    both = module.training_step({"clips": clips, "utterances": spoken}, 0)
    ctc = module.phonetic_loss(spoken)
    assert float(ctc.detach()) > 0
    torch.testing.assert_close(both, keyword_only + 0.5 * ctc)
    assert not any(k.startswith("phonetic") for k in module.model.state_dict())  # not among the shipped keys
    assert any(k.startswith("phonetic_head.") for k in module.state_dict())


def test_the_task_needs_its_inventory() -> None:
    model = SpectrogramDetector(conv2d_channels=(4, 8), channels=16, dilations=(1, 2))
    with pytest.raises(ValueError, match="phoneme inventory"):
        KeywordModule(model, {}, {"lr": 1e-3, "weight_decay": 0.0}, clip_seconds=1.0, phonetic={"weight": 0.5})
    assert KeywordModule(model, {}, {"lr": 1e-3, "weight_decay": 0.0}, clip_seconds=1.0).phonetic_head is None


def toy_datamodule(monkeypatch, weight: float, clips: int = 10) -> KeywordDataModule:
    """A datamodule over made-up utterances (no corpus, no espeak-ng): 4 clips a batch, 2 utterances."""
    original = phonetic.lexicon
    monkeypatch.setattr(phonetic, "lexicon", lambda texts: original(texts, phonemize=fake_phonemize))
    data = {"clips": {"sample_rate": 16000, "clip_seconds": 0.5}, "loader": {"batch_size": 4, "num_workers": 0}}
    module = KeywordDataModule(data, corpus_root="unused", seed=5,
                               phonetic_task={"weight": weight, "batch_size": 2, "window_seconds": 1.5, "margin_seconds": 0.25})
    rows = [{"label": 0, "kind": "speech", "text": f"bo {'ab'[i % 2]}", "voice": "v", "engine": "e"} for i in range(clips)]
    rows.append({"label": 0, "kind": "noise", "text": "", "voice": "", "engine": "noise"})
    waves = WaveStore([np.full(6000 + 100 * i, 0.05, np.float32) for i in range(len(rows))])
    module.datasets["train"] = ClipDataset(rows, waves, WaveStore([]), 8000, 5, None)
    if weight > 0:
        module.setup_phonetic(module.datasets["train"])
    return module


def test_without_the_task_the_training_loader_is_the_clips_alone(monkeypatch) -> None:
    module = toy_datamodule(monkeypatch, 0.0)
    assert module.utterances is None and module.phonemes == ()
    assert isinstance(module.train_dataloader(), DataLoader)


def test_each_clip_batch_comes_with_an_utterance_batch_seeded_by_epoch(monkeypatch) -> None:
    module = toy_datamodule(monkeypatch, 0.3)
    assert module.phonemes == ("a", "b", "o") and len(module.utterances.fits) == 11 - 1  # the noise row says nothing
    loader = module.train_dataloader()
    assert isinstance(loader, CombinedLoader)

    def epoch(number: int) -> list[dict]:
        for dataloader in loader.flattened:
            dataloader.sampler.set_epoch(number)  # what Lightning's fit loop does for every loader
        return [batch for batch, _, _ in iter(loader)]

    first = epoch(0)
    assert len(first) == 3  # ceil(11 clips / 4): the clips set the epoch
    for batch in first:
        waves, targets, lengths = batch["utterances"]
        assert waves.shape == (2, 24000) and targets.shape[0] == 2
        assert all(targets[i, : lengths[i]].tolist() in ([2, 3, 1], [2, 3, 2]) for i in range(2))  # "bo a" or "bo b"
    again, second = epoch(0), epoch(1)
    assert all(torch.equal(a["utterances"][0], b["utterances"][0]) for a, b in zip(first, again))
    assert any(not torch.equal(a["utterances"][0], b["utterances"][0]) for a, b in zip(first, second))


def test_every_rank_has_an_utterance_batch_for_each_clip_batch(monkeypatch) -> None:
    module = toy_datamodule(monkeypatch, 0.3, clips=32)  # 33 clips
    for world in (1, 2, 3, 4, 8):
        draws = module.utterance_draws(world)
        per_rank_clips = -(-(33 // world if world > 1 else 33) // 4)
        assert (draws // world) // 2 >= per_rank_clips, world


@pytest.mark.parametrize("model_name", ["spectrogram", "conv1d"])
def test_shallower_features_have_the_same_hop_and_more_frames(model_name: str) -> None:
    from audioconv.models import Conv1dDetector

    torch.manual_seed(0)
    model = (SpectrogramDetector(conv2d_channels=(4, 8), channels=16, dilations=(1, 2, 4)) if model_name == "spectrogram"
             else Conv1dDetector(channels=16, dilations=(1, 2, 4))).eval()
    wave = torch.randn(2, 32000)
    full = model.embed(wave)
    torch.testing.assert_close(model.embed(wave, depth=None), full)
    torch.testing.assert_close(model.embed(wave, depth=3), full)  # every block
    torch.testing.assert_close(model.head(full).squeeze(1), model(wave))  # what the head reads
    frames = [model.embed(wave, depth=d).shape[-1] for d in range(4)]
    assert frames == sorted(frames, reverse=True) and frames[0] > frames[-1] == full.shape[-1]
    trimmed = [frames[d] - frames[d + 1] for d in range(3)]  # (kernel - 1) * dilation frames per block, unpadded
    assert trimmed[1] == 2 * trimmed[0] and trimmed[2] == 4 * trimmed[0]


def test_the_task_on_shallower_features_trains_those_layers_only() -> None:
    torch.manual_seed(0)
    model = SpectrogramDetector(conv2d_channels=(4, 8), channels=16, dilations=(1, 2), dropout=0.0, freq_mask=0, time_mask=0)
    module = KeywordModule(model, {}, {"lr": 1e-3, "weight_decay": 0.0}, clip_seconds=1.0,
                           phonetic={"weight": 0.5, "depth": 1}, phonemes=("a", "b", "c"))
    module.train()
    spoken = (torch.randn(2, 32000), torch.tensor([[1, 2, 3], [3, 0, 0]]), torch.tensor([3, 1]))
    module.phonetic_loss(spoken).backward()
    assert all(p.grad is None for p in model.blocks[1].parameters())  # after the tap: untouched
    assert all(p.grad is None for p in model.head.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.blocks[0].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.conv2d.parameters())
