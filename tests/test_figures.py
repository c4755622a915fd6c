"""scripts/scan_demo.py and audioconv.figures: the teaching figures are written, and their helpers are right.

No trained weights are needed: a randomly initialized detector is saved and
passed with --checkpoint. The demo recording comes from a tiny corpus written
here (two voices of soundfile-written tones and noise, with a manifest), so the
script runs without espeak-ng; the espeak-ng path is tested only where it is
installed.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from audioconv import audio, checkpoints, geometry
from audioconv.figures import common, receptive_field, recording
from audioconv.figures import shift as shift_figure
from audioconv.models import Conv1dDetector, SpectrogramDetector
from audioconv.scan import scan_whole
from audioconv.corpus import MANIFEST_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "scan_demo.py"
SR = audio.SAMPLE_RATE
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = ("scan.png", "shift.png", "receptive_field.png")


def _utterance(rng: np.random.Generator, seconds: float, keyword: tuple[float, float] | None) -> np.ndarray:
    """Silence, a noise burst for the "words", a chirp where the keyword is, silence."""
    wave = np.zeros(int(seconds * SR), np.float32)
    wave[int(0.1 * SR) : int((seconds - 0.1) * SR)] = 0.02 * rng.standard_normal(int((seconds - 0.1) * SR) - int(0.1 * SR))
    if keyword is not None:
        start, end = (int(t * SR) for t in keyword)
        t = np.arange(end - start) / SR
        wave[start:end] = 0.5 * np.sin(2 * np.pi * (300 + 900 * t) * t)
    return wave


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A corpus folder with a manifest: per test voice two keyword and three other utterances."""
    folder = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    rows = []
    for voice in ("espeak:en-us+a", "espeak:en-gb+b"):
        for k in range(5):
            keyword = (0.3, 0.9) if k < 2 else None
            seconds = 1.4 if keyword else 1.0 + 0.2 * k
            name = f"wav/{len(rows):06d}.wav"
            audio.save(folder / name, _utterance(rng, seconds, keyword))
            rows.append({
                "path": name, "label": int(keyword is not None), "kind": "keyword" if keyword else "speech",
                "text": "welcome" if keyword and k == 0 else ("and welcome" if keyword else f"other words {k}"),
                "kw_start": keyword[0] if keyword else "", "kw_end": keyword[1] if keyword else "",
                "engine": "espeak", "voice": voice, "split": "test", "duration": seconds,
            })
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return folder


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "m.safetensors"
    checkpoints.save_detector(path, Conv1dDetector().eval(), {"_target_": "audioconv.models.Conv1dDetector"}, threshold=0.5)
    return path


def _check_pngs(folder: Path) -> None:
    for name in FIGURES:
        data = (folder / name).read_bytes()
        assert data[:8] == PNG_MAGIC, name
        assert len(data) > 10_000, name
    assert not list(folder.glob(".*.tmp")), "a temporary file was left behind"


def test_script_writes_the_three_figures(tmp_path, corpus, random_checkpoint):
    out = tmp_path / "figures"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--checkpoint", str(random_checkpoint), "--corpus", str(corpus),
         "--seed", "3"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(out / name) for name in FIGURES]
    _check_pngs(out)


def test_bad_checkpoint_is_a_usage_error(tmp_path, corpus):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--checkpoint", str(bad), "--corpus", str(corpus)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "bad.ckpt" in done.stderr and not list(tmp_path.glob("*.png"))


def test_random_weights_are_announced(tmp_path):
    loaded = checkpoints.resolve_model("spectrogram", seed=1, models_dir=tmp_path, outputs_dir=tmp_path)
    assert loaded.random and isinstance(loaded.model, SpectrogramDetector)
    assert "RANDOM" in common.title(loaded, "x")


def test_corpus_recording_is_deterministic_and_its_spans_are_the_keywords(corpus):
    manifest = corpus / "manifest.csv"
    first = recording.corpus_recording(manifest, np.random.default_rng(7))
    again = recording.corpus_recording(manifest, np.random.default_rng(7))
    np.testing.assert_array_equal(first.wave, again.wave)
    assert len(first.spans) == 2 and len(first.pieces) >= 4
    for start, end in first.spans:  # the chirp (0.5 peak, scaled with the recording) sits inside each span
        inside = np.abs(first.wave[int(start * SR) : int(end * SR)]).max()
        outside = np.abs(first.wave[int((end + 0.05) * SR) : int((end + 0.15) * SR)]).max()
        assert inside > 3 * outside
        assert end - start == pytest.approx(0.6, abs=2 / SR)


