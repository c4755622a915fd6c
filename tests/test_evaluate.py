"""Evaluation conventions (hits, false alarms, FA/h, sweep, recall_at, threshold_for, DET),
evaluation streams (deterministic, truth where the keyword is) and scripts/evaluate.py end to end.

No espeak corpus is needed: a fake manifest of numpy-made utterances stands in
(keyword = a loud tone at a known place, other speech = noise bursts).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audioconv import checkpoints, streams
from audioconv.detect import Event
from audioconv.evaluate import (
    HIT_AFTER,
    HIT_BEFORE,
    OperatingPoint,
    det_curve_png,
    match,
    match_detail,
    operating_point,
    recall_at,
    sweep,
    threshold_for,
    top_false_alarms,
)
from audioconv.models import SpectrogramDetector

ROOT = Path(__file__).resolve().parent.parent
SR = 16_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def ev(start: float, end: float, score: float = 0.9, file: str = "f") -> Event:
    return Event(file=file, start=start, end=end, score=score)


# --------------------------------------------------------------------------- matching


def test_event_in_extended_window_is_hit_second_is_false_alarm_far_is_false_alarm() -> None:
    keywords = [(10.0, 10.6)]
    hit = ev(10.6 + HIT_AFTER - 0.05, 12.0)  # starts just inside the window's end
    again = ev(11.7, 12.5)  # same keyword, already hit
    far = ev(30.0, 31.0)
    assert match([hit], keywords) == (1, 0)
    assert match([hit, again], keywords) == (1, 1)
    assert match([hit, again, far], keywords) == (1, 2)
    hit_by, alarms = match_detail([far, again, hit], keywords)
    assert hit_by == [hit] and alarms == [again, far]  # matched in time order, whatever the input order


def test_top_false_alarms_are_those_the_sweep_counts_at_their_own_score() -> None:
    keywords = [(10.0, 10.6)]
    bump = ev(9.0, 10.0, score=0.1)  # faint, earlier in time: the greedy match at the base threshold gives it the hit
    peak = ev(10.1, 11.2, score=0.99)  # the keyword's own peak: at any threshold above 0.1 it is the hit
    lesser = ev(11.3, 12.0, score=0.6)  # a second firing inside the window, below the peak
    far = ev(30.0, 31.0, score=0.8)
    events = {"f": [bump, peak, lesser, far], "g": [ev(5.0, 6.0, score=0.7, file="g")]}
    truth = {"f": keywords, "g": []}
    assert peak in match_detail(events["f"], keywords)[1]  # what listing all base events at once would say
    found = top_false_alarms(events, truth, top=10)
    assert found == [far, events["g"][0], lesser, bump]  # every one but the peak, best first
    assert top_false_alarms(events, truth, top=2) == [far, events["g"][0]]
    # each listed event adds one false alarm to the sweep at its own score
    for alarm in found:
        above = operating_point(events, truth, 1.0, alarm.score + 1e-9).false_alarms
        assert operating_point(events, truth, 1.0, alarm.score).false_alarms == above + 1


def test_window_edges_are_strict() -> None:
    keywords = [(10.0, 10.6)]
    assert match([ev(9.0, 10.0 - HIT_BEFORE)], keywords) == (0, 1)  # ends exactly at the window's start
    assert match([ev(9.0, 10.0 - HIT_BEFORE + 0.01)], keywords) == (1, 0)
    assert match([ev(10.6 + HIT_AFTER, 12.0)], keywords) == (0, 1)  # starts exactly at the window's end


def test_one_event_hits_one_keyword_only() -> None:
    keywords = [(1.0, 1.5), (2.0, 2.5)]  # windows overlap: an event covering both hits the first
    assert match([ev(1.2, 2.2)], keywords) == (1, 0)
    assert match([ev(1.2, 2.2), ev(2.1, 2.6)], keywords) == (2, 0)
    events = {"f": [ev(1.2, 2.2, 0.9), ev(2.1, 2.6, 0.4), ev(7.0, 8.0, 0.6)]}  # the sweep's greedy fallback
    for point in sweep(events, {"f": keywords}, hours=1.0):
        assert point == operating_point(events, {"f": keywords}, 1.0, point.threshold)


def test_false_alarms_per_hour_counts_all_audio() -> None:
    events = {"a": [ev(1, 2, file="a"), ev(50, 51, file="a")], "b": [ev(5, 6, file="b"), ev(9, 10, file="b")]}
    truth = {"a": [(1.2, 1.8)], "b": []}
    point = operating_point(events, truth, hours=0.5, threshold=0.5)
    assert (point.hits, point.keywords, point.false_alarms) == (1, 1, 3)
    assert point.false_alarms_per_hour == pytest.approx(6.0)
    assert point.recall == 1.0 and point.false_rejection_rate == 0.0


def random_case(seed: int, files: int = 3) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    events, truth = {}, {}
    for f in range(files):
        name = f"file{f}"
        starts = np.sort(rng.uniform(0, 120, size=6))
        truth[name] = [(float(s), float(s) + 0.5) for s in starts]
        event_starts = np.sort(rng.uniform(0, 120, size=int(rng.integers(0, 15))))
        events[name] = [ev(float(s), float(s) + rng.uniform(0.3, 2.5), float(rng.uniform(0.05, 1)), name)
                         for s in event_starts]
    return events, truth


@pytest.mark.parametrize("seed", range(6))
def test_sweep_matches_operating_point_and_is_monotone(seed: int) -> None:
    events, truth = random_case(seed)
    points = sweep(events, truth, hours=0.1)
    thresholds = [p.threshold for p in points]
    assert thresholds == sorted(thresholds) and len(set(thresholds)) == len(thresholds)
    for p in points:  # the fast path (and the greedy fallback) agree with matching at each threshold
        assert p == operating_point(events, truth, 0.1, p.threshold)
    recalls = [p.recall for p in points]
    alarms = [p.false_alarms_per_hour for p in points]
    assert all(a >= b for a, b in zip(recalls, recalls[1:]))
    assert all(a >= b for a, b in zip(alarms, alarms[1:]))
    assert points[-1].hits == 0 and points[-1].false_alarms == 0  # above every score


def test_sweep_without_events() -> None:
    points = sweep({}, {"a": [(1.0, 2.0)]}, hours=1.0)
    assert len(points) == 1 and points[0].hits == 0 and points[0].keywords == 1


def points_of(rows: list[tuple[float, int, int]], keywords: int = 10, hours: float = 2.0) -> list[OperatingPoint]:
    return [OperatingPoint(t, h, keywords, fa, hours) for t, h, fa in rows]


def test_recall_at_and_threshold_for() -> None:
    # threshold, hits, false alarms (2 hours of audio)
    points = points_of([(0.1, 10, 9), (0.3, 9, 3), (0.5, 8, 2), (0.6, 8, 1), (0.8, 6, 0), (0.9, 0, 0)])
    assert recall_at(points, 1.0) == (0.8, 0.6)  # 8 hits allowed at 1 FA/h; the higher threshold of the two
    assert recall_at(points, 0.5) == (0.8, 0.6)
    assert recall_at(points, 0.4) == (0.6, 0.8)
    assert recall_at(points, 5.0) == (1.0, 0.1)
    assert threshold_for(points, 1.0) == 0.6
    assert threshold_for(points, 0.4) == 0.8
    assert np.isnan(threshold_for(points_of([(0.5, 1, 1)], hours=0.0), 1.0))  # no audio: nothing qualifies
    # negative-only validation streams: the most sensitive threshold within the budget
    negatives = points_of([(0.1, 0, 9), (0.3, 0, 2), (0.5, 0, 1), (0.9, 0, 0)], keywords=0)
    assert threshold_for(negatives, 1.0) == 0.3
    assert threshold_for(negatives, 0.0) == 0.9


def test_det_curve_png(tmp_path: Path) -> None:
    events, truth = random_case(0)
    path = tmp_path / "det.png"
    det_curve_png({"a": sweep(events, truth, 0.1), "b": sweep(*random_case(1), 0.1)}, path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["det.png"]  # no temporary left


# --------------------------------------------------------------------------- streams


def fake_corpus(folder: Path, split: str = "heldout") -> list[dict]:
    """Manifest-style rows: keyword = 0.3 s silence, 0.5 s loud tone, 0.3 s silence; speech = quiet noise bursts."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    t = np.arange(int(0.5 * SR)) / SR
    for i in range(3):
        wave = np.concatenate([np.zeros(int(0.3 * SR)), 0.8 * np.sin(2 * np.pi * (400 + 100 * i) * t), np.zeros(int(0.3 * SR))])
        sf.write(folder / f"kw{i}.wav", wave.astype(np.float32), SR)
        rows.append({"path": str(folder / f"kw{i}.wav"), "label": 1, "kind": "keyword", "text": "welcome",
                     "kw_start": 0.3, "kw_end": 0.8, "voice": f"voice{i % 2}", "split": split})
    for i, text in enumerate(["that went well", "come here", "the cat sat"]):
        wave = 0.01 * rng.standard_normal(int(rng.uniform(0.8, 1.6) * SR))
        sf.write(folder / f"sp{i}.wav", wave.astype(np.float32), SR)
        rows.append({"path": str(folder / f"sp{i}.wav"), "label": 0, "kind": "speech", "text": text,
                     "kw_start": None, "kw_end": None, "voice": "voice0", "split": split})
    sf.write(folder / "noise.wav", (0.1 * rng.standard_normal(SR)).astype(np.float32), SR)
    rows.append({"path": str(folder / "noise.wav"), "label": 0, "kind": "noise", "text": "", "kw_start": None,
                 "kw_end": None, "voice": "noise:white", "split": split})
    return rows


