"""`scripts/detect.py --stream -` and `--mic` as a user runs them: audio bytes on stdin, events on stdout.

The shipped spectrogram model on the demo stream (real speech, several
keywords). The events of a stream must be those of the file scan: same spans,
scores within float noise (the threshold sits where no frame score is near it).
"""

from __future__ import annotations

import io
import json
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import audioconv
from audioconv import audio

ROOT = Path(__file__).resolve().parent.parent
DETECT = ROOT / "scripts" / "detect.py"
DEMO = ROOT / "data" / "streams" / "demo" / "stream_000.flac"
TOLERANCE = 1e-4
SR = 16_000
BLOCK_IMPORT = """
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "sounddevice":
            raise {error}
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def detect(*args: str | Path, stdin: bytes | None = None, prelude: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, *(["-c", prelude] if prelude else []), str(DETECT), *map(str, args)]
    return subprocess.run(command, input=stdin, capture_output=True, timeout=180)


def events_of(done: subprocess.CompletedProcess) -> list[dict]:
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr
    return [json.loads(line) for line in done.stdout.decode().splitlines()]


def assert_same_events(got: list[dict], expected: list[dict], label: str = "-") -> None:
    assert len(got) == len(expected) >= 3
    for a, b in zip(got, expected):
        assert a["file"] == label and (a["start"], a["end"]) == (b["start"], b["end"])
        assert abs(a["score"] - b["score"]) < TOLERANCE


def wav_bytes(wave: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def demo() -> tuple[np.ndarray, str]:
    """The demo stream as int16 and a threshold near 0.5 that no frame score of either backend is near."""
    samples, rate = sf.read(DEMO, dtype="int16")
    assert rate == SR
    scores = audioconv.load_detector("spectrogram", "onnx").scores(DEMO).probabilities.astype(np.float64)
    candidates = np.linspace(0.4, 0.6, 2001)
    distance = np.min(np.abs(scores[None, :] - candidates[:, None]), axis=1)
    assert distance.max() > 1e-3
    return samples, f"{candidates[int(np.argmax(distance))]:.6f}"


@pytest.fixture(scope="module")
def file_events(demo) -> list[dict]:
    _, threshold = demo
    return events_of(detect(DEMO, "--json", "--threshold", threshold))


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_wav_piped_in_small_irregular_chunks_gives_the_file_events(backend: str, demo, file_events) -> None:
    """Written to the pipe piece by piece; the first events must be on stdout before the stream ends."""
    samples, threshold = demo
    data = wav_bytes(samples, SR)
    command = [sys.executable, str(DETECT), "--stream", "-", "--json", "--threshold", threshold, "--backend", backend]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rng = np.random.default_rng(0)
    position, early = 0, []
    halfway = len(data) // 2  # 30 s in: the keywords at ~8 s and ~13 s are settled by then
    try:
        while position < len(data):
            size = int(rng.integers(1, 7_000))  # odd sizes too: samples split across writes
            process.stdin.write(data[position : position + size])
            process.stdin.flush()
            position += size
            if position >= halfway and not early:
                ready, _, _ = select.select([process.stdout], [], [], 60)
                assert ready, "no event on stdout while the stream was running"
                early.append(json.loads(process.stdout.readline()))
        process.stdin.close()
        rest, errors = process.stdout.read(), process.stderr.read()  # until the end of the stream
        process.wait(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, errors.decode()
    assert b"Traceback" not in errors and b"listening to -" in errors
    got = early + [json.loads(line) for line in rest.decode().splitlines()]
    assert_same_events(got, file_events)


def test_raw_pcm_on_stdin_gives_the_file_events(demo, file_events) -> None:
    samples, threshold = demo
    done = detect("--stream", "-", "--json", "--threshold", threshold, stdin=samples.astype("<i2").tobytes())
    assert_same_events(events_of(done), file_events)


def test_other_rates_are_resampled(demo, tmp_path: Path) -> None:
    """Raw at --rate 22050 and a 44.1 kHz stereo WAV stream: the events of the same audio scanned as files."""
    _, threshold = demo
    for rate, channels in ((22_050, 1), (44_100, 2)):
        wave = audio.load(DEMO, sample_rate=rate)
        pcm = np.round(np.clip(wave, -1, 1) * 32767).astype("<i2")
        path = tmp_path / f"demo_{rate}.wav"
        sf.write(path, np.stack([pcm] * channels, axis=1) if channels > 1 else pcm, rate, subtype="PCM_16")
        expected = events_of(detect(path, "--json", "--threshold", threshold, "--backend", "onnx"))
        if channels == 1:
            streamed = detect("--stream", "-", "--rate", rate, "--json", "--threshold", threshold, "--backend", "onnx",
                              stdin=pcm.tobytes())
        else:
            streamed = detect("--stream", "-", "--json", "--threshold", threshold, "--backend", "onnx",
                              stdin=path.read_bytes())
        got = events_of(streamed)
        assert len(got) == len(expected) >= 3, (rate, got, expected)
        for a, b in zip(got, expected):  # stream and whole-file resampling differ slightly
            assert abs(a["start"] - b["start"]) <= 0.05 and abs(a["end"] - b["end"]) <= 0.05


def test_table_output_and_no_keyword(demo) -> None:
    samples, threshold = demo
    piece = samples[: 20 * SR]
    done = detect("--stream", "-", "--threshold", threshold, "--backend", "onnx", stdin=piece.tobytes())
    lines = done.stdout.decode().splitlines()
    assert done.returncode == 0 and lines[0].split() == ["stream", "start", "end", "score"]
    offline = audioconv.load_detector("spectrogram", "onnx").detect(piece.astype(np.float32) / 32768, SR,
                                                                     threshold=float(threshold))
    assert offline, "the first 20 s of the demo hold keywords the shipped model finds"
    rows = [line.split() for line in lines[1:]]
    assert [row[0] for row in rows] == ["-"] * len(offline)  # a live stream is named "-"
    assert [float(row[1]) for row in rows] == pytest.approx([e.start for e in offline], abs=0.011)
    silent = detect("--stream", "-", "--backend", "onnx", stdin=bytes(4 * SR * 2))
    assert silent.returncode == 0 and silent.stdout.decode() == "-  no keyword found\n"


@pytest.mark.parametrize(
    ("stdin", "fragment"),
    [
        (b"", "no audio: the stream was empty"),
        (b"RIFF\x00\x00\x00\x00WAV", "ended inside its header"),
        (b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(100), "not WAVE audio"),
        (wav_bytes(np.zeros(SR, dtype=np.float32), SR, "ULAW"), "unsupported WAV encoding"),
        (wav_bytes(np.full(SR, np.nan, dtype=np.float32), SR, "FLOAT"), "NaN or infinite"),
    ],
)
def test_bad_streams_get_one_error_line(stdin: bytes, fragment: str) -> None:
    done = detect("--stream", "-", "--backend", "onnx", stdin=stdin)
    assert done.returncode == 1 and done.stdout == b""
    errors = [line for line in done.stderr.decode().splitlines() if not line.startswith("listening")]
    assert len(errors) == 1 and errors[0].startswith("error: -: ") and fragment in errors[0], done.stderr


@pytest.mark.parametrize(
    ("error", "fragment"),
    [("ImportError('no sounddevice')", "pip install sounddevice"), ("OSError('PortAudio library not found')", "PortAudio")],
)
def test_mic_without_sounddevice_or_portaudio_is_one_line(error: str, fragment: str) -> None:
    done = detect("--mic", "--backend", "onnx", prelude=BLOCK_IMPORT.format(error=error))
    assert done.returncode != 0 and done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: mic: ") and fragment in lines[0], done.stderr


def test_live_usage_errors(tmp_path: Path) -> None:
    for args in (["--stream", "-", str(DEMO)], ["--stream", "-", "--plot", "x.png"], [], ["--stream", "-", "--mic"]):
        done = detect(*args, stdin=b"")
        assert done.returncode == 2 and b"usage:" in done.stderr, args
    missing = detect("--stream", tmp_path / "no_such_pipe", "--backend", "onnx")
    assert missing.returncode == 1 and missing.stderr.decode().startswith(f"error: {tmp_path / 'no_such_pipe'}: cannot open")
