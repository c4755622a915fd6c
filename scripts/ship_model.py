#!/usr/bin/env python
"""Turn a train.py checkpoint into shipped weights: <name>.safetensors and <name>.onnx in src/audioconv/weights/.

    python scripts/ship_model.py --checkpoint outputs/spectrogram/RUN/checkpoints/best.ckpt --name spectrogram
    make models          # trains both default models, then ships them (the documented way to reproduce the weights)

The threshold is chosen on validation streams for about 0.5 false alarms per
hour (``audioconv.calibrate``); the metrics.json of the run is stored beside
the weights in the safetensors header, so a shipped file says how it was made.
The ONNX export (for the torch-free install) is written from the very weights
saved, and checked against PyTorch before it is written (``audioconv.export``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from audioconv import registry  # torch-free: the names only

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = ROOT / "src" / "audioconv" / "weights"  # package data: the source tree, not an installed copy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a train.py best.ckpt")
    parser.add_argument("--name", choices=registry.MODEL_NAMES, required=True)
    parser.add_argument("--minutes", type=float, default=120.0, help="validation stream audio to calibrate on")
    parser.add_argument("--target", type=float, default=0.5, help="false alarms per hour to aim for")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="folder for <name>.safetensors and <name>.onnx")
    args = parser.parse_args(argv)

    from audioconv import calibrate, checkpoints, corpus, evaluate, export, streams
    from audioconv.detect import DEFAULT_REFRACTORY_SECONDS, DEFAULT_SMOOTHING_FRAMES

    try:
        model, info = checkpoints.load_detector(args.checkpoint)
    except checkpoints.CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows = corpus.read_manifest(streams.default_manifest(ROOT))
    temperature, threshold, evaluation = calibrate.calibrate_threshold(
        model, rows, args.minutes, args.target, args.seed
    )
    recall, _ = evaluate.recall_at(evaluation.points, args.target)
    metrics_file = args.checkpoint.parent.parent / "metrics.json"
    run_metrics = json.loads(metrics_file.read_text())["metrics"] if metrics_file.is_file() else {}
    out = args.out / f"{args.name}.safetensors"
    checkpoints.save_detector(
        out,
        model,
        info["model_config"],
        threshold=threshold,
        smoothing_frames=DEFAULT_SMOOTHING_FRAMES,
        refractory_seconds=DEFAULT_REFRACTORY_SECONDS,
        calibration={
            "temperature": temperature,
            "split": "val",
            "minutes": args.minutes,
            "target_false_alarms_per_hour": args.target,
            "recall_at_target": recall,
        },
        test_metrics=run_metrics,
    )
    shipped, shipped_info = checkpoints.load_detector(out)  # the ONNX file is made from exactly what was saved
    onnx_out = export.export_onnx(shipped, shipped_info, args.out / f"{args.name}.onnx")
    print(f"{out}: temperature {temperature:.2f}, threshold {threshold:.3f} (recall {recall:.3f} at <= {args.target} FA/h on "
          f"{evaluation.hours * 60:.0f} min of validation streams); {onnx_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
