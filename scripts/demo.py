"""The quick-start job: synthesize the corpus, train, then find "welcome" in a new recording.

    python scripts/demo.py model=conv1d            # any train.py override works here too

The demo recording is composed from the held-out voice (never heard in
training), in noise, so what it prints is an honest first look.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from audioconv import audio, streams, synth
from audioconv.checkpoints import load_detector
from audioconv.detect import detect_file, detection_settings
from audioconv.training import train

DEMO_SECONDS = 40.0
DEMO_SPLIT = "heldout"


def make_demo_recording(cfg: DictConfig, out_dir: Path) -> tuple[Path, list[tuple[float, float]]]:
    """A noisy recording from the held-out voice with a few keywords among other speech."""
    manifest = synth.corpus_dir(cfg.data.corpus, cfg.paths.corpus_root) / "manifest.csv"
    rows = synth.read_manifest(manifest)
    split = DEMO_SPLIT if any(r["split"] == DEMO_SPLIT for r in rows) else "test"
    chosen = [r for r in rows if r["split"] == split or (r["kind"] == "noise" and r["split"] == "test")]
    wave, truth = streams.compose_stream(
        chosen, streams.StreamConfig(seconds=DEMO_SECONDS, keywords_per_minute=6.0), seed=int(cfg.seed)
    )
    path = out_dir / "demo.wav"
    audio.save(path, wave)
    return path, truth


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    report = train(cfg)
    out_dir = Path(cfg.paths.output_dir)
    recording, truth = make_demo_recording(cfg, out_dir)
    model, info = load_detector(report["best_checkpoint"])
    events = detect_file(model, recording, **detection_settings(info))

    print(f"\nDemo recording: {recording} ({DEMO_SECONDS:.0f} s, voice never heard in training, in noise)")
    print("where 'welcome' was said:  " + ", ".join(f"{s:.2f}-{e:.2f} s" for s, e in truth))
    if not events:
        print("detected: nothing")
    for event in events:
        print(f"detected: {event.start:6.2f} - {event.end:6.2f} s   score {event.score:.3f}")
    print(f"\nScan your own files with: python scripts/detect.py --checkpoint {report['best_checkpoint']} FILE.wav")


if __name__ == "__main__":
    main()