def test_compose_stream_is_deterministic_and_truth_holds_the_keyword(tmp_path: Path) -> None:
    rows = fake_corpus(tmp_path / "corpus")
    config = streams.StreamConfig(seconds=60.0, keywords_per_minute=8.0, reverb_prob=0.0, background=False)
    wave, keywords = streams.compose_stream(rows, config, seed=3)
    again, keywords_again = streams.compose_stream(rows, config, seed=3)
    other, _ = streams.compose_stream(rows, config, seed=4)
    assert np.array_equal(wave, again) and keywords == keywords_again
    assert not np.array_equal(wave, other)
    assert wave.dtype == np.float32 and wave.size == 60 * SR and np.max(np.abs(wave)) <= 0.9 + 1e-6
    assert len(keywords) >= 3
    for before, after in zip(keywords, keywords[1:]):
        assert after.start - before.end >= config.min_keyword_spacing
    noise_level = np.sqrt(np.mean(wave[np.abs(wave) < 0.05] ** 2))
    for keyword in keywords:
        assert 0 <= keyword.start < keyword.end <= 60.0 - config.end_margin
        assert keyword.voice in ("voice0", "voice1") and keyword.text == "welcome"
        inside = wave[int(keyword.start * SR) : int(keyword.end * SR)]
        assert np.sqrt(np.mean(inside**2)) > 10 * noise_level  # the tone is where the truth says


