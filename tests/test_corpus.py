"""The corpus: parts per engine, views and splits, determinism, resumption, keyword boundaries, users' folders.

One tiny corpus (a few utterances per class from espeak-ng — two voices x three
variants —, festival and SVOX Pico) is built once per module and shared; the
tests that need more builds make them small too.
"""

from __future__ import annotations

import copy
import dataclasses
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

from audioconv import audio, corpus
from audioconv.corpus import build, noise, view
from audioconv.corpus.engines import ENGINES
from audioconv.corpus.engines.base import Item, SynthesisError
from audioconv.corpus.plan import plan as plan_items
from audioconv.corpus.settings import CorpusConfig

CONF = Path(__file__).resolve().parents[1] / "conf" / "data" / "welcome.yaml"
TINY_ENGINES = {
    "espeak": {"utterances": {"keyword": 8, "speech": 5, "confusable": 3}, "voices": ["en-us", "en-gb"],
               "variants": ["klatt", "f2", "m3"]},
    "festival": {"utterances": {"keyword": 4, "speech": 3, "confusable": 3}},
    "pico": {"utterances": {"keyword": 3, "speech": 2, "confusable": 1}},
}


def tiny_cfg(seed: int = 3) -> dict:
    """The shipped corpus settings with corpus seed ``seed``, shrunk to a handful of files."""
    cfg = OmegaConf.to_container(OmegaConf.load(CONF), resolve=True)["corpus"]
    cfg["seed"] = seed
    cfg["use"] = [name for name in TINY_ENGINES if ENGINES[name].unavailable() is None]
    for name, values in TINY_ENGINES.items():
        cfg["engines"][name].update(values)
    cfg["noise"]["count"] = 7
    cfg["splits"].update(heldout_voices=["festival:cmu_us_slt_arctic_hts"], min_voices=4)
    return cfg


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(cfg, view manifest path, rows) of the shared tiny corpus, built on two workers."""
    cfg = tiny_cfg()
    manifest = corpus.build_corpus(cfg, tmp_path_factory.mktemp("corpus"), workers=2)
    return cfg, manifest, corpus.read_manifest(manifest)


def wav_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "wav").glob("*.wav"))}


def rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12) if x.size else -120.0


def test_manifest_columns_and_types(built):
    cfg, manifest, rows = built
    assert tuple(manifest.read_text().splitlines()[0].split(",")) == corpus.MANIFEST_COLUMNS
    total = sum(sum(cfg["engines"][e]["utterances"].values()) for e in cfg["use"]) + cfg["noise"]["count"]
    assert len(rows) == total
    for row in rows:
        assert Path(row["path"]).is_absolute() and Path(row["path"]).exists()
        assert row["label"] in (0, 1) and isinstance(row["label"], int)
        assert row["kind"] in corpus.KINDS and row["split"] in corpus.SPLITS
        assert isinstance(row["duration"], float) and row["duration"] > 0
        assert row["label"] == int(row["kind"] == "keyword")
        assert row["voice"].startswith(row["engine"] + ":")
        params = json.loads(row["params"])  # the synthesis settings of every file are recorded
        if row["engine"] == "espeak":
            assert set(params) == {"speed", "pitch", "word_gap"}
        if row["engine"] == "noise":
            assert set(params) == {"seconds", "seed"}
        if row["label"]:
            assert isinstance(row["kw_start"], float) and isinstance(row["kw_end"], float)
        else:
            assert row["kw_start"] is None and row["kw_end"] is None
    assert {r["kind"] for r in rows} == set(corpus.KINDS)
    assert {r["engine"] for r in rows} == {*cfg["use"], "noise"}


def test_splits_are_voice_disjoint_and_heldout_is_apart(built):
    cfg, _, rows = built
    split_of: dict[str, set[str]] = {}
    for row in rows:
        if row["engine"] != "noise":
            split_of.setdefault(row["voice"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in split_of.values()), split_of
    heldout = cfg["splits"]["heldout_voices"]
    assert {v for v, s in split_of.items() if s == {"heldout"}} == set(heldout)
    assert split_of["festival:kal_diphone"] == {"train"}  # an engine with few voices trains on them
    espeak = {next(iter(s)) for v, s in split_of.items() if v.startswith("espeak:")}
    assert espeak == {"train", "val", "test"}


def test_changing_splits_writes_a_new_view_without_resynthesis(built):
    cfg, manifest, rows = built
    root = manifest.parent.parent
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.wav")}
    other = copy.deepcopy(cfg)
    other["splits"]["heldout_engines"] = ["festival"]
    other["splits"]["heldout_voices"] = []
    moved = corpus.read_manifest(corpus.build_corpus(other, root, workers=1))
    assert corpus.corpus_dir(other, root) != manifest.parent
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.wav")} == before  # no file made again
    assert {r["split"] for r in moved if r["engine"] == "festival"} == {"heldout"}
    assert not any(r["split"] == "heldout" and r["engine"] != "festival" for r in moved)
    assert sorted(r["path"] for r in moved) == sorted(r["path"] for r in rows)  # same files, other splits


def test_every_split_and_voice_has_both_labels(built):
    _, _, rows = built
    for split in corpus.SPLITS:
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
        limit = max(cfg["noise"]["seconds"]) if row["kind"] == "noise" else cfg["max_seconds"] + 0.5
        assert row["duration"] <= limit


def check_keyword_span(row: dict) -> None:
    """The stated span holds loud speech; for pieces joined by silence, nothing sounds just outside it."""
    sr, edge = audio.SAMPLE_RATE, audio.SAMPLE_RATE // 100  # 10 ms just outside the keyword
    assert 0.0 <= row["kw_start"] < row["kw_end"] <= row["duration"]
    wave = audio.load(row["path"])
    start, end = int(round(row["kw_start"] * sr)), int(round(row["kw_end"] * sr))
    inside = rms_db(wave[start:end])
    assert inside > rms_db(wave) - 6, row  # the keyword is not a quiet corner of the file
    assert 0.15 < row["kw_end"] - row["kw_start"] < 1.5, row
    if row["engine"] != "festival":  # pieces joined by silence: the sound stops at the stated bounds
        around = np.concatenate([wave[max(start - edge, 0) : start], wave[end : end + edge]])
        assert rms_db(around) < inside - 30, row
    elif row["text"].strip(".!?") == "welcome":  # festival, keyword alone: nothing outside
        outside = np.concatenate([wave[:start], wave[end:]])
        assert rms_db(outside) < inside - 20, row


def test_keyword_boundaries_hold_the_keyword(built):
    _, _, rows = built
    positives = [r for r in rows if r["label"] == 1]
    assert positives
    for row in positives:
        check_keyword_span(row)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_each_engine_says_the_keyword_with_a_correct_span(engine, tmp_path):
    """One keyword utterance per engine, through the whole part build (skipped where the engine is missing)."""
    reason = ENGINES[engine].unavailable()
    if reason:
        pytest.skip(f"{engine}: {reason}")
    cfg = tiny_cfg()
    cfg["use"] = [engine]
    cfg["engines"][engine]["utterances"] = {"keyword": 2, "speech": 1, "confusable": 0}
    manifest = build.build_part(cfg, engine, tmp_path, workers=1)
    rows = corpus.read_manifest(manifest)
    assert [r["label"] for r in rows] == [1, 1, 0]
    for row in rows[:2]:
        assert row["engine"] == engine and row["voice"].startswith(f"{engine}:")
        check_keyword_span(row)


def test_build_is_deterministic(built, tmp_path):
    cfg, manifest, _ = built
    again = corpus.build_corpus(cfg, tmp_path / "again", workers=1)  # other worker count, other folder
    assert again.read_text() == manifest.read_text()
    for part in corpus.used_parts(cfg):
        assert wav_bytes(build.part_dir(cfg, part, tmp_path / "again")) == wav_bytes(
            build.part_dir(cfg, part, manifest.parent.parent))
    other = corpus.build_corpus(tiny_cfg(seed=4), tmp_path / "other", workers=2)
    assert other.parent.name != manifest.parent.name
    assert other.read_bytes() != manifest.read_bytes()


def test_audio_digests_name_the_engine_whose_audio_differs(built, tmp_path):
    cfg, manifest, rows = built
    digests = corpus.audio_digests(rows)
    assert set(digests) == {row["engine"] for row in rows}
    assert corpus.audio_digests(list(reversed(rows))) == digests, "row order does not matter"
    engine = next(e for e in digests if e != "noise")
    victim = next(row for row in rows if row["engine"] == engine)
    copied = Path(tmp_path / Path(victim["path"]).name)
    copied.write_bytes(Path(victim["path"]).read_bytes())
    moved = [{**row, "path": str(copied)} if row is victim else row for row in rows]
    assert corpus.audio_digests(moved) == digests, "the folder a file lies in does not matter, its bytes do"
    wave, rate = sf.read(copied, dtype="float32")
    wave[len(wave) // 2] += 0.01
    sf.write(copied, wave, rate, subtype="PCM_16")
    changed = corpus.audio_digests(moved)
    assert {e for e in digests if changed[e] != digests[e]} == {engine}


def test_keys_follow_output_settings_only():
    cfg = tiny_cfg()
    assert corpus.corpus_dir(cfg, "/r") == corpus.corpus_dir(copy.deepcopy(cfg), "/r")
    assert corpus.corpus_dir(cfg, "/r") != corpus.corpus_dir({**cfg, "seed": 99}, "/r")
    assert build.part_dir(cfg, "espeak", "/r") != build.part_dir({**cfg, "seed": 99}, "espeak", "/r")
    more_noise = copy.deepcopy(cfg)
    more_noise["noise"]["count"] = 9
    assert build.part_dir(cfg, "noise", "/r") != build.part_dir(more_noise, "noise", "/r")
    assert build.part_dir(cfg, "espeak", "/r") == build.part_dir(more_noise, "espeak", "/r")  # parts apart
    faster = copy.deepcopy(cfg)
    faster["engines"]["festival"]["chunk"] = 7
    faster["timeout_seconds"] = 5
    assert build.part_dir(cfg, "festival", "/r") == build.part_dir(faster, "festival", "/r")
    assert corpus.corpus_dir(cfg, "/r") == corpus.corpus_dir(faster, "/r")


def test_extra_negatives_are_parts_of_their_own(built):
    """``extra_speech`` / ``extra_confusable``: more negatives of an engine's voices, in parts of their own. The engine's own part,
    its rows' splits and the held-out split (what the cross-engine streams are composed from) stay as they were."""
    cfg, manifest, rows = built
    engine = "espeak"
    more = copy.deepcopy(cfg)
    more["extra_speech"], more["extra_confusable"], more["extra_keyword"] = {engine: 6}, {engine: 4}, {engine: 3}
    assert build.part_dir(more, engine, "/r") == build.part_dir(cfg, engine, "/r")  # the own part: same key
    assert corpus.corpus_dir(more, "/r") != corpus.corpus_dir(cfg, "/r")
    without_keys = {k: v for k, v in cfg.items() if k not in ("extra_speech", "extra_confusable", "extra_keyword")}
    for unchanged in ({**cfg, "extra_speech": {engine: 0}, "extra_confusable": {engine: 0}, "extra_keyword": {engine: 0}},
                      without_keys):
        assert corpus.corpus_dir(unchanged, "/r") == corpus.corpus_dir(cfg, "/r")
    root = manifest.parent.parent  # the shared corpus's parts are reused: only the extra part is synthesized
    with_extra = corpus.read_manifest(corpus.build_corpus(more, root, workers=2))
    extra = [r for r in with_extra if f"{engine}+speech-" in r["path"]]
    confusable = [r for r in with_extra if f"{engine}+confusable-" in r["path"]]
    keywords = [r for r in with_extra if f"{engine}+keyword-" in r["path"]]
    assert [r for r in with_extra if r not in extra + confusable + keywords] == rows  # every own row, in its split
    assert len(extra) == 6 and {(r["kind"], r["label"], r["engine"]) for r in extra} == {("speech", 0, engine)}
    assert len(confusable) == 4 and {(r["kind"], r["label"]) for r in confusable} == {("confusable", 0)}
    assert len(keywords) == 3 and {(r["kind"], r["label"]) for r in keywords} == {("keyword", 1)}
    for row in keywords:  # a keyword span inside the file, as in the own part
        assert 0 <= float(row["kw_start"]) < float(row["kw_end"]) <= float(row["duration"])
    voices = {r["voice"]: r["split"] for r in rows}
    assert all(voices[r["voice"]] == r["split"] for r in extra + keywords)  # the own part's voices, in their splits
    # its own draws: not the sentences a part seeded like the engine's own would say
    settings = build.part_settings(more, f"{engine}+speech")
    as_own = plan_items(CorpusConfig.from_mapping(more), ENGINES[engine], settings)
    assert {r["text"] for r in extra}.isdisjoint(i.text for i in as_own)


