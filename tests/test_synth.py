"""The corpus builder: manifest, splits, determinism, resumption, keyword boundaries, users' folders.

One tiny corpus (a few utterances per class, two espeak voices x three variants,
all three festival voices) is built once per module and shared; the tests that
need more builds make them small too. The whole file runs in well under a minute.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from omegaconf import OmegaConf

from audioconv import audio, synth

CONF = Path(__file__).resolve().parents[1] / "conf" / "data" / "welcome.yaml"
TINY = {
    "num_positives": 12,
    "num_negative_speech": 8,
    "num_confusable": 6,
    "num_noise": 7,
    "espeak_voices": ["en-us", "en-gb"],
    "espeak_variants": ["klatt", "f2", "m3"],
}


def tiny_cfg(seed: int = 3, **overrides) -> dict:
    """The shipped corpus settings, resolved with a top-level seed, shrunk to a handful of files."""
    data = OmegaConf.merge({"seed": seed}, OmegaConf.load(CONF))
    cfg = OmegaConf.to_container(data, resolve=True)["corpus"]
    cfg.update(TINY, **overrides)
    return cfg


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(cfg, manifest path, rows) of the shared tiny corpus, built on two workers."""
    cfg = tiny_cfg()
    manifest = synth.build_corpus(cfg, tmp_path_factory.mktemp("corpus"), workers=2)
    return cfg, manifest, synth.read_manifest(manifest)


def wav_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "wav").glob("*.wav"))}


def rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12) if x.size else -120.0


def test_manifest_columns_and_types(built):
    cfg, manifest, rows = built
    with manifest.open(newline="") as handle:
        assert tuple(csv.DictReader(handle).fieldnames) == synth.MANIFEST_COLUMNS
    total = cfg["num_positives"] + cfg["num_negative_speech"] + cfg["num_confusable"] + cfg["num_noise"]
    assert len(rows) == total
    with manifest.open(newline="") as handle:
        assert all(r["path"].startswith("wav/") for r in csv.DictReader(handle))  # relative on disk
    for row in rows:
        assert Path(row["path"]).is_absolute() and Path(row["path"]).exists()
        assert row["label"] in (0, 1) and isinstance(row["label"], int)
        assert row["kind"] in synth.KINDS and row["split"] in synth.SPLITS
        assert isinstance(row["duration"], float) and row["duration"] > 0
        assert row["label"] == int(row["kind"] == "keyword")
        assert row["engine"] in ("espeak", "festival", "noise")
        assert row["voice"].startswith(row["engine"] + ":")
        if row["label"]:
            assert isinstance(row["kw_start"], float) and isinstance(row["kw_end"], float)
        else:
            assert row["kw_start"] is None and row["kw_end"] is None
    assert {r["kind"] for r in rows} == set(synth.KINDS)
    assert {r["engine"] for r in rows} == {"espeak", "festival", "noise"}


