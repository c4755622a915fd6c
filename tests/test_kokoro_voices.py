"""Kokoro's voices: the packs, their 50/50 blends and the random-weight mixtures (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from audioconv.corpus.engines import kokoro


def settings(random_blends: int, packs=None, blends: bool = True) -> kokoro.Settings:
    return kokoro.Settings(utterances={}, packs=packs, blends=blends, random_blends=random_blends,
                           speed=(0.85, 1.2), accent="en-us")


def test_voice_count_and_unique_ids():
    voices = kokoro.voices(settings(25))
    assert len(voices) == 5 + 10 + 25
    assert len({v.id for v in voices}) == len(voices)
    assert len({v.spec for v in voices}) == len(voices)


def test_random_blend_is_stable_and_mixes_two_or_three_packs():
    first = [kokoro.random_blend(kokoro.PACKS, k) for k in range(30)]
    assert first == [kokoro.random_blend(kokoro.PACKS, k) for k in range(30)]
    # blend k does not depend on how many blends are asked for
    assert [v.spec for v in kokoro.voices(settings(5))][15:] == first[:5]
    sizes = set()
    for spec in first:
        pairs = kokoro.style_weights(spec)
        sizes.add(len(pairs))
        assert {name for name, _ in pairs} <= set(kokoro.PACKS)
        assert sum(w for _, w in pairs) == pytest.approx(1.0, abs=1e-9)
        assert all(w > 0 for _, w in pairs)
    assert sizes == {2, 3}


def test_style_is_the_weighted_mean_of_the_packs_rows():
    rng = np.random.default_rng(0)
    packs = {name: rng.normal(size=(8, kokoro.STYLE_WIDTH)).astype(np.float32) for name in ("a", "b")}
    # a row per token count; long inputs use the last row
    np.testing.assert_allclose(kokoro._style("a", packs, 3), packs["a"][2:3])
    np.testing.assert_allclose(kokoro._style("a", packs, 50), packs["a"][7:8])
    np.testing.assert_allclose(kokoro._style("a+b", packs, 3), (packs["a"][2:3] + packs["b"][2:3]) / 2, rtol=1e-6)
    mixed = kokoro._style("a*0.25+b*0.75", packs, 4)
    np.testing.assert_allclose(mixed, 0.25 * packs["a"][3:4] + 0.75 * packs["b"][3:4], rtol=1e-5, atol=1e-6)
    assert mixed.dtype == np.float32 and mixed.shape == (1, kokoro.STYLE_WIDTH)


def test_no_blends_leaves_only_the_packs():
    voices = kokoro.voices(settings(0, packs=["jf_alpha", "jm_kumo"], blends=False))
    assert [v.spec for v in voices] == ["jf_alpha", "jm_kumo"]


def test_random_blends_may_be_left_out_of_the_config_and_then_are_none():
    from audioconv.corpus.settings import from_plain

    section = {"utterances": {"keyword": 1}, "packs": None, "blends": True, "speed": [0.9, 1.1], "accent": "en-us"}
    built = from_plain(kokoro.Settings, section, "corpus.engines.kokoro")
    assert built.random_blends == 0 and built.speed == (0.9, 1.1)
    assert len(kokoro.voices(built)) == 15
    with pytest.raises(ValueError, match="missing \\['accent'\\]"):  # a field without a default is still required
        from_plain(kokoro.Settings, {k: v for k, v in section.items() if k != "accent"}, "corpus.engines.kokoro")
    with pytest.raises(ValueError, match="unknown \\['blend_count'\\]"):
        from_plain(kokoro.Settings, {**section, "blend_count": 3}, "corpus.engines.kokoro")


def test_random_blends_of_a_single_pack_are_refused():
    with pytest.raises(ValueError, match="at least 2 packs"):
        kokoro.voices(settings(3, packs=["jf_alpha"]))
    assert len(kokoro.voices(settings(3, packs=["jf_alpha", "jm_kumo"], blends=False))) == 2 + 3
