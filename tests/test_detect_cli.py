"""scripts/detect.py as a user runs it: a subprocess on files written with soundfile.

No shipped weights are needed: a randomly initialized detector is saved as a
checkpoint and passed with --checkpoint. Its scores hover around 0.5, so tests
that need events pass --threshold 0 (every frame active: one event per file).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audioconv import checkpoints
from audioconv.plots import plot_paths
from audioconv.models import SpectrogramDetector

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "detect.py"
SR = 16_000
SECONDS = 3.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120)


def noise(seconds: float, sample_rate: int = SR, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(0)
    shape = (int(seconds * sample_rate), channels) if channels > 1 else (int(seconds * sample_rate),)
    return (0.1 * rng.standard_normal(shape)).astype(np.float32)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A checkpoint and one good file, shared by the module's tests."""
    directory = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    model = SpectrogramDetector().eval()
    checkpoints.save_detector(directory / "m.safetensors", model, {"_target_": "audioconv.models.SpectrogramDetector"}, threshold=0.5)
    sf.write(directory / "good.wav", noise(SECONDS), SR)
    return directory


def test_good_file_table(workdir: Path) -> None:
    done = run(workdir / "good.wav", "--checkpoint", workdir / "m.safetensors", "--threshold", "0")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["file", "start", "end", "score"]
    file, start, end, score = lines[1].split()
    assert file == str(workdir / "good.wav")
    assert float(start) == 0.0 and float(end) <= SECONDS and start.count(".") == 1 and len(start.split(".")[1]) == 2


def test_json_lines_and_nothing_else_on_stdout(workdir: Path) -> None:
    good = workdir / "good.wav"
    done = run(good, good, "--checkpoint", workdir / "m.safetensors", "--threshold", "0", "--json", "--smoothing", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        event = json.loads(line)
        assert set(event) == {"file", "start", "end", "score"}
        assert event["file"] == str(good)
        assert 0.0 <= event["start"] < event["end"] <= SECONDS


def test_bad_files_are_reported_and_skipped(workdir: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio\n")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(40)))
    sf.write(tmp_path / "short.wav", noise(0.5), SR)
    nan = noise(SECONDS)
    nan[100] = np.nan
    sf.write(tmp_path / "nan.wav", nan, SR, subtype="FLOAT")
    (tmp_path / "folder.wav").mkdir()
    bad = ["missing.wav", "empty.wav", "text.wav", "corrupt.wav", "short.wav", "nan.wav", "folder.wav"]
    bad_paths = [tmp_path / name for name in bad]
    good = workdir / "good.wav"
    done = run(bad_paths[0], good, *bad_paths[1:], "--checkpoint", workdir / "m.safetensors", "--threshold", "0", "--json")
    assert done.returncode == 1
    assert [json.loads(line)["file"] for line in done.stdout.splitlines()] == [str(good)]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(bad)
    for path, line in zip(bad_paths, errors):
        assert line.startswith(f"error: {path}: ") and len(line) > len(f"error: {path}: ")
    assert "Traceback" not in done.stderr


def test_unusable_model_and_bad_arguments_exit_2(workdir: Path) -> None:
    good = workdir / "good.wav"
    done = run(good, "--checkpoint", workdir / "good.wav")  # audio is not a checkpoint
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ")
    assert run(good, "--threshold", "1.5").returncode == 2
    assert run(good, "--smoothing", "4").returncode == 2


def test_formats_and_plots(workdir: Path, tmp_path: Path) -> None:
    """flac, 48 kHz stereo int24, float64, 8 kHz int16: all read, resampled, scanned; one PNG each."""
    files = {
        "flac.flac": (noise(SECONDS), SR, "PCM_16"),
        "stereo48k.wav": (noise(SECONDS, 48_000, channels=2), 48_000, "PCM_24"),
        "double.wav": (noise(SECONDS).astype(np.float64), SR, "DOUBLE"),
        "narrow8k.wav": (noise(SECONDS, 8_000), 8_000, "PCM_16"),
    }
    for name, (data, rate, subtype) in files.items():
        sf.write(tmp_path / name, data, rate, subtype=subtype)
    paths = [tmp_path / name for name in files]
    out = tmp_path / "plots" / "out.png"
    done = run(*paths, "--checkpoint", workdir / "m.safetensors", "--threshold", "0", "--json", "--plot", out)
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(line)["file"] for line in done.stdout.splitlines()) == sorted(map(str, paths))
    pngs = sorted(p.name for p in out.parent.iterdir())
    assert pngs == sorted(f"out_{Path(name).stem}.png" for name in files)  # no temporary files left behind
    assert all((out.parent / png).read_bytes().startswith(PNG_MAGIC) for png in pngs)


def test_results_stream_is_the_only_thing_on_stdout(tmp_path: Path) -> None:
    """Python prints and C-level writes to fd 1 after the redirect land on stderr."""
    code = (
        "import importlib.util, os, sys\n"
        f"spec = importlib.util.spec_from_file_location('detect_cli', {str(SCRIPT)!r})\n"
        "cli = importlib.util.module_from_spec(spec); spec.loader.exec_module(cli)\n"
        "results = cli.reserve_stdout()\n"
        "print('python noise'); sys.stdout.flush(); os.write(1, b'c noise\\n')\n"
        "results.write('result\\n'); results.flush()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "result\n"
    assert "python noise" in done.stderr and "c noise" in done.stderr


def test_plot_names_are_unique() -> None:
    assert plot_paths("o.png", ["a/x.wav"]) == [Path("o.png")]
    names = [p.name for p in plot_paths("d/o.png", ["a/x.wav", "b/x.flac", "x_2.wav", "y.wav"])]
    assert names == ["o_x.png", "o_x_2.png", "o_x_2_2.png", "o_y.png"]
