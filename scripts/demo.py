"""The quick-start job: synthesize the corpus, train, then find "welcome" in a new recording.

    python scripts/demo.py model=conv1d            # any train.py override works here too

The demo recording is composed from the held-out voice (never heard in
training), in noise, so what it prints is an honest first look. The shipped
weights (trained on all five engines, ~7,000 files, this voice included) scan
the same recording beside it: what the full corpus gets, not a test of unseen
voices (the README's cross-engine tables are that). A keyword a model missed
is listed with its best score there, to show how near it came.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import audioconv
from audioconv import corpus, registry, streams
from audioconv.evaluate import DEFAULT_BASE_THRESHOLD, in_hit_window, match_detail
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


def report(title: str, detector: audioconv.Detector, recording: Path, truth: list[streams.Keyword]) -> None:
    """A model's events on the recording, how many keywords they found (DESIGN.md's hit window) and, for
    each keyword it missed, its best score there: how far below the threshold it fell."""
    keywords = [(k.start, k.end) for k in truth]
    events = detector.detect(recording)
    hit_by, false_alarms = match_detail(events, keywords)
    found = sum(e is not None for e in hit_by)
    threshold = detector.settings["threshold"]
    print(f"\n{title}, threshold {threshold:.3f}: found {found} of {len(truth)} keywords, "
          f"{len(false_alarms)} false alarm(s)")
    for event in events:
        mark = "" if any(event is e for e in false_alarms) else "   <- keyword"
        print(f"detected: {event.start:6.2f} - {event.end:6.2f} s   score {event.score:.3f}{mark}")
    faint = detector.detect(recording, threshold=min(DEFAULT_BASE_THRESHOLD, threshold))  # as the sweep sees it
    for keyword, event in zip(keywords, hit_by):
        if event is None:
            near = [e.score for e in faint if in_hit_window(e, keyword)]
            best = f"best score there {max(near):.3f}" if near else f"no score above {DEFAULT_BASE_THRESHOLD}"
            print(f"missed:   {keyword[0]:6.2f} - {keyword[1]:6.2f} s   {best}")


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    result = train(cfg)
    out_dir = Path(cfg.paths.output_dir)
    recording, truth = make_demo_recording(cfg, out_dir)

    print(f"\nDemo recording: {recording} ({DEMO_SECONDS:.0f} s, voice never heard in training, in noise)")
    print("where 'welcome' was said:  " + ", ".join(f"{k.start:.2f}-{k.end:.2f} s" for k in truth))
    trained = audioconv.load_detector(result["best_checkpoint"], backend="torch")
    report("the model just trained (it never heard this voice)", trained, recording, truth)
    name = HydraConfig.get().runtime.choices["model"]  # conf/model/<name>.yaml: a shipped model's name too
    if name in registry.MODEL_NAMES:
        shipped = audioconv.load_detector(name, backend="torch")
        report(f"the shipped {name} weights (trained on all five engines, this voice included)",
               shipped, recording, truth)
    print(f"\nScan your own files with: python scripts/detect.py --checkpoint {result['best_checkpoint']} FILE.wav")
    print("or with the shipped weights:  python scripts/detect.py FILE.wav")


if __name__ == "__main__":
    main()
