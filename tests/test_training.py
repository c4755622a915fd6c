"""End to end: the tiny config synthesizes a corpus, trains, checkpoints, tests and reports."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from audioconv.checkpoints import load_detector
from conftest import ROOT


def run_train(*overrides: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="session")
def corpus_root(tmp_path_factory) -> Path:
    """One tiny corpus for every training test (built by the first run, reused by the rest)."""
    return tmp_path_factory.mktemp("corpus")


def epoch_losses(run_dir: Path) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    return [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")]


@pytest.mark.parametrize(
    "model, pooling",
    # the default pooling (frames) for both models in CI; the other poolings in the slow set, to keep CI under 10 min
    [pytest.param("conv1d", "max", marks=pytest.mark.slow), pytest.param("spectrogram", "max", marks=pytest.mark.slow),
     pytest.param("spectrogram", "lse", marks=pytest.mark.slow), ("spectrogram", "frames"), ("conv1d", "frames")],
)
def test_tiny_training_end_to_end(model: str, pooling: str, corpus_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_train(
        f"model={model}",
        "experiment=tiny",
        "trainer.max_epochs=4",
        f"loss.pooling={pooling}",
        f"paths.corpus_root={corpus_root}",
        f"hydra.run.dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*")), "TensorBoard logs are written"

    report = json.loads((run_dir / "metrics.json").read_text())
    for split in ("test", "heldout"):
        for name in ("accuracy", "precision", "recall", "auroc", "false_alarms_per_hour"):
            assert f"{split}/{name}" in report["metrics"]
    assert "Test report" in result.stdout and "heldout" in result.stdout
    assert report["corpus_audio"] and all(len(d) == 12 for d in report["corpus_audio"].values())
    assert report["machine"]["torch"] == torch.__version__ and report["machine"]["threads"] >= 1

    losses = epoch_losses(run_dir)
    assert len(losses) == 4
    assert losses[-1] < losses[0], f"training loss did not go down: {losses}"

    # the checkpoint loads without unpickling and reproduces the trained model's geometry
    hparams = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["hyper_parameters"]
    assert hparams["loss"]["pooling"] == pooling
    detector, info = load_detector(run_dir / "checkpoints" / "best.ckpt")
    assert detector.receptive_field == report["receptive_field"]
    assert info["model_config"]["_target_"].endswith("Detector")
    with torch.no_grad():
        assert detector(torch.zeros(1, detector.receptive_field)).shape == (1, 1)


@pytest.fixture(scope="module")
def reference_run(corpus_root: Path, tmp_path_factory) -> dict:
    """An uninterrupted tiny run of 3 epochs: what determinism and resume are compared against."""
    run_dir = tmp_path_factory.mktemp("reference")
    result = run_train(
        "experiment=tiny", "trainer.max_epochs=3", f"paths.corpus_root={corpus_root}", f"hydra.run.dir={run_dir}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # last.ckpt is the last epoch's, whether or not its validation loss was the best (what a resume starts from)
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["epoch"] == 2
    return json.loads((run_dir / "metrics.json").read_text())["metrics"]


def test_same_seed_same_metrics(reference_run: dict, corpus_root: Path, tmp_path: Path) -> None:
    """The same config and seed give the same corpus, data order and metrics, also when every epoch's
    weights are kept (``checkpoint.every_epoch``: saving them changes nothing in training)."""
    result = run_train(
        "experiment=tiny", "trainer.max_epochs=3", f"paths.corpus_root={corpus_root}", f"hydra.run.dir={tmp_path}",
        "checkpoint.every_epoch=true",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == reference_run
    kept = sorted(p.name for p in (tmp_path / "checkpoints" / "epochs").iterdir())
    assert kept == ["epoch00.ckpt", "epoch01.ckpt", "epoch02.ckpt"]
    last, final = (torch.load(tmp_path / "checkpoints" / name, map_location="cpu", weights_only=True)
                   for name in ("last.ckpt", "epochs/epoch02.ckpt"))
    assert last["epoch"] == final["epoch"] == 2
    assert all(torch.equal(last["state_dict"][k], final["state_dict"][k]) for k in final["state_dict"])


def test_killed_run_resumes_to_the_same_metrics(reference_run: dict, corpus_root: Path, tmp_path: Path) -> None:
    """SIGKILL after the first checkpoint, resume from last.ckpt: the end is the uninterrupted run's."""
    overrides = ["experiment=tiny", "trainer.max_epochs=3", f"paths.corpus_root={corpus_root}", f"hydra.run.dir={tmp_path}"]
    last = tmp_path / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *overrides], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    # freeze the run at once (a tiny epoch is a fraction of a second), and kill it only once
    # the checkpoint it was writing is complete
    for _ in range(100):
        process.send_signal(signal.SIGSTOP)
        try:
            torch.load(last, map_location="cpu", weights_only=True)
            break
        except Exception:  # noqa: BLE001 - still being written
            process.send_signal(signal.SIGCONT)
            time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert last.exists(), "the run never wrote a checkpoint"
    assert not (tmp_path / "metrics.json").exists(), "killed too late: the run had already finished"

    result = run_train(*overrides, f"ckpt_path={last}")
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert resumed.keys() == reference_run.keys()
    for key, value in reference_run.items():
        assert resumed[key] == pytest.approx(value, abs=1e-6), key


