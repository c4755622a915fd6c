"""Speaker, room and channel augmentation: seeded, length-keeping, and the keyword stays where it was."""

from __future__ import annotations

import json
import logging
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioconv import augment, backgrounds, channel, data
from audioconv.augment import AugmentConfig
from audioconv.data import ClipDataset, WaveStore

SR = 16_000
BURST = (0.5, 0.8)  # seconds: where the "keyword" sits in the 1.5 s test clip
TOLERANCE = 0.005  # seconds


def tone_burst(seconds: float = 1.5, span: tuple[float, float] = BURST) -> np.ndarray:
    """Harmonics of 500 Hz (inside the telephone band) with 10 ms ramps, zero elsewhere."""
    t = np.arange(int(seconds * SR)) / SR
    tone = sum(np.sin(2 * np.pi * 500 * k * t) / k for k in (1, 2, 3))
    envelope = np.clip(np.minimum(t - span[0], span[1] - t) / 0.01, 0, 1)
    return (0.3 * tone * envelope).astype(np.float32)


def envelope(wave: np.ndarray) -> np.ndarray:
    """Short-time RMS over 5 ms."""
    return np.sqrt(np.convolve(np.square(wave, dtype=np.float64), np.ones(80) / 80, mode="same"))


def onset_offset(wave: np.ndarray, fraction: float = 0.25) -> tuple[float, float]:
    """First and last time the envelope is above ``fraction`` of its maximum."""
    env = envelope(wave)
    above = np.nonzero(env > fraction * env.max())[0]
    return above[0] / SR, above[-1] / SR


def best_lag(reference: np.ndarray, wave: np.ndarray, max_lag: int = 1600) -> float:
    """Seconds by which ``wave``'s energy envelope is shifted against ``reference``'s (cross-correlation peak)."""
    a, b = envelope(reference), envelope(wave)
    lags = np.arange(-max_lag, max_lag + 1, 8)
    scores = [np.dot(a[max(0, -k) : len(a) - max(0, k)], b[max(0, k) : len(b) - max(0, -k)]) for k in lags]
    return lags[int(np.argmax(scores))] / SR


def energy_above(wave: np.ndarray, hz: float) -> float:
    power = np.abs(np.fft.rfft(wave.astype(np.float64))) ** 2
    return float(power[np.fft.rfftfreq(len(wave), 1 / SR) > hz].sum() / power.sum())


def small_rooms(count: int = 2) -> AugmentConfig:
    return AugmentConfig(rir_count=count, rir_rt60_range=(0.3, 0.5), rir_room_size_range=(3.0, 5.0), rir_room_height_range=(2.4, 3.0))


# each maps (wave, generator) to a wave; all are drawn from the generator only
AUGMENTATIONS = {
    "formants_down": lambda w, rng: augment.shift_formants(w, float(rng.uniform(0.85, 0.9)), SR),
    "formants_up": lambda w, rng: augment.shift_formants(w, float(rng.uniform(1.1, 1.15)), SR),
    "pitch_wide": lambda w, rng: augment.shift_pitch(w, float(rng.uniform(3.0, 4.0)), SR),
    "eq": lambda w, rng: channel.random_eq(w, rng, SR, (3, 4), 10.0, 3.0),
    "band_limit": lambda w, rng: channel.band_limit(w, float(rng.uniform(3000, 4000)), SR),
    "telephone": lambda w, rng: channel.telephone(w, rng, SR, mulaw_prob=1.0),
    "telephone_linear": lambda w, rng: channel.telephone(w, rng, SR, mulaw_prob=0.0),
    "clip_hard": lambda w, rng: channel.clip_distortion(w, float(rng.uniform(0.1, 0.3)), soft=False),
    "clip_soft": lambda w, rng: channel.clip_distortion(w, float(rng.uniform(0.1, 0.3)), soft=True),
    "gain_ramp": lambda w, rng: channel.gain_ramp(w, rng, 12.0),
    "synthetic_room": lambda w, rng: augment.reverberate(w, augment.synthetic_room(rng, 0.6, SR)),
}


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_seeded_length_keeping_and_in_place(name: str) -> None:
    wave = tone_burst()
    first = AUGMENTATIONS[name](wave, np.random.default_rng(7))
    again = AUGMENTATIONS[name](wave, np.random.default_rng(7))
    assert first.dtype == np.float32 and len(first) == len(wave)
    assert np.array_equal(first, again), "same seed, same output"
    assert np.all(np.isfinite(first))
    # librosa's phase-vocoder pitch shift smears onsets by ~10 ms: still well inside one 20 ms hop
    tolerance = 0.015 if name == "pitch_wide" else TOLERANCE
    start, end = onset_offset(first)
    assert abs(start - BURST[0]) < tolerance, f"{name}: the burst starts at {start:.4f} s"
    if name not in ("synthetic_room", "gain_ramp"):  # a reverberant tail / a level change moves the end
        assert abs(end - BURST[1]) < tolerance, f"{name}: the burst ends at {end:.4f} s"
    assert abs(best_lag(wave, first)) < tolerance, f"{name}: the energy envelope is shifted"


