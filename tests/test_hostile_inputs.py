"""Hostile inputs: broken, odd and malicious files, for the audio loader, the user corpus and the detect CLI.

The contract for each: a correct result, or one clear line naming the file and
the reason (``AudioError`` in the library, ``error: PATH: reason`` and a
non-zero exit in the CLI; never a traceback), and never foreign code run.
(A C library may add its own line: libmpg123, libsndfile's mp3 probe, warns on
some random bytes.) tests/test_detect_cli.py already covers, for the CLI, a missing file, an empty
one, text, a corrupt header, a too-short file, NaN samples, a directory and
flac / 48 kHz stereo int24 / float64 / 8 kHz files: the audio cases here go
further (and run them through the loader, the user corpus and the ONNX
backend too); the checkpoint and export cases are new.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from audioconv import audio, checkpoints, corpus, export
from audioconv.models import SpectrogramDetector

ROOT = Path(__file__).resolve().parent.parent
DETECT = ROOT / "scripts" / "detect.py"
SR = 16_000
SECONDS = 1.5  # longer than the detectors' receptive field (~0.95 s)
SPECTROGRAM = {"_target_": "audioconv.models.SpectrogramDetector"}
CONV1D = {"_target_": "audioconv.models.Conv1dDetector"}

# name -> what audio.load must say (a fragment of the reason), or None: the file is usable
BAD_AUDIO = {
    "empty.wav": "empty file",
    "truncated_header.wav": "not a readable audio file",
    "random_bytes.wav": "not a readable audio file",
    "text.wav": "not a readable audio file",
    "no_frames.wav": "contains no samples",
    "nan.wav": "NaN or infinite",
    "inf.wav": "NaN or infinite",
    "six_channels_inf.wav": "NaN or infinite",
    "directory.wav": "is a directory",
    "fifo.wav": "not a regular file",  # opening a pipe would block for ever
    "loop.wav": "symbolic link",
    "missing.wav": "no such file",
}
GOOD_AUDIO = {  # name -> (rate, channels, subtype)
    "u8.wav": (SR, 1, "PCM_U8"),
    "s24.wav": (SR, 1, "PCM_24"),
    "f64.wav": (SR, 1, "DOUBLE"),
    "8k.wav": (8_000, 1, "PCM_16"),
    "48k.wav": (48_000, 1, "PCM_16"),
    "six_channels.wav": (44_100, 6, "FLOAT"),
    "clipped.wav": (44_100, 2, "PCM_16"),  # full-scale square wave: resampling rings past full scale
    "truncated_data.wav": (SR, 1, "PCM_16"),  # header promises 2 s, the file holds 1.5 s
}


def tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.random.default_rng(0).standard_normal(t.size)
    return np.repeat(wave[:, None], channels, axis=1) if channels > 1 else wave


def write_silence_wav(path: Path, seconds: float, rate: int = SR) -> None:
    """A valid 16-bit mono wav of digital silence, written as a sparse file: header, then a hole."""
    data_bytes = int(seconds * rate) * 2
    with path.open("wb") as handle:
        handle.write(b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE")
        handle.write(b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16))
        handle.write(b"data" + struct.pack("<I", data_bytes))
        handle.truncate(44 + data_bytes)


def write_audio_cases(directory: Path) -> None:
    """Every file of BAD_AUDIO (but the missing one) and GOOD_AUDIO in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "empty.wav").write_bytes(b"")
    sf.write(directory / "truncated_data.wav", tone(2.0, SR), SR, subtype="PCM_16")
    whole = (directory / "truncated_data.wav").read_bytes()
    (directory / "truncated_header.wav").write_bytes(whole[:20])
    (directory / "truncated_data.wav").write_bytes(whole[: 44 + int(SECONDS * SR) * 2])
    (directory / "random_bytes.wav").write_bytes(np.random.default_rng(1).bytes(4096))
    (directory / "text.wav").write_text("RIFF? no: a shopping list\n" * 20)
    sf.write(directory / "no_frames.wav", np.zeros(0, dtype=np.float32), SR)
    for name, bad in (("nan.wav", np.nan), ("inf.wav", np.inf)):
        wave = tone(SECONDS, SR).astype(np.float32)
        wave[1000] = bad
        sf.write(directory / name, wave, SR, subtype="FLOAT")
    six = tone(SECONDS, SR, channels=6).astype(np.float32)
    six[500, 3] = -np.inf
    sf.write(directory / "six_channels_inf.wav", six, SR, subtype="FLOAT")
    (directory / "directory.wav").mkdir()
    os.mkfifo(directory / "fifo.wav")
    os.symlink("loop.wav", directory / "loop.wav")
    for name, (rate, channels, subtype) in GOOD_AUDIO.items():
        if name == "clipped.wav":
            square = np.where(np.sin(2 * np.pi * 300 * np.arange(int(SECONDS * rate)) / rate) >= 0, 1.0, -1.0)
            sf.write(directory / name, np.stack([square, -square], axis=1), rate, subtype=subtype)
        elif name != "truncated_data.wav":
            sf.write(directory / name, tone(SECONDS, rate, channels), rate, subtype=subtype)


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("hostile") / "audio"
    write_audio_cases(directory)
    return directory


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    """A random spectrogram detector as safetensors and as its ONNX export."""
    directory = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    model = SpectrogramDetector().eval()
    checkpoints.save_detector(directory / "m.safetensors", model, SPECTROGRAM, threshold=0.5)
    model, info = checkpoints.load_detector(directory / "m.safetensors")
    return {
        "safetensors": directory / "m.safetensors",
        "onnx": export.export(model, info, directory / "m.onnx", "onnx"),
    }