def test_ddp_on_cpu_with_two_processes(corpus_root: Path, tmp_path: Path) -> None:
    """trainer=ddp with gloo on CPU: both ranks finish and one set of checkpoints is written."""
    result = run_train(
        "experiment=tiny",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        f"paths.corpus_root={corpus_root}",
        f"hydra.run.dir={tmp_path}",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "rank 0 of 2 finished" in output and "rank 1 of 2 finished" in output
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.0 <= report["metrics"]["test/auroc"] <= 1.0


def test_demo_script_trains_and_detects(corpus_root: Path, tmp_path: Path) -> None:
    """The quick-start job end to end (tiny): corpus, training, a held-out-voice recording, detection."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "experiment=tiny", "trainer.max_epochs=2",
         f"paths.corpus_root={corpus_root}", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "demo.wav").is_file()
    assert "where 'welcome' was said:" in result.stdout
    said = result.stdout.split("where 'welcome' was said:")[1].splitlines()[0].count(" s")
    # both models report how many of the recording's keywords they found, the shipped one beside the new one
    tallies = re.findall(r"^(the model just trained|the shipped spectrogram weights).*: found (\d+) of (\d+) keywords",
                         result.stdout, flags=re.M)
    assert [t[0] for t in tallies] == ["the model just trained", "the shipped spectrogram weights"]
    assert all(int(t[2]) == said and int(t[1]) <= said for t in tallies)
    assert result.stdout.count("\nmissed: ") == sum(said - int(t[1]) for t in tallies)  # each miss, with its best score


def test_tiny_run_with_ema_checkpoints_the_average(corpus_root: Path, tmp_path: Path) -> None:
    """config ema: best.ckpt's state_dict is the average (not the last step), and load_detector builds it."""
    run_dir = tmp_path / "run"
    result = run_train("experiment=tiny", "ema.decay=0.9", "ema.start_epoch=0",
                       f"paths.corpus_root={corpus_root}", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    average, current = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert average.keys() == current.keys()
    weights = [k for k in average if k.endswith("weight")]
    assert any(not torch.equal(average[k], current[k]) for k in weights), "the average differs from the last step"
    model, _ = load_detector(run_dir / "checkpoints" / "best.ckpt")
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, average[f"model.{name}"], rtol=0, atol=0)


def test_tiny_run_with_the_engine_adversary(corpus_root: Path, tmp_path: Path) -> None:
    """adversary.weight > 0: the engine classifier trains beside the detector and stays out of the shipped weights."""
    run_dir = tmp_path / "run"
    result = run_train("experiment=tiny", "adversary.weight=0.5",
                       f"paths.corpus_root={corpus_root}", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(run_dir / "csv" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    accuracy = [float(r["train/engine_accuracy"]) for r in rows if r.get("train/engine_accuracy")]
    scales = [float(r["train/adversary_scale"]) for r in rows if r.get("train/adversary_scale")]
    assert len(accuracy) == 3 and all(0.0 <= a <= 1.0 for a in accuracy)
    assert scales[0] == 0.0 and all(a < b for a, b in zip(scales, scales[1:])) and 0.45 < scales[-1] <= 0.5  # the ramp
    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["adversary"] == {"weight": 0.5, "hidden": 64}
    assert checkpoint["hyper_parameters"]["domains"] == ["espeak", "festival", "pico"]
    assert any(k.startswith("adversary.") for k in checkpoint["state_dict"])
    load_detector(run_dir / "checkpoints" / "best.ckpt")  # loads strictly: the classifier is not part of the detector


def test_tiny_run_with_the_phonetic_task(corpus_root: Path, tmp_path: Path) -> None:
    """phonetic.weight > 0: the CTC head trains on whole utterances beside the detector and stays out of the shipped weights."""
    run_dir = tmp_path / "run"
    result = run_train("experiment=tiny", "phonetic.weight=0.3",
                       f"paths.corpus_root={corpus_root}", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(run_dir / "csv" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    phonetic = [float(r["train/phonetic_loss_epoch"]) for r in rows if r.get("train/phonetic_loss_epoch")]
    keyword = [float(r["train/keyword_loss"]) for r in rows if r.get("train/keyword_loss")]
    total = [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")]
    assert len(phonetic) == len(keyword) == len(total) == 3
    assert all(0 < p < 1e4 for p in phonetic)
    for p, k, t in zip(phonetic, keyword, total):  # the loss trained is the keyword loss plus 0.3 of the CTC loss
        assert t == pytest.approx(k + 0.3 * p, rel=1e-4)
    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["phonetic"]["weight"] == 0.3
    phonemes = checkpoint["hyper_parameters"]["phonemes"]
    assert {"w", "ɛ", "l", "k", "m"} <= set(phonemes), phonemes  # "welcome" is spelled with the inventory
    head = checkpoint["state_dict"]["phonetic_head.classify.weight"]
    assert head.shape[0] == len(phonemes) + 1  # the blank, then each phoneme
    load_detector(run_dir / "checkpoints" / "best.ckpt")  # loads strictly: the head is not part of the detector


def test_adapt_fine_tunes_the_shipped_weights_on_recorded_takes(corpus_root: Path, tmp_path: Path) -> None:
    """`make adapt` (tiny): the pitch-gated shipped weights fine-tuned on a folder `audioconv-record` wrote."""
    import numpy as np

    from audioconv import recording

    folder = recording.RecordingFolder(tmp_path / "my_recordings")
    rng = np.random.default_rng(0)
    for take in recording.session_plan(6, 6, background_takes=1):
        wave = 1e-3 * rng.standard_normal(round(take.seconds * 16_000)).astype(np.float32)
        if take.kind != "background":  # a voiced sound where a word would be: 0.5 s, or two for a sentence
            t = np.arange(8_000) / 16_000
            for start in (0.7,) if take.kind == "keyword" else (0.5, 1.6):
                wave[round(start * 16_000):round(start * 16_000) + t.size] += 0.2 * np.sin(2 * np.pi * 150 * t)
        verdict = recording.check_take(wave, 16_000, take.kind)
        assert verdict.ok, verdict.reason
        folder.save(wave, take, verdict)
    run_dir = tmp_path / "adapted"
    result = run_train("model=spectrogram", "experiment=tiny", f"paths.corpus_root={corpus_root}",
                       f"init_from={ROOT / 'src/audioconv/weights/spectrogram.safetensors'}",
                       f"data.user_folder={tmp_path / 'my_recordings'}", "data.loader.user_share=0.2",
                       "trainer.max_epochs=1", "optim.lr=0.001", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "is pitch-gated: fine-tuning its network as trained" in result.stdout + result.stderr
    detector, _ = load_detector(run_dir / "checkpoints" / "best.ckpt")
    shipped, _ = load_detector(ROOT / "src/audioconv/weights/spectrogram.safetensors")
    assert type(detector).__name__ == "SpectrogramDetector"
    moved = [k for k, v in detector.state_dict().items() if not torch.equal(v, shipped.unwarped.state_dict()[k])]
    assert moved, "fine-tuning changed the weights"
