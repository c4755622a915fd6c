"""The quick-start job: synthesize the corpus, train, then find "welcome" in a new recording.

    python scripts/demo.py model=conv1d            # any train.py override works here too

The demo recording is composed from the held-out voice (never heard in
training), in noise, so what it prints is an honest first look.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from audioconv import corpus, streams
from audioconv.checkpoints import load_detector
from audioconv.detect import detect_file, detection_settings
from audioconv.training import train

DEMO_SECONDS = 40.0
DEMO_SPLIT = "heldout"


def make_demo_recording(cfg: DictConfig, out_dir: Path) -> tuple[Path, list[streams.Keyword]]:
    """A noisy recording from the held-out voice with a few keywords among other speech."""
    manifest = corpus.corpus_dir(cfg.data.corpus, cfg.paths.corpus_root) / "manifest.csv"
    rows = corpus.read_manifest(manifest)
    split = DEMO_SPLIT if any(r["split"] == DEMO_SPLIT for r in rows) else "test"
    speech, noise = streams.split_rows(rows, split)
    config = streams.StreamConfig(seconds=DEMO_SECONDS, keywords_per_minute=6.0, keyword=str(cfg.data.corpus.keyword))
    wave, keywords = streams.compose_stream(speech, config, seed=int(cfg.seed), noise_rows=noise)
    path = out_dir / "demo.wav"
    streams.save_stream(path, wave)
    return path, keywords


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    report = train(cfg)
    out_dir = Path(cfg.paths.output_dir)
    recording, truth = make_demo_recording(cfg, out_dir)
    model, info = load_detector(report["best_checkpoint"])
    events = detect_file(model, recording, **detection_settings(info))

    print(f"\nDemo recording: {recording} ({DEMO_SECONDS:.0f} s, voice never heard in training, in noise)")
    print("where 'welcome' was said:  " + ", ".join(f"{k.start:.2f}-{k.end:.2f} s" for k in truth))
    if not events:
        print("detected: nothing")
    for event in events:
        print(f"detected: {event.start:6.2f} - {event.end:6.2f} s   score {event.score:.3f}")
    print(f"\nScan your own files with: python scripts/detect.py --checkpoint {report['best_checkpoint']} FILE.wav")


if __name__ == "__main__":
    main()