def test_narrowband_streams_carry_phone_band_speech_and_leave_default_streams_alone(tmp_path: Path) -> None:
    """narrowband_prob=1: every utterance through a phone line (nothing above 4 kHz on digital silence); 0 draws
    nothing, so the default streams are the ones composed before the option existed."""
    rows = [dict(r, path=str(r["path"])) for r in fake_corpus(tmp_path / "corpus")]
    for row in rows:  # wideband "speech": a tone plus white noise
        wave, _ = sf.read(row["path"], dtype="float32")
        sf.write(row["path"], wave + 0.05 * np.random.default_rng(1).standard_normal(wave.size).astype(np.float32), SR)
    config = streams.StreamConfig(seconds=30.0, keywords_per_minute=8.0, reverb_prob=0.0, background=False)
    plain, truth = streams.compose_stream(rows, config, seed=3)
    phone, _ = streams.compose_stream(rows, replace(config, narrowband_prob=1.0), seed=3)
    power = lambda w: np.abs(np.fft.rfft(w.astype(np.float64))) ** 2  # noqa: E731
    top = np.fft.rfftfreq(plain.size, 1 / SR) > 4000
    assert power(plain)[top].sum() / power(plain).sum() > 0.01
    assert power(phone)[top].sum() / power(phone).sum() < 1e-4
    same, truth_same = streams.compose_stream(rows, replace(config, narrowband_prob=0.0), seed=3)
    assert np.array_equal(same, plain) and truth_same == truth


