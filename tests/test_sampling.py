"""How training clips are drawn: the seeded epoch order, engines drawn in proportion to count ** power, and the
share of a user's own recordings."""

from __future__ import annotations

import numpy as np
import pytest

from audioconv.data import ClipDataset, EpochSampler, KeywordDataModule, WaveStore, engine_weights, with_user_share


def corpus_rows(counts: dict[str, int], noise: int = 0, user: int = 0) -> list[dict]:
    rows = [{"label": 0, "kind": "speech", "engine": engine, "voice": f"{engine}:v", "text": "x"}
            for engine, count in counts.items() for _ in range(count)]
    rows += [{"label": 0, "kind": "noise", "engine": "noise", "voice": "", "text": ""} for _ in range(noise)]
    rows += [{"label": 1, "kind": "keyword", "engine": "user", "voice": "user:me", "text": "welcome"} for _ in range(user)]
    return rows


def mass(rows: list[dict], weights: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    for row, weight in zip(rows, weights):
        out[row["engine"]] = out.get(row["engine"], 0.0) + float(weight)
    return out


def test_power_one_keeps_the_corpus_shares_as_a_plain_permutation() -> None:
    assert engine_weights(corpus_rows({"espeak": 30, "kokoro": 3}), 1.0) is None


def test_power_zero_draws_every_engine_equally_and_noise_and_user_rows_keep_their_share() -> None:
    rows = corpus_rows({"espeak": 60, "festival": 30, "kokoro": 10}, noise=20, user=5)
    weights = engine_weights(rows, 0.0)
    shares = mass(rows, weights)
    assert weights.sum() == pytest.approx(1.0)
    assert shares["espeak"] == pytest.approx(shares["festival"]) == pytest.approx(shares["kokoro"])
    assert shares["espeak"] + shares["festival"] + shares["kokoro"] == pytest.approx(100 / 125)  # speech keeps its share
    assert shares["noise"] == pytest.approx(20 / 125) and shares["user"] == pytest.approx(5 / 125)
    kokoro = weights[[i for i, r in enumerate(rows) if r["engine"] == "kokoro"]]
    assert np.allclose(kokoro, kokoro[0])  # within an engine, every row equally


def test_power_one_half_draws_in_proportion_to_the_square_root_of_the_counts() -> None:
    rows = corpus_rows({"espeak": 400, "kokoro": 25})
    shares = mass(rows, engine_weights(rows, 0.5))
    assert shares["espeak"] / shares["kokoro"] == pytest.approx(20 / 5)


@pytest.mark.parametrize("power", [-0.5, float("nan"), float("inf")])
def test_a_power_that_is_not_a_number_at_least_zero_is_refused(power) -> None:
    with pytest.raises(ValueError, match="engine_power must be a number >= 0"):
        engine_weights(corpus_rows({"espeak": 3}), power)


def test_without_weights_an_epoch_is_a_seeded_permutation_keyed_by_epoch() -> None:
    sampler = EpochSampler(50, seed=3, shuffle=True)
    sampler.set_epoch(4)
    keys = np.array(list(sampler))
    assert np.array_equal(keys, 4 * 50 + np.random.default_rng([3, 4]).permutation(50))


def test_weighted_epochs_draw_by_weight_and_every_draw_has_its_own_key() -> None:
    size, seed = 40, 9
    weights = np.full(size, 1.0)
    weights[:4] = 20.0  # ten rows' worth of draws each for the first four
    weights /= weights.sum()
    sampler = EpochSampler(size, seed, shuffle=True, weights=weights)
    counts, all_keys = np.zeros(size), []
    for epoch in range(30):
        sampler.set_epoch(epoch)
        keys = list(sampler)
        assert len(keys) == size and keys == list(sampler)  # seeded: the same epoch twice
        all_keys += keys
        counts += np.bincount(np.array(keys) % size, minlength=size)
    assert len(set(all_keys)) == len(all_keys)  # a repeat in an epoch, or a later epoch, never reuses a key
    assert counts[:4].mean() / counts[4:].mean() == pytest.approx(20.0, rel=0.25)


@pytest.mark.parametrize("world", [2, 3])
def test_weighted_shards_split_one_epochs_draws_between_ranks(monkeypatch, world) -> None:
    weights = np.linspace(1, 3, 31)
    sampler = EpochSampler(31, 1, shuffle=True, weights=weights)
    sampler.set_epoch(2)
    whole = list(sampler)
    shards = []
    for rank in range(world):
        monkeypatch.setattr(sampler, "_shard", lambda rank=rank: (rank, world))
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler) == 31 // world  # every rank the same number of batches
    drawn = sorted(k for shard in shards for k in shard)
    assert len(set(drawn)) == len(drawn) and set(drawn) <= set(whole)


@pytest.mark.parametrize("weights", [np.full(4, 0.25), np.array([1, 1, -1, 1, 1.0]), np.array([1, np.nan, 1, 1, 1]),
                                     np.zeros(5)])