def test_place_at_offsets_returns_the_true_spans():
    rng = np.random.default_rng(0)
    word = rng.standard_normal(5000).astype(np.float32)
    background = 0.01 * rng.standard_normal(20_000).astype(np.float32)
    offsets = [0, 320, 4160, 15_000]
    placements = shift_figure.place_at_offsets(word, offsets, 20_000, background)
    for offset, placement in zip(offsets, placements):
        assert (placement.start, placement.end) == (offset, offset + word.size)
        assert placement.span(SR) == (offset / SR, (offset + word.size) / SR)
        np.testing.assert_allclose(placement.wave[placement.start : placement.end], word + background[offset : offset + word.size])
        rest = np.ones(20_000, bool)
        rest[placement.start : placement.end] = False
        np.testing.assert_array_equal(placement.wave[rest], background[rest])
    with pytest.raises(ValueError):
        shift_figure.place_at_offsets(word, [16_000], 20_000)


def test_whole_hop_offsets_shift_the_scores_exactly():
    torch.manual_seed(0)
    model = Conv1dDetector().eval()
    word = (0.3 * np.random.default_rng(1).standard_normal(8000)).astype(np.float32)
    offsets, total = shift_figure.shift_offsets(word.size, model, count=3, step_seconds=0.1)
    assert all(o % model.hop == 0 for o in offsets) and offsets[0] >= model.receptive_field
    curves = [scan_whole(model, p.wave) for p in shift_figure.place_at_offsets(word, offsets, total)]
    for offset, curve in zip(offsets, curves):
        shift = (offset - offsets[0]) // model.hop
        np.testing.assert_allclose(curve[shift:], curves[0][: curves[0].size - shift], atol=1e-6)
        assert curve.max() == pytest.approx(curves[0].max(), abs=1e-6)


@pytest.mark.parametrize("model", [Conv1dDetector(), SpectrogramDetector()], ids=["conv1d", "spectrogram"])
def test_reached_units_cover_exactly_the_receptive_field(model):
    levels = receptive_field.reached_units(model.time_layers)
    np.testing.assert_array_equal(levels[0], np.arange(model.receptive_field))
    assert levels[-1].tolist() == [0]
    rows = geometry.cumulative(model.time_layers)
    for units, (_, jump, field) in zip(levels[1:], rows):  # each level's reached units span the whole window
        assert units[0] * jump == 0 and units[-1] * jump + field == model.receptive_field


@pytest.mark.skipif(not recording.espeak_available(), reason="espeak-ng is not installed")
def test_espeak_recording_marks_both_keywords():
    demo = recording.espeak_recording(np.random.default_rng(0))
    assert [p.text for p in demo.pieces if p.keyword] == ["welcome", "welcome"]
    assert 4.0 < demo.wave.size / SR <= recording.SCAN_SECONDS[1] + 0.5
    for start, end in demo.spans:
        assert 0.3 < end - start < 1.2
        assert np.abs(demo.wave[int(start * SR) : int(end * SR)]).max() > 0.1


def test_a_pitch_gated_model_gets_the_figures_of_its_unwarped_copy(tmp_path, corpus):
    """The panels inside the network show the copy that hears voices as trained; the scores are the gate's."""
    from audioconv.models import PitchGated

    torch.manual_seed(0)
    config = {"_target_": "audioconv.models.SpectrogramDetector", "conv2d_channels": [4, 8], "channels": 16}
    gated = PitchGated(checkpoints.build_detector(config)).eval()
    path = tmp_path / "gated.safetensors"
    checkpoints.save_detector(path, gated, checkpoints.pitch_gated_config(config, gated), threshold=0.5)
    out = tmp_path / "figures"
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--checkpoint", str(path), "--corpus",
                           str(corpus), "--seed", "3"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    _check_pngs(out)
