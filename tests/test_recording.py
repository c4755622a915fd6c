"""The guided recording session (audioconv.recording, audioconv-record): checks, spans, the folder it writes."""

from __future__ import annotations

import csv
import shutil
import subprocess
from itertools import count
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioconv import audio, mic, recording
from audioconv.cli import record as record_cli
from audioconv.corpus.users import user_corpus_rows
from audioconv.recording import RecordingFolder, Take, check_take, record_session, session_plan, speech_spans

SR = 16_000


def take(seconds: float, words: list[tuple[float, float]], rate: int = SR, level: float = 0.3,
         noise: float = 1e-3, seed: int = 0) -> np.ndarray:
    """Room noise with voiced "words" (harmonics of 140 Hz under a smooth envelope) at (start, length) seconds."""
    rng = np.random.default_rng(seed)
    wave = noise * rng.standard_normal(round(seconds * rate))
    for start, length in words:
        t = np.arange(round(length * rate)) / rate
        voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8))
        envelope = np.sin(np.pi * t / length) ** 0.5
        first = round(start * rate)
        piece = (level / 1.6) * voiced * envelope
        wave[first:first + piece.size] += piece[: wave.size - first]
    return wave.astype(np.float32)


def test_speech_spans_finds_a_word_where_it_is() -> None:
    spans = speech_spans(take(2.5, [(0.9, 0.6)]), SR)
    assert len(spans) == 1
    start, end = spans[0]
    assert 0.9 - 0.1 <= start <= 0.9 and 1.5 <= end <= 1.5 + 0.1


def test_a_word_with_a_short_gap_inside_is_one_span_and_separate_words_are_two() -> None:
    assert len(speech_spans(take(2.5, [(0.6, 0.3), (1.0, 0.3)]), SR)) == 1  # 0.1 s closure, as in "wel-come"
    assert len(speech_spans(take(2.5, [(0.4, 0.3), (1.4, 0.3)]), SR)) == 2


def test_a_good_keyword_take_passes_with_its_span() -> None:
    verdict = check_take(take(2.5, [(0.8, 0.55)]), SR, "keyword")
    assert verdict.ok and verdict.reason == ""
    start, end = verdict.span
    assert start <= 0.8 and end >= 1.35 and end - start < 0.55 + 0.25


@pytest.mark.parametrize(
    ("wave", "fragment"),
    [
        (np.zeros(SR * 2, dtype=np.float32), "nothing heard"),
        (take(2.5, [(0.8, 0.5)], level=4.0), "clipped"),
        (take(2.5, [(0.01, 0.5)]), "very start"),
        (take(2.5, [(2.1, 0.6)]), "cut off"),
        (take(2.5, [(0.4, 0.4), (1.5, 0.4)]), "2 separate sounds"),
        (take(2.5, [(0.3, 1.9)]), "not one"),
        (take(2.5, [(0.8, 0.5)], level=0.01, noise=0.01), "stood out"),
    ],
    ids=["silent", "clipped", "early", "cut-off", "twice", "too-long", "noisy"],
)
def test_unusable_keyword_takes_say_why(wave: np.ndarray, fragment: str) -> None:
    verdict = check_take(wave, SR, "keyword")
    assert not verdict.ok and fragment in verdict.reason and verdict.span is None


def test_other_speech_may_hold_several_words_but_not_just_a_cough() -> None:
    wave = take(4.0, [(0.5, 0.5), (1.4, 0.6), (2.5, 0.7)])
    assert check_take(wave, SR, "other").ok
    assert not check_take(wave, SR, "keyword").ok
    cough = check_take(take(4.0, [(1.0, 0.25)]), SR, "other")
    assert not cough.ok and "whole sentence" in cough.reason


def test_the_room_needs_only_to_be_heard_and_unclipped() -> None:
    assert check_take(take(30.0, [], noise=3e-3), SR, "background").ok
    assert "nothing heard" in check_take(np.zeros(SR, dtype=np.float32), SR, "background").reason
    assert "clipped" in check_take(take(30.0, [(3.0, 1.0)], level=5.0), SR, "background").reason