def test_extra_speech_keeps_to_the_own_parts_voices_and_the_held_out_split():
    """The extra part speaks with the voices the own part uses (espeak-ng caps them when there are fewer
    keywords than voices), so no voice is heard only in negatives; a held-out engine's or voice's is left out."""
    cfg = tiny_cfg()
    cfg["engines"]["espeak"]["utterances"] = {"keyword": 4, "speech": 3, "confusable": 2}  # 4 of 8 voices
    cfg["extra_speech"] = {"espeak": 12, "festival": 3}
    own = {i.voice for i in build.plan_part(cfg, "espeak")}
    assert len(own) == 4
    assert {i.voice for i in build.plan_part(cfg, "espeak+speech")} == own
    held_out = {**cfg, "splits": {**cfg["splits"], "heldout_engines": ["espeak"]}}
    assert "espeak+speech" not in corpus.used_parts(held_out) and "festival+speech" in corpus.used_parts(held_out)
    rows = [{"path": f"wav/{i}.wav", "voice": v, "engine": "festival", "label": "0", "kind": "speech", "split": ""}
            for i, v in enumerate(["festival:cmu_us_slt_arctic_hts", "festival:kal_diphone"])]
    with pytest.MonkeyPatch.context() as patch:  # write_view reads the parts' manifests: hand it these rows
        patch.setattr(view, "read_raw", lambda manifest: rows)
        patch.setattr(view, "write_manifest", lambda path, joined: joined)
        joined = view.write_view(cfg, {"festival": Path("/p/own/manifest.csv"),
                                       "festival+speech": Path("/p/extra/manifest.csv")}, "/r")
    assert [r["voice"] for r in joined] == ["festival:cmu_us_slt_arctic_hts", "festival:kal_diphone",
                                            "festival:kal_diphone"]  # the held-out voice's extra row is gone