def test_compose_stream_with_background_and_negative_only(tmp_path: Path) -> None:
    rows = fake_corpus(tmp_path / "corpus")
    config = streams.StreamConfig(seconds=20.0, keywords_per_minute=0.0)
    wave, keywords = streams.compose_stream([r for r in rows if r["label"] == 0], config, seed=0)
    assert keywords == [] and wave.size == 20 * SR and np.all(np.isfinite(wave))
    with pytest.raises(ValueError):
        streams.compose_stream([r for r in rows if r["label"] == 0], streams.StreamConfig(seconds=5.0), seed=0)


def test_well_come_is_never_joined() -> None:
    assert streams.forbidden_junction({"text": "that went well!"}, {"text": "Come here"})
    assert streams.forbidden_junction({"text": "as well"}, {"text": "comes along"})
    assert streams.forbidden_junction({"text": "wel"}, {"text": "come"})  # any split of the keyword
    assert not streams.forbidden_junction({"text": "well done"}, {"text": "come here"})
    assert not streams.forbidden_junction({"text": "well"}, {"text": "done"})
    assert not streams.forbidden_junction({"text": "farewell"}, {"text": "come here"})  # not at a word start
    assert not streams.forbidden_junction(None, {"text": "come here"})


def test_forbidden_junction_follows_the_keyword() -> None:
    hello = {"keyword": "hello"}
    assert streams.forbidden_junction({"text": "the hel"}, {"text": "lo there"}, **hello)
    assert streams.forbidden_junction({"text": "hell"}, {"text": "o"}, **hello)
    assert not streams.forbidden_junction({"text": "that went well"}, {"text": "come here"}, **hello)
    assert not streams.forbidden_junction({"text": "hello"}, {"text": "there"}, **hello)  # whole, not split
    # a keyword of two words splits between them too
    assert streams.forbidden_junction({"text": "okay hey"}, {"text": "computer on"}, keyword="hey computer")
    assert streams.forbidden_junction({"text": "well"}, {"text": "done"}, keyword="well done")