def test_digital_silence_at_the_start_is_not_taken_for_the_room() -> None:
    wave = take(2.5, [(0.9, 0.5)])
    wave[: SR // 5] = 0.0  # a device that starts with zeros
    verdict = check_take(wave, SR, "keyword")
    assert verdict.ok and 0.75 <= verdict.span[0] <= 0.9, verdict


def test_session_plan_interleaves_and_varies_the_prompts() -> None:
    plan = session_plan(20, 40)
    kinds = [t.kind for t in plan]
    assert kinds.count("keyword") == 20 and kinds.count("other") == 40
    assert kinds[:3].count("keyword") == 1 and kinds[-3:].count("keyword") == 1  # spread, not all first
    runs = "".join("k" if k == "keyword" else "o" for k in kinds).split("k")
    assert max(map(len, runs)) <= 3
    assert len({t.prompt for t in plan if t.kind == "keyword"}) == len(recording.KEYWORD_STYLES)
    assert len({t.prompt for t in plan if t.kind == "other"}) == 40
    assert all(recording.KEYWORD in t.prompt for t in plan if t.kind == "keyword")
    # "well" right before "come" is the keyword itself: no negative prompt may say it
    assert not any("well come" in s.lower().replace(",", "") for s in recording.WELCOME_SENTENCES)


def test_session_plan_refuses_what_it_cannot_prompt() -> None:
    with pytest.raises(ValueError, match="no built-in sentences"):
        session_plan(5, 5, keyword="hello computer")
    assert [t.prompt for t in session_plan(0, 2, keyword="hello computer", sentences=["one.", "", "two."])] == [
        'Read aloud: "one."', 'Read aloud: "two."']
    with pytest.raises(ValueError, match=">= 0"):
        session_plan(-1, 3)
    for said in ("You are welcome here.", "Oh well. Come in!", "WELL,  come"):
        with pytest.raises(ValueError, match="says the keyword"):
            session_plan(1, 1, sentences=["A fine day.", said])


def test_the_room_comes_first_and_long_sentences_get_long_takes() -> None:
    plan = session_plan(2, 2, sentences=["Short one.", " ".join(["word"] * 20) + "."], background_takes=1)
    assert [t.kind for t in plan][0] == "background" and plan[0].seconds == recording.BACKGROUND_SECONDS
    others = [t for t in plan if t.kind == "other"]
    assert others[0].seconds == recording.OTHER_TAKE_SECONDS < others[1].seconds == 9.5
    assert len({t.key for t in plan}) == len(plan)  # every take named once: what resuming goes by


class FakeMicrophone:
    """A Recorder: the n-th take of each kind is scripted; it records at 48 kHz, as many devices do."""

    def __init__(self, bad_every: int = 0) -> None:
        self.calls = count()
        self.bad_every = bad_every

    def __call__(self, seconds: float) -> tuple[np.ndarray, int]:
        n = next(self.calls)
        if self.bad_every and n % self.bad_every == 0:
            return np.zeros(round(seconds * 48_000), dtype=np.float32), 48_000  # nothing heard
        if seconds == recording.KEYWORD_TAKE_SECONDS:
            return take(seconds, [(0.7, 0.5)], rate=48_000, seed=n), 48_000
        return take(seconds, [(0.5, 0.8), (1.7, 0.9)], rate=48_000, seed=n), 48_000


def keyword_rows(root: Path) -> list[dict[str, str]]:
    with (root / "positive" / "keywords.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_session_writes_the_folder_training_reads(tmp_path: Path) -> None:
    folder = RecordingFolder(tmp_path / "rec")
    said: list[str] = []
    saved = record_session(folder, session_plan(4, 6), FakeMicrophone(bad_every=3), lambda prompt: "", said.append)
    assert saved == {"keyword": 4, "other": 6, "background": 0}
    assert sum("again: nothing heard" in line for line in said) >= 3  # bad takes were asked for again
    positives = sorted((tmp_path / "rec" / "positive" / "me").glob("*.wav"))
    assert [p.name for p in positives] == ["001.wav", "002.wav", "003.wav", "004.wav"]
    assert len(list((tmp_path / "rec" / "negative" / "me").glob("*.wav"))) == 6
    info = sf.info(positives[0])
    assert info.samplerate == SR and info.subtype == "PCM_16" and abs(info.duration - recording.KEYWORD_TAKE_SECONDS) < 0.01
    assert [r["file"] for r in keyword_rows(tmp_path / "rec")] == [f"me/{p.name}" for p in positives]

    rows = user_corpus_rows(tmp_path / "rec", seed=0)
    keywords = [r for r in rows if r["kind"] == "keyword"]
    assert len(keywords) == 4 and len([r for r in rows if r["kind"] == "speech"]) == 6
    assert {r["voice"] for r in rows} == {"user:me"}
    for row in keywords:  # each span holds its word (0.7-1.2 s) and not much more
        assert 0.55 <= row["kw_start"] <= 0.7 and 1.2 <= row["kw_end"] <= 1.35


def test_a_stopped_session_resumes_with_the_prompts_it_has_not_got(tmp_path: Path) -> None:
    plan = session_plan(3, 4)
    asked: list[str] = []

    def answers(script: list[str]):  # noqa: ANN202
        replies = iter(script)
        return lambda prompt: asked.append(prompt) or next(replies)

    # record, record, skip, record, then stop: the third take was skipped, not recorded
    first = record_session(RecordingFolder(tmp_path), plan, FakeMicrophone(), answers(["", "", "s", "", "q"]),
                           lambda s: None)
    assert sum(first.values()) == 3
    skipped = plan[2].prompt
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.wav")}
    asked.clear()
    said: list[str] = []
    second = record_session(RecordingFolder(tmp_path), plan, FakeMicrophone(), answers([""] * 4), said.append)
    assert sum(second.values()) == 4 and "3 takes already" in said[0]
    assert [p.split("] ", 1)[1].split("  Enter")[0] for p in asked] == [t.prompt for t in plan[2:3] + plan[4:]]
    assert skipped in asked[0]
    assert all(p.read_bytes() == content for p, content in before.items())  # nothing overwritten
    folder = RecordingFolder(tmp_path)
    assert folder.count("keyword") == 3 and folder.count("other") == 4 and folder.done() == {t.key for t in plan}
    assert len(keyword_rows(tmp_path)) == 3
    assert record_session(folder, plan, FakeMicrophone(), lambda p: pytest.fail("nothing left to ask"),
                          lambda s: None) == dict.fromkeys(recording.KINDS, 0)


def test_other_answers_ask_again_and_record_nothing(tmp_path: Path) -> None:
    replies = iter(["quiet", "y", "n", "QUIT"])
    said: list[str] = []
    microphone = FakeMicrophone()
    saved = record_session(RecordingFolder(tmp_path), session_plan(1, 0), microphone, lambda p: next(replies),
                           said.append)
    assert saved["keyword"] == 0 and next(microphone.calls) == 0  # the microphone was never used
    assert sum("press Enter to record" in line for line in said) == 3


def test_a_take_stopped_while_saving_leaves_no_file_without_its_span(tmp_path: Path, monkeypatch) -> None:
    folder = RecordingFolder(tmp_path)
    keyword = session_plan(1, 0)[0]
    wave = take(2.5, [(0.8, 0.5)])
    verdict = check_take(wave, SR, "keyword")

    def interrupted(path, wave):  # noqa: ANN001, ANN202
        raise KeyboardInterrupt

    monkeypatch.setattr(recording.audio, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        folder.save(wave, keyword, verdict)
    monkeypatch.undo()
    assert not list(tmp_path.rglob("*.wav")) and folder.done() == set()  # a row without a file is not a take
    assert [r["kind"] for r in user_corpus_rows(tmp_path, seed=0)] == []
    folder.save(wave, keyword, verdict)  # the next take at that number replaces the orphan rows
    assert [r["file"] for r in keyword_rows(tmp_path)] == ["me/001.wav"] and folder.done() == {keyword.key}
    with (tmp_path / "takes.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 1


def test_skips_and_hopeless_takes_save_nothing(tmp_path: Path) -> None:
    folder = RecordingFolder(tmp_path)
    said: list[str] = []
    saved = record_session(folder, session_plan(1, 1), FakeMicrophone(bad_every=1), lambda p: "", said.append,
                           max_tries=2)
    assert sum(saved.values()) == 0 and sum("skipped after 2 tries" in s for s in said) == 2
    saved = record_session(folder, session_plan(1, 1), FakeMicrophone(), lambda p: "s", said.append)
    assert sum(saved.values()) == 0 and not list(tmp_path.rglob("*.wav"))
    assert not (tmp_path / "positive" / "keywords.csv").exists()


def test_the_folder_keeps_other_rows_and_refuses_bad_input(tmp_path: Path) -> None:
    (tmp_path / "positive").mkdir()
    (tmp_path / "positive" / "keywords.csv").write_text("file,kw_start,kw_end\nalice/001.wav,0.1,0.7\n")
    folder = RecordingFolder(tmp_path, speaker="bob")
    keyword = Take("keyword", "keyword-01", "say it", recording.KEYWORD_TAKE_SECONDS)
    wave = take(2.5, [(0.8, 0.5)])
    folder.save(wave, keyword, check_take(wave, SR, "keyword"))
    assert [r["file"] for r in keyword_rows(tmp_path)] == ["alice/001.wav", "bob/001.wav"]
    with pytest.raises(ValueError, match="unusable"):
        folder.save(wave, keyword, recording.Verdict(False, "no"))
    for speaker in ("", "../x", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="plain folder name"):
            RecordingFolder(tmp_path, speaker)


def test_cli_records_from_the_microphone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    calls = count()

    def blocks(rate: int, device: object = None, block_seconds: float = 0.1):  # noqa: ANN202
        n = next(calls)
        wave = take(4.0, [(0.7, 0.5)] if n % 2 == 0 else [(0.5, 0.8), (1.7, 0.9)], rate=rate, seed=n)
        step = round(block_seconds * rate)
        yield from (wave[i:i + step] for i in range(0, wave.size, step))

    monkeypatch.setattr(mic, "open_rate", lambda rate, device=None: 44_100)
    monkeypatch.setattr(mic, "blocks", blocks)
    monkeypatch.setattr("builtins.input", lambda prompt="": "")
    assert record_cli.main([str(tmp_path / "rec"), "--keywords", "2", "--other", "2", "--background", "0",
                            "--speaker", "ann"]) == 0
    err = capsys.readouterr().err
    assert "make adapt RECORDINGS=" in err and "holds 2, 2 and 0 for ann" in err
    assert len(keyword_rows(tmp_path / "rec")) == 2


def test_cli_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    def no_device(rate: int, device: object = None) -> int:
        raise mic.MicrophoneError("no usable input device (none)")

    monkeypatch.setattr(mic, "open_rate", no_device)
    assert record_cli.main([str(tmp_path)]) == record_cli.EXIT_FAILED
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["error: microphone: no usable input device (none)"]
    assert record_cli.main([str(tmp_path), "--sentences", str(tmp_path / "missing.txt")]) == record_cli.EXIT_USAGE
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'missing.txt'}: ")
    monkeypatch.setattr(mic, "open_rate", lambda rate, device=None: SR)
    (tmp_path / "a_file").write_text("not a folder")
    assert record_cli.main([str(tmp_path / "a_file")]) == record_cli.EXIT_FAILED
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'a_file'}: "), lines
    assert not list(tmp_path.rglob("*.wav"))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
@pytest.mark.parametrize("voice", ["en-us", "en-gb-x-rp+f3", "en+whisper", "en-us+m7"])
def test_a_spoken_keyword_passes_with_a_span_around_the_word(voice: str, tmp_path: Path) -> None:
    """Real speech, not a tone: espeak-ng says the keyword in a quiet room; the span holds all of it, tightly."""
    out = tmp_path / "w.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), "welcome"], check=True, capture_output=True)
    word, rate = sf.read(out, dtype="float32")
    word = 0.5 * word / np.abs(word).max()
    loud = np.flatnonzero(np.abs(word) > 0.01)  # the word's own extent: within 34 dB of its peak
    lead = round(0.6 * rate)
    wave = np.zeros(round(recording.KEYWORD_TAKE_SECONDS * rate), dtype=np.float32)
    wave[lead:lead + word.size] = word
    wave += 3e-4 * np.random.default_rng(0).standard_normal(wave.size).astype(np.float32)
    verdict = check_take(audio.resample(wave, rate), SR, "keyword")
    assert verdict.ok, verdict.reason
    start, end = verdict.span
    assert (lead + loud[0]) / rate - 0.1 <= start <= (lead + loud[0]) / rate + 0.02
    assert (lead + loud[-1]) / rate - 0.02 <= end <= (lead + loud[-1]) / rate + 0.1