@pytest.mark.parametrize("section", ["extra_keyword", "extra_speech", "extra_confusable"])
@pytest.mark.parametrize("value", [-1, None, 2.5, [3]])
def test_extra_counts_are_checked(section, value):
    with pytest.raises(ValueError, match=f"{section}: counts must be whole numbers"):
        corpus.used_parts({**tiny_cfg(), section: {"pico": value}})
    with pytest.raises(ValueError, match=f"{section}: unknown engines"):
        corpus.used_parts({**tiny_cfg(), section: {"espeek": 3}})


def test_unknown_or_missing_setting_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown.*num_positivs"):
        corpus.build_corpus({**tiny_cfg(), "num_positivs": 3}, tmp_path)
    cfg = tiny_cfg()
    del cfg["carriers"]
    with pytest.raises(ValueError, match="missing.*carriers"):
        corpus.build_corpus(cfg, tmp_path)
    cfg = tiny_cfg()
    cfg["engines"]["pico"]["ratee"] = [1, 2]
    with pytest.raises(ValueError, match="corpus.engines.pico.*unknown.*ratee"):
        build.part_settings(cfg, "pico")
    cfg = tiny_cfg()
    cfg["use"] = ["espeak", "mbrola"]
    with pytest.raises(ValueError, match="unknown engines.*mbrola"):
        corpus.build_corpus(cfg, tmp_path)