@pytest.mark.parametrize("factor", [0.85, 1.15])
def test_formant_shift_moves_the_envelope_not_the_pitch(factor: float) -> None:
    """A 120 Hz harmonic comb under one broad resonance: the resonance moves by the factor, the harmonics stay."""
    t = np.arange(SR) / SR
    harmonics = np.arange(1, 60)
    weights = np.exp(-0.5 * ((harmonics * 120 - 2000) / 600) ** 2)  # a "formant" at 2 kHz
    wave = (np.sin(2 * np.pi * 120 * np.outer(harmonics, t)) * weights[:, None]).sum(0)
    wave = (0.5 * wave / np.abs(wave).max()).astype(np.float32)
    freqs = np.fft.rfftfreq(len(wave), 1 / SR)

    def power(x: np.ndarray) -> np.ndarray:
        return np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2

    out = augment.shift_formants(wave, factor, SR)
    before, after = power(wave), power(out)
    on_harmonics = np.isclose(freqs % 120, 0) | np.isclose(freqs % 120, 120)
    near = np.convolve(on_harmonics, np.ones(5), mode="same") > 0  # the window's main lobe around each harmonic
    assert after[near].sum() > 0.99 * after.sum(), "the energy stays on the 120 Hz harmonics: pitch unchanged"
    centroid_ratio = (freqs * after).sum() / after.sum() / ((freqs * before).sum() / before.sum())
    assert abs(centroid_ratio - factor) < 0.03, f"the resonance moved by {centroid_ratio:.3f}, not {factor}"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_telephone_and_band_limit_remove_the_top(seed: int) -> None:
    noise = np.random.default_rng(seed).standard_normal(int(1.5 * SR)).astype(np.float32)
    assert energy_above(noise, 4000) > 0.4
    phone = channel.telephone(noise, np.random.default_rng(seed), SR, (3000, 3700), (200, 400), mulaw_prob=1.0)
    assert energy_above(phone, 3700) < 1e-3 and energy_above(phone, 4000) < 1e-3
    assert energy_above(phone, 200) > 0.99 * (1 - energy_above(phone, 3700)), "the low end is cut too"
    cutoff = float(np.random.default_rng(seed).uniform(3000, 4000))
    limited = channel.band_limit(noise, cutoff, SR)
    assert energy_above(limited, cutoff * 1.1) < 1e-3
    assert energy_above(limited, cutoff * 1.25) < 5e-4


def test_mu_law_is_eight_bit() -> None:
    levels = np.unique(channel.mu_law(np.linspace(-1, 1, 100_000, dtype=np.float32)))
    assert 250 <= len(levels) <= 256


def test_eq_changes_the_spectrum_within_bounds() -> None:
    noise = np.random.default_rng(0).standard_normal(int(1.5 * SR)).astype(np.float32)
    out = channel.random_eq(noise, np.random.default_rng(3), SR, (4, 4), 8.0, 2.0)
    ratio = augment.rms(out) / augment.rms(noise)
    assert not np.allclose(out, noise) and 0.1 < ratio < 10


