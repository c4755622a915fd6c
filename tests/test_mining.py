"""Hard-negative mining on tiny inputs with a random detector.

A random detector's scores sit in a narrow band; the threshold is set at a
quantile of its own scores so that it fires a few times.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audioconv import audio, checkpoints, corpus, mining
from audioconv.detect import DetectionSettings
from audioconv.models import SpectrogramDetector
from audioconv.scan import scan_chunked

ROOT = Path(__file__).resolve().parent.parent
SR = 16_000
CLIP_SAMPLES = int(1.5 * SR)


@pytest.fixture(scope="module")
def model() -> SpectrogramDetector:
    torch.manual_seed(0)
    return SpectrogramDetector().eval()


def noisy(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wave = 0.05 * rng.standard_normal(int(seconds * SR))
    wave[: int(seconds * SR) // 2] *= 4  # a louder half: something for the scores to vary with
    return wave.astype(np.float32)


def test_cut_clip_centers_the_window() -> None:
    wave = np.arange(1, 101, dtype=np.float32)
    clip = mining.cut_clip(wave, start=40, window=10, clip_samples=30)
    assert clip.size == 30 and np.array_equal(clip[10:20], wave[40:50])
    edge = mining.cut_clip(wave, start=0, window=10, clip_samples=30)
    assert np.all(edge[:10] == 0) and np.array_equal(edge[10:30], wave[:20])


def test_mining_writes_one_clip_per_event(tmp_path: Path, model: SpectrogramDetector) -> None:
    sources = [("a", noisy(12.0, 0)), ("b", noisy(8.0, 1))]
    threshold = float(np.quantile(scan_chunked(model, sources[0][1]), 0.6))
    expected = sum(len(mining.peak_frames(scan_chunked(model, w), model, DetectionSettings(threshold))) for _, w in sources)
    assert expected >= 2
    summary = mining.mine(model, sources, tmp_path / "out", threshold, CLIP_SAMPLES)
    assert summary.windows == expected and summary.sources == 2 and summary.seconds == pytest.approx(20.0)
    files = sorted((tmp_path / "out" / "negative").rglob("*"))
    wavs = [p for p in files if p.is_file()]
    assert len(wavs) == expected and all(p.suffix == ".wav" for p in wavs)  # no temporary left behind
    for path in wavs:
        assert sf.info(str(path)).frames == CLIP_SAMPLES
    index = (tmp_path / "out" / "mined.csv").read_text().splitlines()
    assert index[0] == "file,source,start,end,score" and len(index) == expected + 1
    for line in index[1:]:
        file, source, start, end, score = line.split(",")
        assert (tmp_path / "out" / file).is_file() and float(score) >= threshold
        assert float(end) - float(start) == pytest.approx(model.receptive_field / SR, abs=1e-3)
    # the clip holds the source's audio with the firing window in its middle
    first = index[1].split(",")
    start = int(round(float(first[2]) * SR))
    source = dict(sources)[first[1]]
    clip = audio.load(tmp_path / "out" / first[0])
    offset = (CLIP_SAMPLES - model.receptive_field) // 2
    np.testing.assert_allclose(clip[offset : offset + 100], source[start : start + 100], atol=1 / 32767 + 1e-6)
    # the folder is a user folder: training reads the clips as negatives
    rows = corpus.user_corpus_rows(tmp_path / "out", seed=0)
    assert len(rows) == expected and {r["label"] for r in rows} == {0} and {r["kind"] for r in rows} == {"speech"}


def test_nothing_mined_at_threshold_one(tmp_path: Path, model: SpectrogramDetector) -> None:
    summary = mining.mine(model, [("a", noisy(6.0, 0))], tmp_path / "out", 1.0, CLIP_SAMPLES)
    assert summary.windows == 0
    assert not list((tmp_path / "out").rglob("*.wav"))
    assert (tmp_path / "out" / "mined.csv").read_text().strip() == "file,source,start,end,score"


def test_max_windows_keeps_the_best(tmp_path: Path, model: SpectrogramDetector) -> None:
    sources = [("a", noisy(12.0, 0)), ("b", noisy(8.0, 1))]
    threshold = float(np.quantile(scan_chunked(model, sources[0][1]), 0.6))
    everything = mining.mine(model, sources, tmp_path / "all", threshold, CLIP_SAMPLES)
    best = mining.mine(model, sources, tmp_path / "best", threshold, CLIP_SAMPLES, max_windows=1)
    assert best.windows == 1 <= everything.windows
    scores = [float(line.split(",")[4]) for line in (tmp_path / "all" / "mined.csv").read_text().splitlines()[1:]]
    (line,) = (tmp_path / "best" / "mined.csv").read_text().splitlines()[1:]
    assert float(line.split(",")[4]) == max(scores)


def test_corpus_negative_streams_use_each_negative_once(tmp_path: Path) -> None:
    rows = []
    for i, (label, split) in enumerate([(0, "train"), (0, "train"), (1, "train"), (0, "val")]):
        path = tmp_path / f"{i}.wav"
        sf.write(path, np.full(SR // 2, 0.1 * (i + 1), np.float32), SR)
        rows.append({"path": str(path), "label": label, "kind": "speech", "text": "", "split": split})
    streams_ = list(mining.corpus_negative_streams(rows, "train", seed=0, stream_seconds=100.0))
    assert [name for name, _ in streams_] == ["train-000"]
    wave = streams_[0][1]
    levels = {round(float(v), 3) for v in np.unique(wave)}
    assert levels == {0.0, 0.1, 0.2}  # the two train negatives and pauses; no keyword, no val row


def test_mine_negatives_cli_on_a_folder(tmp_path: Path, model: SpectrogramDetector) -> None:
    folder = tmp_path / "mine"
    (folder / "day one").mkdir(parents=True)
    sf.write(folder / "day one" / "office.wav", noisy(6.0, 2), SR)
    checkpoints.save_detector(tmp_path / "m.safetensors", model, {"_target_": "audioconv.models.SpectrogramDetector"})
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "mine_negatives.py"), "--out", str(tmp_path / "out"), "--no-corpus",
         "--folder", str(folder), "--checkpoint", str(tmp_path / "m.safetensors"), "--threshold", "0",
         "--clip-seconds", "1.5", "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("mined 1 window(s)")  # threshold 0: every frame active, one event
    (clip,) = (tmp_path / "out" / "negative" / "day_one__office").glob("*.wav")
    assert sf.info(str(clip)).frames == CLIP_SAMPLES