def test_rerun_skips_existing_files(built):
    cfg, manifest, _ = built
    folder = build.part_dir(cfg, "espeak", manifest.parent.parent)
    part_manifest = folder / "manifest.csv"
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*.wav")}
    assert corpus.build_corpus(cfg, folder.parent, workers=2) == manifest
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.wav")} == before
    # lose the part's manifest and one file: only that file is made again, identical
    victim = folder / "wav" / "000005.wav"
    content, manifest_text = victim.read_bytes(), part_manifest.read_bytes()
    part_manifest.unlink()
    victim.unlink()
    build.build_part(cfg, "espeak", folder.parent, workers=1)
    assert victim.read_bytes() == content and part_manifest.read_bytes() == manifest_text
    after = {p: p.stat().st_mtime_ns for p in folder.rglob("*.wav")}
    assert {p for p in before if after[p] != before[p]} == {victim}


def test_interrupted_build_resumes_to_the_same_corpus(built, tmp_path):
    cfg, manifest, _ = built
    cfg = {**cfg, "use": ["espeak"]}
    reference = build.part_dir(cfg, "espeak", manifest.parent.parent)
    root = tmp_path / "root"
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfg))
    code = (
        "import json, sys; from audioconv import corpus; "
        "corpus.build_corpus(json.load(open(sys.argv[1])), sys.argv[2], workers=2)"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(cfg_file), str(root)])
    folder = build.part_dir(cfg, "espeak", root)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None and not list(folder.glob("wav/*.wav")):
        time.sleep(0.02)
    time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert list(folder.glob("wav/*.wav")), "killed before any file was written"
    process.wait()
    assert not (folder / "manifest.csv").exists(), "the build finished before it could be interrupted"
    time.sleep(0.2)  # let the orphaned engine processes end
    corpus.build_corpus(cfg, root, workers=2)
    assert (folder / "manifest.csv").read_bytes() == (reference / "manifest.csv").read_bytes()
    assert wav_bytes(folder) == wav_bytes(reference)
    leftovers = [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".work" in p.parts]
    assert leftovers == []