def test_simulated_rooms_start_with_the_direct_path(tmp_path: Path) -> None:
    pytest.importorskip("pyroomacoustics")
    augment._RIR_BANKS.clear()
    bank = augment.rir_bank(small_rooms(3), tmp_path)
    assert len(bank) == 3 and len(list(tmp_path.glob("*.npz"))) == 1, "cached on disk"
    for response in bank:
        assert int(np.argmax(np.abs(response))) == 0 and response[0] == 1.0, "direct path at index 0"
        assert response.dtype == np.float32 and len(response) > 0.25 * SR
    augment._RIR_BANKS.clear()
    cached = augment.rir_bank(small_rooms(3), tmp_path)  # read back from disk
    assert all(np.array_equal(a, b) for a, b in zip(bank, cached))
    again = augment.simulate_rir(np.random.default_rng([0, 1]), SR, (0.3, 0.5), (3.0, 5.0), (2.4, 3.0))
    assert np.array_equal(again, bank[1]), "response i is seeded by [rir_seed, i]"
    wave = tone_burst()
    wet = augment.reverberate(wave, bank[0])
    assert len(wet) == len(wave)
    assert abs(onset_offset(wet, fraction=0.1)[0] - BURST[0]) < TOLERANCE  # the tail raises the maximum
    assert abs(best_lag(wave, wet)) < 0.02, "reverberation smears the end, not the start"
    augment._RIR_BANKS.clear()


def write_tone(path: Path, seconds: float, hz: float, rate: int = 22_050) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.2 * np.sin(2 * np.pi * hz * t).astype(np.float32), rate)


def test_backgrounds_are_split_by_source_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    music, loops = tmp_path / "music", tmp_path / "loops"
    for i in range(10):
        write_tone(music / f"track{i}.wav", 8.0, 200 + 50 * i)
    for i in range(5):
        write_tone(loops / f"loop{i}.flac", 2.5, 900 + 30 * i)
    write_tone(loops / "hit.flac", 0.3, 1000)  # too short: skipped
    config = {
        "enabled": True,
        "sources": [str(music / "*.wav"), str(loops / "*.flac")],
        "count": 30,
        "excerpt_seconds": 2.0,
        "min_source_seconds": 1.0,
        "val_fraction": 0.2,
        "test_fraction": 0.2,
        "seed": 3,
    }
    cache = tmp_path / "cache"
    found = backgrounds.load_backgrounds(config, cache)
    assert set(found) == {"train", "val", "test"} and all(found.values())
    assert all(w.dtype == np.float32 and len(w) <= 2.0 * SR + 1 for waves in found.values() for w in waves)
    (folder,) = cache.iterdir()
    index = json.loads((folder / "index.json").read_text())
    splits_of: dict[str, set[str]] = {}
    for entry in index["excerpts"]:
        splits_of.setdefault(entry["source"], set()).add(entry["split"])
    assert all(len(s) == 1 for s in splits_of.values()), "no source file in two splits"
    assert not any("hit.flac" in source for source in splits_of)
    assert {e["group"] for e in index["excerpts"]} == {0, 1}, "both groups are drawn from"
    assert sum(len(w) for w in found.values()) == len(index["excerpts"]) <= 30

    stamp = (folder / "index.json").stat().st_mtime_ns
    again = backgrounds.load_backgrounds(config, cache)  # cached: not rebuilt, same audio
    assert (folder / "index.json").stat().st_mtime_ns == stamp
    assert all(np.array_equal(a, b) for split in found for a, b in zip(found[split], again[split]))

    caplog.set_level(logging.INFO)
    missing = backgrounds.load_backgrounds({**config, "sources": [str(tmp_path / "nothing" / "*.ogg")]}, cache)
    assert missing == {} and len([r for r in caplog.records if r.name == "audioconv.backgrounds"]) == 1
    assert backgrounds.load_backgrounds({**config, "enabled": False}, cache) == {}