def test_splits_are_voice_disjoint_and_heldout_is_apart(built):
    cfg, _, rows = built
    split_of: dict[str, set[str]] = {}
    for row in rows:
        if row["engine"] != "noise":
            split_of.setdefault(row["voice"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in split_of.values()), split_of
    for voice in cfg["heldout_voices"]:
        assert split_of[voice] == {"heldout"}
    assert {v for v, s in split_of.items() if s == {"heldout"}} == set(cfg["heldout_voices"])
    for voice in cfg["val_voices"]:
        assert split_of[voice] == {"val"}
    assert split_of["festival:kal_diphone"] == {"train"}


def test_every_split_and_voice_has_both_labels(built):
    _, _, rows = built
    for split in synth.SPLITS:
        assert {r["label"] for r in rows if r["split"] == split} == {0, 1}, split
    speech = [r for r in rows if r["engine"] != "noise"]
    for voice in {r["voice"] for r in speech}:
        assert {r["label"] for r in speech if r["voice"] == voice} == {0, 1}, voice


def test_negatives_never_say_the_keyword(built):
    cfg, _, rows = built
    for row in rows:
        if row["label"] == 0:
            assert cfg["exclude_substring"] not in row["text"].lower()
        else:
            assert re.search(rf"\b{cfg['keyword']}\b", row["text"].lower()), row


def test_wavs_are_16k_mono_and_short(built):
    cfg, _, rows = built
    for row in rows:
        info = sf.info(row["path"])
        assert (info.samplerate, info.channels, info.subtype) == (audio.SAMPLE_RATE, 1, "PCM_16")
        assert abs(info.frames / info.samplerate - row["duration"]) < 1e-3
        limit = max(cfg["noise_seconds"]) if row["kind"] == "noise" else cfg["max_seconds"] + 0.5
        assert row["duration"] <= limit


def test_keyword_boundaries_hold_the_keyword(built):
    _, _, rows = built
    positives = [r for r in rows if r["label"] == 1]
    assert positives
    sr = audio.SAMPLE_RATE
    edge = sr // 100  # 10 ms just outside the keyword
    for row in positives:
        assert 0.0 <= row["kw_start"] < row["kw_end"] <= row["duration"]
        wave = audio.load(row["path"])
        start, end = int(round(row["kw_start"] * sr)), int(round(row["kw_end"] * sr))
        inside = rms_db(wave[start:end])
        assert inside > rms_db(wave) - 6, row  # the keyword is not a quiet corner of the file
        assert 0.15 < row["kw_end"] - row["kw_start"] < 1.5, row
        if row["engine"] == "espeak":  # pieces joined by silence: the sound stops at the stated bounds
            around = np.concatenate([wave[max(start - edge, 0) : start], wave[end : end + edge]])
            assert rms_db(around) < inside - 40, row
        elif row["text"].strip(".!?") == "welcome":  # festival, keyword alone: nothing outside
            outside = np.concatenate([wave[:start], wave[end:]])
            assert rms_db(outside) < inside - 20, row


def test_build_is_deterministic(built, tmp_path):
    cfg, manifest, _ = built
    again = synth.build_corpus(cfg, tmp_path / "again", workers=1)  # other worker count, other folder
    assert again.read_bytes() == manifest.read_bytes()
    assert wav_bytes(again.parent) == wav_bytes(manifest.parent)
    other = synth.build_corpus(tiny_cfg(seed=4), tmp_path / "other", workers=2)
    assert other.parent.name != manifest.parent.name
    assert other.read_bytes() != manifest.read_bytes()
    assert wav_bytes(other.parent) != wav_bytes(manifest.parent)


def test_corpus_key_follows_output_settings_only():
    cfg = tiny_cfg()
    assert synth.corpus_dir(cfg, "/r") == synth.corpus_dir(dict(cfg), "/r")
    assert synth.corpus_dir(cfg, "/r") != synth.corpus_dir({**cfg, "seed": 99}, "/r")
    assert synth.corpus_dir(cfg, "/r") != synth.corpus_dir({**cfg, "num_noise": 9}, "/r")
    assert synth.corpus_dir(cfg, "/r") == synth.corpus_dir({**cfg, "festival_chunk": 7}, "/r")


def test_unknown_or_missing_setting_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown.*num_positivs"):
        synth.build_corpus({**tiny_cfg(), "num_positivs": 3}, tmp_path)
    cfg = tiny_cfg()
    del cfg["carriers"]
    with pytest.raises(ValueError, match="missing.*carriers"):
        synth.build_corpus(cfg, tmp_path)


def test_rerun_skips_existing_files(built):
    cfg, manifest, _ = built
    folder = manifest.parent
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*.wav")}
    assert synth.build_corpus(cfg, folder.parent, workers=2) == manifest
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.wav")} == before
    # lose the manifest and one file: only that file is made again, identical
    victim = folder / "wav" / "000005.wav"
    content = victim.read_bytes()
    manifest_text = manifest.read_bytes()
    manifest.unlink()
    victim.unlink()
    synth.build_corpus(cfg, folder.parent, workers=1)
    assert victim.read_bytes() == content and manifest.read_bytes() == manifest_text
    after = {p: p.stat().st_mtime_ns for p in folder.rglob("*.wav")}
    assert {p for p in before if after[p] != before[p]} == {victim}


def test_interrupted_build_resumes_to_the_same_corpus(built, tmp_path):
    cfg, manifest, _ = built
    root = tmp_path / "root"
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfg))
    code = (
        "import json, sys; from audioconv import synth; "
        "synth.build_corpus(json.load(open(sys.argv[1])), sys.argv[2], workers=2)"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(cfg_file), str(root)])
    folder = synth.corpus_dir(cfg, root)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None and not list(folder.glob("wav/*.wav")):
        time.sleep(0.02)
    time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    assert list(folder.glob("wav/*.wav")), "killed before any file was written"
    process.wait()
    assert not (folder / "manifest.csv").exists(), "the build finished before it could be interrupted"
    time.sleep(0.2)  # let the orphaned engine processes end
    resumed = synth.build_corpus(cfg, root, workers=2)
    assert resumed.read_bytes() == manifest.read_bytes()
    assert wav_bytes(folder) == wav_bytes(manifest.parent)
    leftovers = [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".work" in p.parts]
    assert leftovers == []