def test_weights_must_fit_the_dataset(weights) -> None:
    with pytest.raises(ValueError, match="expected 5 finite weights >= 0"):
        EpochSampler(5, 0, shuffle=True, weights=weights)


def test_weights_are_normalized_so_that_any_scale_draws_the_same() -> None:
    first = EpochSampler(20, 4, shuffle=True, weights=np.arange(1.0, 21.0) * (1 + 2e-6))
    second = EpochSampler(20, 4, shuffle=True, weights=np.arange(1.0, 21.0) / 7)
    assert list(first) == list(second)


def test_a_row_drawn_twice_in_one_epoch_gives_two_different_clips() -> None:
    rows = corpus_rows({"espeak": 3})
    waves = WaveStore([np.random.default_rng(i).normal(0, 0.1, 20_000).astype(np.float32) for i in range(3)])
    dataset = ClipDataset(rows, waves, WaveStore([]), 8000, 5, None)
    weights = np.array([0.98, 0.01, 0.01])
    sampler = EpochSampler(3, 0, shuffle=True, weights=weights)
    keys = [k for k in sampler if k % 3 == 0][:2]
    assert len(keys) == 2
    first, second = (dataset[k][0] for k in keys)
    assert not np.array_equal(first.numpy(), second.numpy())  # another offset into the same utterance


def test_the_training_loader_draws_by_engine_power_and_evaluation_loaders_do_not() -> None:
    data = {"clips": {"sample_rate": 16000, "clip_seconds": 0.5},
            "loader": {"batch_size": 4, "num_workers": 0, "engine_power": 0.0}}
    module = KeywordDataModule(data, corpus_root="unused", seed=5)
    rows = corpus_rows({"espeak": 18, "kokoro": 2})
    waves = WaveStore([np.zeros(9000, np.float32) for _ in rows])
    module.datasets["train"] = ClipDataset(rows, waves, WaveStore([]), 8000, 5, None)
    module.datasets["val"] = ClipDataset(rows, waves, WaveStore([]), 8000, 5, None)
    train = module.train_dataloader().sampler
    assert mass(rows, train.weights)["kokoro"] == pytest.approx(0.5)
    assert module.val_dataloader().sampler.weights is None
    assert list(module.val_dataloader().sampler) == list(range(20))
    for loader in ({"batch_size": 4, "num_workers": 0}, {"batch_size": 4, "num_workers": 0, "engine_power": 1.0}):
        module.loader = loader  # the default: a plain permutation
        assert module.train_dataloader().sampler.weights is None


def test_user_share_gives_your_recordings_that_share_and_keeps_the_rest_in_proportion() -> None:
    rows = corpus_rows({"espeak": 60, "kokoro": 10}, noise=10, user=4)
    weights = with_user_share(rows, None, 0.25)
    shares = mass(rows, weights)
    assert weights.sum() == pytest.approx(1.0)
    assert shares["user"] == pytest.approx(0.25)
    assert shares["espeak"] / shares["kokoro"] == pytest.approx(6.0) and shares["noise"] / shares["kokoro"] == pytest.approx(1.0)
    balanced = with_user_share(rows, engine_weights(rows, 0.0), 0.25)  # on top of engine_power
    shares = mass(rows, balanced)
    assert shares["user"] == pytest.approx(0.25) and shares["espeak"] == pytest.approx(shares["kokoro"])


def test_user_share_null_changes_nothing_and_a_bad_share_or_no_recordings_is_refused() -> None:
    rows = corpus_rows({"espeak": 6}, user=2)
    assert with_user_share(rows, None, None) is None
    given = engine_weights(rows, 0.0)
    assert with_user_share(rows, given, None) is given
    for share in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="user_share must be between 0 and 1"):
            with_user_share(rows, None, share)
    with pytest.raises(ValueError, match="holds none of your recordings"):
        with_user_share(corpus_rows({"espeak": 6}), None, 0.2)


def test_the_training_loader_draws_your_recordings_at_their_share() -> None:
    data = {"clips": {"sample_rate": 16000, "clip_seconds": 0.5},
            "loader": {"batch_size": 4, "num_workers": 0, "user_share": 0.5}}
    module = KeywordDataModule(data, corpus_root="unused", seed=5)
    rows = corpus_rows({"espeak": 38}, user=2)
    waves = WaveStore([np.zeros(9000, np.float32) for _ in rows])
    module.datasets["train"] = ClipDataset(rows, waves, WaveStore([]), 8000, 5, None)
    module.datasets["val"] = ClipDataset(rows, waves, WaveStore([]), 8000, 5, None)
    sampler = module.train_dataloader().sampler
    sampler.set_epoch(0)
    drawn = [rows[key % len(rows)]["engine"] for key in sampler]
    assert len(drawn) == 40 and 10 <= drawn.count("user") <= 30  # ~20 of 40 draws, not 2
    assert module.val_dataloader().sampler.weights is None