def test_defaults_are_off_and_draw_nothing() -> None:
    aug = AugmentConfig()
    new = [f.name for f in fields(AugmentConfig) if f.name.endswith("_prob") and f.name not in
           ("context_prob", "speed_prob", "pitch_prob", "reverb_prob", "noise_prob")]
    assert new and all(getattr(aug, name) == 0.0 for name in new if name not in ("clipping_soft_prob", "telephone_mulaw_prob"))
    wave, rng = tone_burst(), np.random.default_rng(0)
    state = rng.bit_generator.state
    assert augment.speaker(wave, aug, rng) is wave and augment.channel(wave, aug, rng) is wave
    assert augment.narrowband(wave, aug, rng) is wave
    assert rng.bit_generator.state == state, "an augmentation that is off draws nothing"


def keyword_dataset(aug: AugmentConfig, rooms=()) -> ClipDataset:
    """Two utterances (a keyword burst in silence, and a negative) and a noise file."""
    utterance = tone_burst(2.0, (0.7, 1.1))
    rows = [
        {"label": 1, "kind": "keyword", "text": "welcome", "kw_start": 0.7, "kw_end": 1.1},
        {"label": 0, "kind": "speech", "text": "hello there", "kw_start": -1.0, "kw_end": -1.0},
    ]
    noise = np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32) * 0.1
    return ClipDataset(rows, WaveStore([utterance, utterance[::-1].copy()]), WaveStore([noise]), int(1.5 * SR), 0, aug, rooms=rooms)


ALL_ON = replace(
    AugmentConfig(),
    context_prob=0.0,
    pitch_prob=1.0,
    pitch_semitones=4.0,
    formant_prob=1.0,
    rir_prob=1.0,
    eq_prob=1.0,
    clipping_prob=1.0,
    telephone_prob=1.0,
    bandlimit_prob=1.0,
    gain_ramp_prob=1.0,
)


@pytest.mark.parametrize("telephone", [1.0, 0.0])
def test_make_clip_with_everything_on(telephone: float) -> None:
    aug = replace(ALL_ON, telephone_prob=telephone)
    rooms = [augment.synthetic_room(np.random.default_rng(i), 0.5, SR) for i in range(3)]
    dataset = keyword_dataset(aug, rooms)
    for index in range(2):
        clip, span = dataset.make_clip(index, np.random.default_rng([1, 2, index]))
        again, span_again = dataset.make_clip(index, np.random.default_rng([1, 2, index]))
        assert clip.dtype == np.float32 and clip.shape == (int(1.5 * SR),)
        assert np.all(np.isfinite(clip)) and np.max(np.abs(clip)) <= 1.0
        assert np.array_equal(clip, again) and np.array_equal(span, span_again)
        assert energy_above(clip, 5600) < 1e-3, "the line (telephone or low-pass) removes the top"


def test_make_clip_keeps_the_keyword_in_its_span() -> None:
    """Noise off, everything else on: the clip's burst starts where the span says.

    (Pitch is off: librosa's phase vocoder smears onsets by ~10 ms, tested above.)
    """
    aug = replace(ALL_ON, noise_prob=0.0, clipping_prob=0.0, gain_ramp_prob=0.0, pitch_prob=0.0)
    rooms = [augment.synthetic_room(np.random.default_rng(0), 0.4, SR)]
    dataset = keyword_dataset(aug, rooms)
    for seed in range(4):
        clip, span = dataset.make_clip(0, np.random.default_rng(seed))
        assert 0 < span[0] < span[1] < len(clip)
        start, _ = onset_offset(clip, fraction=0.1)
        assert abs(start - span[0] / SR) < TOLERANCE, f"seed {seed}: burst at {start:.4f} s, span at {span[0] / SR:.4f} s"