def test_failed_utterance_fails_loudly(tmp_path):
    cfg = synth.CorpusConfig.from_mapping(tiny_cfg())
    item = synth.Item(0, "keyword", "you are welcome", "festival", "festival:no_such_voice", "no_such_voice", "train",
                      params={"stretch": 1.0, "semitones": 0.0})
    with pytest.raises(synth.SynthesisError, match="festival:no_such_voice.*you are welcome"):
        synth.synth_festival([item], cfg, tmp_path)


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "hum", "tone", "sweep", "music"])
def test_noise_is_deterministic_and_audible(kind):
    cfg = synth.CorpusConfig.from_mapping(tiny_cfg())
    a, b = synth.make_noise(kind, 2.0, 7, cfg), synth.make_noise(kind, 2.0, 7, cfg)
    assert a.shape == (2 * audio.SAMPLE_RATE,) and np.array_equal(a, b)
    assert np.all(np.isfinite(a)) and np.abs(a).max() > 0
    assert not np.array_equal(a, synth.make_noise(kind, 2.0, 8, cfg))


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * audio.SAMPLE_RATE)) / audio.SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_user_corpus_rows(tmp_path, caplog):
    folder = tmp_path / "mine"
    audio.save(folder / "positive" / "alice" / "one.wav", _tone(1.0))
    audio.save(folder / "positive" / "two.wav", _tone(2.0))
    (folder / "positive" / "keywords.csv").write_text("file,kw_start,kw_end\nalice/one.wav,0.2,0.7\n")
    audio.save(folder / "negative" / "bob" / "talk.wav", _tone(1.5))
    audio.save(folder / "background" / "fan.wav", _tone(3.0))
    (folder / "negative" / "broken.wav").write_bytes(b"not audio at all")
    (folder / "negative" / "notes.txt").write_text("ignored: not an audio file")
    with caplog.at_level(logging.WARNING):
        rows = synth.user_corpus_rows(folder, seed=1, val_fraction=0.5)
    assert "broken.wav" in caplog.text
    by_name = {Path(r["path"]).name: r for r in rows}
    assert set(by_name) == {"one.wav", "two.wav", "talk.wav", "fan.wav"}
    one, two = by_name["one.wav"], by_name["two.wav"]
    assert (one["label"], one["kind"], one["voice"]) == (1, "keyword", "user:alice")
    assert (one["kw_start"], one["kw_end"]) == (0.2, 0.7)
    assert (two["kw_start"], two["kw_end"], two["voice"]) == (0.0, 2.0, "user:two")
    talk = by_name["talk.wav"]
    assert (talk["label"], talk["kind"], talk["voice"]) == (0, "speech", "user:bob")
    assert (by_name["fan.wav"]["label"], by_name["fan.wav"]["kind"]) == (0, "noise")
    for row in rows:
        assert set(row) == set(synth.MANIFEST_COLUMNS)
        assert Path(row["path"]).is_absolute() and row["engine"] == "user" and row["split"] in ("train", "val")
    assert synth.user_corpus_rows(folder, seed=1, val_fraction=0.5) == rows  # stable
    splits = {tuple(r["split"] for r in synth.user_corpus_rows(folder, seed=s, val_fraction=0.5)) for s in range(8)}
    assert len(splits) > 1  # the seed moves files between train and val