def test_compose_stream_keeps_the_configured_keyword_apart(tmp_path: Path) -> None:
    rows = [
        {"path": str(tmp_path / name), "label": 0, "kind": "speech", "text": text, "split": "test"}
        for name, text in (("a.wav", "hel"), ("b.wav", "lo"))
    ]
    for row in rows:
        sf.write(row["path"], np.full(SR // 10, 0.1, np.float32), SR)
    config = streams.StreamConfig(seconds=10.0, keywords_per_minute=0.0, reverb_prob=0.0, background=False,
                                  pause_range=(0.05, 0.05), phrase_prob=0.0, silence_prob=0.0, gain_range_db=(0, 0))
    close, _ = streams.compose_stream(rows, config, seed=1)
    apart, _ = streams.compose_stream(rows, replace(config, keyword="hello"), seed=1)
    assert np.count_nonzero(apart) < np.count_nonzero(close)  # "hel" then "lo": a junction gap each time


def test_truth_round_trip(tmp_path: Path) -> None:
    entries = {"s0.flac": [streams.Keyword(1.0, 1.5, "v", "welcome home")], "neg.wav": []}
    path = tmp_path / "truth.csv"
    streams.write_truth(path, entries)
    truth = streams.read_truth(path)
    assert truth == entries
    assert streams.truth_paths(path, list(truth))["s0.flac"] == tmp_path / "s0.flac"
    wave = np.zeros(SR, np.float32)
    streams.save_stream(tmp_path / "s0.flac", wave)
    assert sf.info(str(tmp_path / "s0.flac")).format == "FLAC"


def test_shipped_weights(tmp_path: Path) -> None:
    assert checkpoints.shipped_weights("conv1d", tmp_path) == tmp_path / "conv1d.safetensors"
    assert checkpoints.shipped_weights(None, tmp_path) == tmp_path / f"{checkpoints.FALLBACK_MODEL}.safetensors"
    (tmp_path / "default.txt").write_text("conv1d\n")
    assert checkpoints.shipped_weights(None, tmp_path).name == "conv1d.safetensors"
    (tmp_path / "default.txt").write_text("nonsense\n")
    with pytest.raises(ValueError):
        checkpoints.shipped_weights(None, tmp_path)
    with pytest.raises(ValueError):
        checkpoints.shipped_weights("nonsense", tmp_path)


# --------------------------------------------------------------------------- the CLI


def test_evaluate_cli_on_a_tiny_stream(tmp_path: Path) -> None:
    rows = fake_corpus(tmp_path / "corpus")
    wave, keywords = streams.compose_stream(rows, streams.StreamConfig(seconds=20.0, keywords_per_minute=9.0), seed=0)
    streams.save_stream(tmp_path / "streams" / "stream_000.wav", wave)
    streams.write_truth(tmp_path / "streams" / "truth.csv", {"stream_000.wav": keywords})
    sf.write(tmp_path / "negative.wav", np.zeros(3 * SR, np.float32), SR)
    torch.manual_seed(0)
    checkpoints.save_detector(tmp_path / "m.safetensors", SpectrogramDetector().eval(),
                              {"_target_": "audioconv.models.SpectrogramDetector"}, threshold=0.5)
    command = [sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--truth", str(tmp_path / "streams" / "truth.csv"),
               str(tmp_path / "negative.wav"), "--checkpoint", str(tmp_path / "m.safetensors")]
    done = subprocess.run([*command, "--det", str(tmp_path / "det.png")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "recall@1FA/h" in done.stdout and "stream_000.wav" in done.stdout and "per voice" in done.stdout
    assert (tmp_path / "det.png").read_bytes()[:8] == PNG_MAGIC
    done = subprocess.run([*command, "--json", "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (model,) = report["models"]
    assert model["keywords"] == len(keywords)
    assert model["hours"] == pytest.approx((20 + 3) / 3600, rel=1e-3)
    assert {f["file"] for f in model["files"]} == {"stream_000.wav", str(tmp_path / "negative.wav")}


def test_make_streams_script_is_deterministic(tmp_path: Path) -> None:
    import csv
    import importlib.util

    from audioconv import corpus

    rows = fake_corpus(tmp_path / "corpus")
    manifest = tmp_path / "corpus" / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=corpus.MANIFEST_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "path": Path(row["path"]).name, "kw_start": row["kw_start"] or "",
                             "kw_end": row["kw_end"] or "", "engine": "test", "duration": 1.0})
    spec = importlib.util.spec_from_file_location("make_streams", ROOT / "scripts" / "make_streams.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for out in ("a", "b"):
        args = ["--split", "heldout", "--count", "2", "--minutes", "0.25", "--seed", "5", "--manifest", str(manifest),
                "--format", "flac", "--out", str(tmp_path / out)]
        assert script.main(args) == 0
    for name in ("stream_000.flac", "stream_001.flac", "truth.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    truth = streams.read_truth(tmp_path / "a" / "truth.csv")
    assert set(truth) == {"stream_000.flac", "stream_001.flac"}  # relative to the truth CSV's folder
    assert (tmp_path / "a" / "stream_000.flac").read_bytes() != (tmp_path / "a" / "stream_001.flac").read_bytes()


def test_compose_stream_logs_what_was_said_without_changing_the_stream(tmp_path: Path) -> None:
    rows = fake_corpus(tmp_path / "corpus")
    config = streams.StreamConfig(seconds=30.0, keywords_per_minute=6.0, background=False)
    said: list[streams.Utterance] = []
    wave, keywords = streams.compose_stream(rows, config, seed=5, said=said)
    again, _ = streams.compose_stream(rows, config, seed=5)
    assert np.array_equal(wave, again), "logging draws nothing"
    assert [u.start for u in said] == sorted(u.start for u in said) and all(u.start < u.end for u in said)
    spoken = [u for u in said if u.kind == "keyword"]
    assert len(spoken) == len(keywords) >= 1
    for keyword, utterance in zip(keywords, spoken):
        assert utterance.start <= keyword.start < keyword.end <= utterance.end + 1e-3
        assert utterance.text == keyword.text
    streams.write_said(tmp_path / "said.csv", {"s.flac": said})
    assert streams.read_said(tmp_path / "said.csv") == {"s.flac": [u._replace(start=round(u.start, 3), end=round(u.end, 3)) for u in said]}