def test_partial_keyword_is_a_negative_holding_only_part_of_the_word() -> None:
    """partial_keyword_prob=1: every positive becomes a negative (label 0, no span) that keeps a fragment of
    the keyword, about 30-70 % of it, and nothing of the rest of the word."""
    aug = AugmentConfig(partial_keyword_prob=1.0, speed_prob=0.0, pitch_prob=0.0, reverb_prob=0.0, noise_prob=0.0,
                        gain_range_db=(0.0, 0.0))
    dataset = keyword_dataset(aug)
    keyword_seconds = 0.4  # the burst of keyword_dataset: 0.7-1.1 s
    for key in range(16):
        clip, label, span, _ = dataset[2 * key]  # index 0 (the keyword utterance) of epoch `key`
        assert float(label) == 0.0 and span.tolist() == [-1.0, -1.0]
        start, end = onset_offset(clip.numpy(), fraction=0.1)
        assert 0.3 * keyword_seconds - TOLERANCE < end - start < 0.7 * keyword_seconds + TOLERANCE
    assert np.array_equal(dataset.waves[0], tone_burst(2.0, (0.7, 1.1))), "the stored utterance is not cut"
    clip, label, span, _ = keyword_dataset(AugmentConfig(noise_prob=0.0))[0]
    assert float(label) == 1.0 and span[0] >= 0  # off by default: positives stay positives