def run(*args: str | Path | bytes, text: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, str(DETECT), *(a if isinstance(a, bytes) else str(a) for a in args)]
    return subprocess.run(command, capture_output=True, text=text, timeout=180)


def assert_one_error_line(done: subprocess.CompletedProcess, path: Path, fragment: str, code: int = 2) -> None:
    """Exit ``code``, nothing on stdout, and stderr exactly one ``error: PATH: ...`` line holding ``fragment``."""
    assert done.returncode == code, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {path}: ") and fragment in lines[0], lines[0]


# --------------------------------------------------------------------------- audio files


@pytest.mark.parametrize("name", [*BAD_AUDIO, *GOOD_AUDIO])
def test_audio_load(cases: Path, name: str) -> None:
    path = cases / name
    if name in BAD_AUDIO:
        with pytest.raises(audio.AudioError) as caught:
            audio.load(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and BAD_AUDIO[name] in message and "\n" not in message
        return
    wave = audio.load(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(wave.size - SECONDS * SR) <= 1
    assert np.all(np.isfinite(wave)) and np.abs(wave).max() <= 1.0
    if name == "clipped.wav":  # channels in antiphase average to silence; full scale survives resampling clipped
        assert np.abs(wave).max() < 1e-3


def test_clipped_mono_stays_within_full_scale(tmp_path: Path) -> None:
    rate = 44_100
    square = np.where(np.sin(2 * np.pi * 300 * np.arange(rate) / rate) >= 0, 1.0, -1.0)
    sf.write(tmp_path / "square.wav", square, rate, subtype="PCM_16")
    wave = audio.load(tmp_path / "square.wav")
    assert np.abs(wave).max() <= 1.0 and np.abs(wave).max() > 0.99  # ringing clipped, level kept


def test_unreadable_file(tmp_path: Path, monkeypatch, weights) -> None:
    path = tmp_path / "locked.wav"
    sf.write(path, tone(SECONDS, SR), SR)
    path.chmod(0)
    try:
        if os.geteuid() != 0:  # root reads anything: there the check is exercised through os.access below
            with pytest.raises(audio.AudioError, match="permission denied"):
                audio.load(path)
            done = run(path, "--onnx", weights["onnx"])
            assert done.returncode == 1 and f"error: {path}: permission denied" in done.stderr
            assert "Traceback" not in done.stderr
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == path else real_access(p, mode))
        with pytest.raises(audio.AudioError, match="permission denied"):
            audio.load(path)
    finally:
        path.chmod(0o644)


def test_user_corpus_skips_each_bad_file_with_one_warning(tmp_path: Path, caplog) -> None:
    folder = tmp_path / "mine"
    write_audio_cases(folder / "negative" / "hostile")
    with caplog.at_level(logging.WARNING, logger="audioconv.corpus.users"):
        rows = corpus.user_corpus_rows(folder, seed=0)
    assert sorted(Path(row["path"]).name for row in rows) == sorted(GOOD_AUDIO)
    regular_bad = [n for n in BAD_AUDIO if (folder / "negative" / "hostile" / n).is_file()]  # pipes, links: not files
    assert set(regular_bad) >= {"empty.wav", "truncated_header.wav", "random_bytes.wav", "text.wav", "nan.wav"}
    messages = [record.getMessage() for record in caplog.records]
    for name in regular_bad:
        mine = [m for m in messages if f"/{name}:" in m]
        assert len(mine) == 1, (name, messages)
        assert "\n" not in mine[0] and BAD_AUDIO[name] in mine[0]
    assert len(messages) == len(regular_bad)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_detect_cli_reports_each_bad_file_and_scans_the_rest(cases: Path, weights, backend: str) -> None:
    names = [*BAD_AUDIO, *GOOD_AUDIO]
    names.sort(key=lambda n: hash(n) % 7)  # good and bad files interleaved
    done = run(*(cases / n for n in names), "--checkpoint", weights["safetensors" if backend == "torch" else "onnx"],
               "--threshold", "0", "--json")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    good = [str(cases / n) for n in names if n in GOOD_AUDIO]
    assert [event["file"] for event in events] == good  # threshold 0: one event per usable file, in order
    assert all(0.0 <= e["start"] < e["end"] <= SECONDS + 1e-9 for e in events)
    lines = done.stderr.splitlines()
    assert lines[-1] == f"{len(BAD_AUDIO)} of {len(names)} file(s) failed"
    # libsndfile's mp3 probe (libmpg123) may print its own C-level warning for random bytes: not ours to silence
    errors = [line for line in lines if not line.startswith("[src/libmpg123/")][:-1]
    bad = [n for n in names if n in BAD_AUDIO]
    assert len(errors) == len(bad), done.stderr
    for name, line in zip(bad, errors):
        assert line.startswith(f"error: {cases / name}: ") and BAD_AUDIO[name] in line


def test_hour_of_silence_loads_and_scans(tmp_path: Path, weights) -> None:
    path = tmp_path / "hour.wav"
    write_silence_wav(path, 3600.0)
    assert path.stat().st_size == 44 + 3600 * SR * 2
    wave = audio.load(path)
    assert wave.shape == (3600 * SR,) and wave.dtype == np.float32 and not wave.any()
    del wave
    done = run(path, "--onnx", weights["onnx"], "--threshold", "0", "--json")
    assert done.returncode == 0, done.stderr
    (event,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert event["start"] == 0.0 and 3599.9 < event["end"] <= 3600.0


@pytest.mark.slow
def test_hour_of_silence_torch_backend(tmp_path: Path, weights) -> None:
    """~25 s on two busy cores: the torch backend agrees with the ONNX one on an hour of silence."""
    path = tmp_path / "hour.wav"
    write_silence_wav(path, 3600.0)
    results = [run(path, "--checkpoint", weights[kind], "--threshold", "0", "--json") for kind in ("safetensors", "onnx")]
    assert all(done.returncode == 0 for done in results)
    torch_event, onnx_event = (json.loads(done.stdout) for done in results)
    assert torch_event["end"] == onnx_event["end"] and abs(torch_event["score"] - onnx_event["score"]) < 1e-4


def test_file_names_cannot_break_the_output(tmp_path: Path, weights) -> None:
    """A name with a newline or an escape sequence stays on one error line; a non-UTF-8 name round-trips."""
    tricky = tmp_path / "two\nlines\x1b[31m.wav"
    tricky.write_text("not audio")
    done = run(tricky, "--onnx", weights["onnx"])
    assert done.returncode == 1
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and "two\\nlines\\x1b[31m.wav" in error_lines[0]
    assert "\x1b" not in done.stderr
    raw_name = os.fsencode(tmp_path) + b"/caf\xe9.wav"  # latin-1, not UTF-8
    sf.write(tmp_path / "cafe.wav", tone(SECONDS, SR), SR)
    os.rename(os.fsencode(tmp_path / "cafe.wav"), raw_name)
    assert audio.load(os.fsdecode(raw_name)).size == SECONDS * SR
    done = run(raw_name, "--onnx", weights["onnx"], "--threshold", "0", text=False)  # the table names the file
    assert done.returncode == 0, done.stderr
    assert raw_name in done.stdout and b"Traceback" not in done.stderr


# --------------------------------------------------------------------------- checkpoints and exports


class RunsCode:
    """Unpickling this calls ``eval`` on code that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"__import__('pathlib').Path({str(self.marker)!r}).touch()",))


def _spectrogram_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.contiguous() for k, v in SpectrogramDetector().state_dict().items()}


def _audioconv_metadata(model_config: dict) -> dict[str, str]:
    return {"format": "audioconv-detector-1", "model_config": json.dumps(model_config), "info": "{}"}


def make_checkpoint(kind: str, directory: Path, marker: Path) -> tuple[Path, str]:
    """A hostile checkpoint of the given kind and the fragment its error line must contain."""
    if kind == "other_model":  # spectrogram weights under a header that says conv1d
        path = directory / "mislabelled.safetensors"
        save_file(_spectrogram_state(), str(path), metadata=_audioconv_metadata(CONV1D))
        return path, "weights do not fit the detector"
    if kind == "foreign_target":  # a header naming an arbitrary callable: must never be imported or called
        path = directory / "target.safetensors"
        config = {"_target_": "os.system", "command": f"touch {marker}"}
        save_file(_spectrogram_state(), str(path), metadata=_audioconv_metadata(config))
        return path, "unknown detector"
    if kind == "no_metadata":  # another project's safetensors
        path = directory / "foreign.safetensors"
        save_file({"encoder.weight": torch.zeros(4, 4)}, str(path))
        return path, "not an audioconv detector"
    if kind == "truncated_safetensors":
        path = directory / "cut.safetensors"
        save_file(_spectrogram_state(), str(path), metadata=_audioconv_metadata(SPECTROGRAM))
        path.write_bytes(path.read_bytes()[:1000])
        return path, "not a readable safetensors file"
    if kind == "lightning_foreign":  # a Lightning checkpoint from another project
        path = directory / "other_project.ckpt"
        torch.save({"state_dict": {"net.weight": torch.zeros(2)}, "hyper_parameters": {"lr": 0.1}, "epoch": 3}, path)
        return path, "not an audioconv checkpoint"
    if kind == "pickle_runs_code":  # a torch.save'd checkpoint holding an object whose unpickling runs code
        path = directory / "evil.ckpt"
        torch.save({"state_dict": {"model.head.bias": torch.zeros(1)}, "payload": RunsCode(marker)}, path)
        return path, "refused"
    if kind == "raw_pickle_runs_code":  # the same in a plain pickle, not torch's zip format
        path = directory / "evil_raw.ckpt"
        path.write_bytes(pickle.dumps({"state_dict": RunsCode(marker)}))
        return path, "refused"
    if kind == "truncated_ckpt":
        path = directory / "cut.ckpt"
        torch.save({"state_dict": _spectrogram_state()}, path)
        path.write_bytes(path.read_bytes()[:5000])
        return path, "not a PyTorch checkpoint"
    if kind == "nan_weights":  # loads fine; every score is NaN
        path = directory / "nan.safetensors"
        state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in _spectrogram_state().items()}
        save_file(state, str(path), metadata=_audioconv_metadata(SPECTROGRAM))
        return path, "frame probabilities must be finite"
    raise AssertionError(kind)


# Through the CLI (a subprocess each, ~2 s of torch import): the cases the CLI contract is about.
CLI_CHECKPOINT_KINDS = ["other_model", "no_metadata", "lightning_foreign", "pickle_runs_code", "nan_weights"]
# The library refuses these too (checked in-process, where it is cheap); nan_weights loads and fails only when scoring.
LIBRARY_CHECKPOINT_KINDS = [
    "other_model", "foreign_target", "no_metadata", "truncated_safetensors", "lightning_foreign",
    "pickle_runs_code", "raw_pickle_runs_code", "truncated_ckpt",
]


@pytest.mark.parametrize("kind", CLI_CHECKPOINT_KINDS)
def test_hostile_checkpoint_cli(kind: str, tmp_path: Path, cases: Path) -> None:
    marker = tmp_path / "code_ran"
    path, fragment = make_checkpoint(kind, tmp_path, marker)
    done = run(cases / "s24.wav", "--checkpoint", path)
    assert_one_error_line(done, path, fragment)
    assert not marker.exists(), "loading the checkpoint ran code from it"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("kind", LIBRARY_CHECKPOINT_KINDS)
def test_hostile_checkpoint_library(kind: str, tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    path, fragment = make_checkpoint(kind, tmp_path, marker)
    with pytest.raises(checkpoints.CheckpointError) as caught:
        checkpoints.load_detector(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and fragment in message and "\n" not in message
    assert not marker.exists(), "loading the checkpoint ran code from it"


def _tampered_export(source: Path, path: Path, **changes: object) -> None:
    import onnx

    proto = onnx.load(str(source))
    for entry in proto.metadata_props:
        if entry.key in changes:
            entry.value = json.dumps(changes[entry.key])
    onnx.save(proto, str(path))


def test_hostile_onnx_files(tmp_path: Path, cases: Path, weights) -> None:
    import onnx
    from onnx import TensorProto, helper

    identity = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "foreign",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None])],
        )
    )
    onnx.save(identity, str(tmp_path / "foreign.onnx"))
    (tmp_path / "random.onnx").write_bytes(np.random.default_rng(3).bytes(3000))
    (tmp_path / "cut.onnx").write_bytes(weights["onnx"].read_bytes()[:5000])
    _tampered_export(weights["onnx"], tmp_path / "wrong_hop.onnx", hop=160, time_layers=[[400, 160]])
    _tampered_export(weights["onnx"], tmp_path / "bad_geometry.onnx", time_layers="not a list")
    expected = {
        "foreign.onnx": "not an audioconv export",
        "random.onnx": "not a readable ONNX model",
        "cut.onnx": "not a readable ONNX model",
        "wrong_hop.onnx": "the model failed on",
        "bad_geometry.onnx": "no usable geometry",
        "missing.onnx": "no such file",
    }
    for name, fragment in expected.items():
        done = run(cases / "s24.wav", "--onnx", tmp_path / name)
        assert_one_error_line(done, tmp_path / name, fragment)