def test_failed_utterance_fails_loudly(tmp_path):
    if ENGINES["festival"].unavailable():
        pytest.skip("festival is not installed")
    shared = CorpusConfig.from_mapping(tiny_cfg())
    settings = build.part_settings(tiny_cfg(), "festival")
    item = Item(0, "keyword", "you are welcome", "festival", "festival:no_such_voice", "no_such_voice",
                params={"stretch": 1.0, "semitones": 0.0})
    with pytest.raises(SynthesisError, match="festival:no_such_voice.*you are welcome"):
        list(ENGINES["festival"].synthesize([item], settings, shared, tmp_path))


@pytest.mark.parametrize("kind", noise.KINDS)
def test_noise_is_deterministic_and_audible(kind):
    settings = build.part_settings(tiny_cfg(), "noise")
    a, b = noise.make_noise(kind, 2.0, 7, settings), noise.make_noise(kind, 2.0, 7, settings)
    assert a.shape == (2 * audio.SAMPLE_RATE,) and np.array_equal(a, b)
    assert np.all(np.isfinite(a)) and np.abs(a).max() > 0
    assert not np.array_equal(a, noise.make_noise(kind, 2.0, 8, settings))


def test_split_assignment_rules(caplog):
    rows = [{"engine": "e", "voice": f"e:{i}", "path": f"{i}.wav"} for i in range(20)]
    rows += [{"engine": "small", "voice": "small:a", "path": "a.wav"}, {"engine": "other", "voice": "other:b",
                                                                        "path": "b.wav"}]
    settings = view.SplitSettings(heldout_engines=("other",), heldout_voices=(), val_engines=(), val_voices=(),
                                  test_voices=("e:3",), val_fraction=0.1, test_fraction=0.1, min_voices=10)
    splits = dict(zip((r["voice"] for r in rows), view.assign_splits(rows, settings, seed=0)))
    assert splits["other:b"] == "heldout" and splits["small:a"] == "train" and splits["e:3"] == "test"
    assert sorted(splits[f"e:{i}"] for i in range(20)).count("val") == 2
    assert view.assign_splits(rows, settings, seed=0) == view.assign_splits(rows, settings, seed=0)
    assert view.assign_splits(rows, settings, seed=0) != view.assign_splits(rows, settings, seed=1)
    with caplog.at_level(logging.WARNING):
        view.assign_splits(rows, dataclasses.replace(settings, test_voices=("nobody",)), seed=0)
    assert "nobody" in caplog.text
    with pytest.raises(ValueError, match="listed for two splits"):
        view.assign_splits(rows, dataclasses.replace(settings, heldout_voices=("e:3",)), seed=0)


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
        rows = corpus.user_corpus_rows(folder, seed=1, val_fraction=0.5)
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
        assert set(row) == set(corpus.MANIFEST_COLUMNS)
        assert Path(row["path"]).is_absolute() and row["engine"] == "user" and row["split"] in ("train", "val")
    assert corpus.user_corpus_rows(folder, seed=1, val_fraction=0.5) == rows  # stable
    splits = {tuple(r["split"] for r in corpus.user_corpus_rows(folder, seed=s, val_fraction=0.5)) for s in range(8)}
    assert len(splits) > 1  # the seed moves files between train and val


def test_an_engines_prepare_runs_once_before_the_workers(tmp_path, monkeypatch):
    """An engine's one-time set-up (Kokoro's model cache) runs in the building process, before any worker:
    two workers assembling the cache at once on a fresh machine collided."""
    from audioconv.corpus.engines import espeak

    if espeak.unavailable():
        pytest.skip(espeak.unavailable())
    calls: list[str] = []
    monkeypatch.setattr(espeak, "prepare", lambda: calls.append("prepare"), raising=False)
    real_execute = build._execute
    monkeypatch.setattr(build, "_execute", lambda *args: (calls.append("execute"), real_execute(*args))[1])
    cfg = tiny_cfg()
    cfg["use"] = ["espeak"]
    cfg["engines"]["espeak"]["utterances"] = {"keyword": 2, "speech": 2, "confusable": 0}
    build.build_part(cfg, "espeak", tmp_path, workers=2)
    assert calls == ["prepare", "execute"]
    build.build_part(cfg, "espeak", tmp_path, workers=2)  # complete: nothing to prepare, nothing to run
    assert calls == ["prepare", "execute"]