def test_cut_keyword_keeps_head_or_tail() -> None:
    wave = np.ones(1000, dtype=np.float32)
    seen = set()
    for seed in range(20):
        out, first, last = data.cut_keyword(wave, 200, 600, (0.5, 0.5), np.random.default_rng(seed))
        assert np.all(wave == 1.0), "the input is not modified"
        assert (first, last) in ((200, 400), (400, 600))
        silenced = (400, 600) if first == 200 else (200, 400)
        assert np.all(out[silenced[0]:silenced[1]] == 0.0)
        assert np.all(out[:200] == 1.0) and np.all(out[600:] == 1.0)  # the rest of the utterance is kept
        assert out[(first + last) // 2] == 1.0
        seen.add(first)
    assert seen == {200, 400}, "both the head and the tail are kept sometimes"


def test_cut_keyword_with_filler_speaks_over_the_cut_part_at_the_fragments_level() -> None:
    """partial_keyword_fill: the cut part is a piece of other speech, not silence ("wel-" + "-ding"), its
    level matched to the kept fragment; the kept fragment and the rest of the utterance are untouched."""
    wave = np.ones(10_000, dtype=np.float32)
    filler = (0.5 * np.sin(np.arange(20_000) / 3.0)).astype(np.float32)  # within the 4x (12 dB) level cap
    fade = int(data.CUT_FADE_SECONDS * SR)
    for seed in range(10):
        out, first, last = data.cut_keyword(wave, 2000, 6000, (0.5, 0.5), np.random.default_rng(seed), filler)
        assert (first, last) in ((2000, 4000), (4000, 6000))
        cut = (4000, 6000) if first == 2000 else (2000, 4000)
        inner = out[cut[0] + fade:cut[1] - fade]  # inside the fades at its ends
        assert np.count_nonzero(inner) > 0.9 * inner.size, "speech, not silence, where the keyword was cut"
        assert np.any(inner < 0) and np.any(inner > 0), "the filler's waveform, not the keyword's"
        assert 0.8 < np.sqrt(np.mean(inner ** 2)) < 1.2, "at the kept fragment's level (rms about 1)"
        kept = out[first + fade:last - fade]
        assert np.all(kept == 1.0), "the kept fragment is untouched"
        assert np.all(out[:2000] == 1.0) and np.all(out[6000:] == 1.0)


def test_fill_pools_hold_each_voices_plain_speech_that_cannot_complete_the_keyword() -> None:
    rows = [
        {"label": 1, "kind": "keyword", "text": "welcome", "voice": "a"},
        {"label": 0, "kind": "speech", "text": "the cat is on the mat", "voice": "a"},
        {"label": 0, "kind": "speech", "text": "we become friends", "voice": "a"},  # "-come": could finish it
        {"label": 0, "kind": "confusable", "text": "well done", "voice": "a"},
        {"label": 0, "kind": "speech", "text": "open the door now", "voice": "b"},
        {"label": 0, "kind": "noise", "text": "", "voice": "noise"},
    ]
    pools = data.fill_pools(rows)
    assert {voice: pool.tolist() for voice, pool in pools.items()} == {"a": [1], "b": [4]}


def test_partial_keyword_fill_draws_speech_of_the_same_voice() -> None:
    """fill_prob=1: the cut keyword is a negative whose sound lasts about as long as the whole keyword
    (fragment + filler), where silence-cut ones keep only 30-70 % of it."""
    aug = AugmentConfig(partial_keyword_prob=1.0, partial_keyword_fill_prob=1.0, speed_prob=0.0, pitch_prob=0.0,
                        reverb_prob=0.0, noise_prob=0.0, gain_range_db=(0.0, 0.0))
    rows = [
        {"label": 1, "kind": "keyword", "text": "welcome", "kw_start": 0.7, "kw_end": 1.1, "voice": "v"},
        {"label": 0, "kind": "speech", "text": "hello there", "kw_start": -1.0, "kw_end": -1.0, "voice": "v"},
    ]
    speech = tone_burst(2.0, (0.0, 2.0))  # sound from end to end, like trimmed speech
    dataset = ClipDataset(rows, WaveStore([tone_burst(2.0, (0.7, 1.1)), speech]), WaveStore([]), int(1.5 * SR), 0, aug)
    lengths = []
    for key in range(8):
        clip, label, span, _ = dataset[2 * key]
        assert float(label) == 0.0 and span.tolist() == [-1.0, -1.0]
        start, end = onset_offset(clip.numpy(), fraction=0.1)
        at_edge = start < TOLERANCE or end > 1.5 - 2 * TOLERANCE  # the filled part ran off the clip
        assert at_edge or end - start > 0.4 - 2 * TOLERANCE, f"epoch {key}: {end - start:.3f} s of sound, keyword 0.4 s"
        lengths.append(end - start)
    assert max(lengths) > 0.4 - 2 * TOLERANCE, "the fragment and its filler make a word as long as the keyword"


def test_cut_keyword_does_not_blow_a_near_silent_filler_up_into_noise() -> None:
    wave = np.ones(10_000, dtype=np.float32)
    quiet = (0.01 * np.sin(np.arange(20_000) / 3.0)).astype(np.float32)
    out, first, _ = data.cut_keyword(wave, 2000, 6000, (0.5, 0.5), np.random.default_rng(0), quiet)
    cut = out[4100:5900] if first == 2000 else out[2100:3900]
    assert 0.0 < np.abs(cut).max() <= 4 * 0.01 + 1e-6, "raised by at most 12 dB"


def test_fill_off_draws_nothing_so_default_clips_are_unchanged() -> None:
    """partial_keyword_fill_prob=0 with fillers available gives the very clips of a dataset with none."""
    aug = AugmentConfig(partial_keyword_prob=1.0, noise_prob=0.0)
    with_pool, without = keyword_dataset(aug), keyword_dataset(aug)
    with_pool.fill_pools, without.fill_pools = {"": np.array([1])}, {}
    for key in range(6):
        assert np.array_equal(with_pool[2 * key][0].numpy(), without[2 * key][0].numpy())


def test_narrowband_speech_is_band_limited_under_a_wideband_background() -> None:
    """narrowband_speech_prob: the speech goes through the phone line before the noise joins it, so the clip
    keeps the background's energy above 4 kHz (the whole-clip telephone channel would remove it), seeded."""
    speech = np.random.default_rng(3).standard_normal(int(1.5 * SR)).astype(np.float32) * 0.3
    noise = np.random.default_rng(4).standard_normal(3 * SR).astype(np.float32)
    quiet = replace(AugmentConfig(), pitch_prob=0.0, reverb_prob=0.0, noise_prob=1.0, snr_range_db=(10.0, 10.0),
                    gain_range_db=(0.0, 0.0))
    on = replace(quiet, narrowband_speech_prob=1.0)
    alone = augment.record(speech, replace(on, noise_prob=0.0), np.random.default_rng(0), [noise])
    assert energy_above(alone, 4000) < 1e-3 and energy_above(speech, 4000) > 0.4
    mixed = augment.record(speech, on, np.random.default_rng(0), [noise])
    assert np.array_equal(mixed, augment.record(speech, on, np.random.default_rng(0), [noise]))
    assert energy_above(mixed, 4000) > 0.02, "the background (10 dB under the speech) stays wideband"
    assert energy_above(mixed - alone, 4000) > 0.4, "what was added above the speech is the noise"
