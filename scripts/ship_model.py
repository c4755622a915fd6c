#!/usr/bin/env python
"""Turn a train.py checkpoint into shipped weights: <name>.safetensors, <name>.onnx and <name>.stream.onnx.

    python scripts/ship_model.py --checkpoint outputs/spectrogram/RUN/checkpoints/best.ckpt --name spectrogram
    python scripts/ship_model.py --checkpoint RUN1/checkpoints/best.ckpt RUN2/... RUN3/... --name spectrogram  # their ensemble
    make models          # trains both default models, then ships them (the documented way to reproduce the weights)

The threshold is chosen where it serves users: ``--from-cross-engine
runs/cross_engine/cross_engine.json`` takes the threshold that kept every
cross-engine fold (models trained without an engine, scored on that engine's
voices), pooled, at <= 1 false alarm per hour (``scripts/cross_engine.py``).
Without it, the threshold is chosen on validation streams for about 0.5 false
alarms per hour (``audioconv.calibrate``). Either way a temperature is folded
into the head first (and the threshold carried through it); the metrics.json of the run is stored beside
the weights in the safetensors header, so a shipped file says how it was made.
``--pitch-gate`` ships the model wrapped in ``models.PitchGated`` (each frame
scored with the mel filterbank warped to suit the voice's pitch); its threshold
comes from ``--from-warp-probe runs/.../warps.json`` (or one probe per seed study: the median over all), the built-in gate's pooled
threshold over the same cross-engine folds (``scripts/warp_probe.py --built-in``).
Several checkpoints (one recipe trained from several seeds) ship as one
``Ensemble``: the mean of their frame probabilities, in one file and one ONNX graph.
The ONNX exports (for the torch-free install: the whole-signal graph and the
stateful streaming graph for 80 ms pushes that live detection runs) are written
from the very weights saved, each checked against PyTorch before it is written
(``audioconv.export``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from audioconv import registry  # torch-free: the names only

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = ROOT / "src" / "audioconv" / "weights"  # package data: the source tree, not an installed copy


def gated_pooled_threshold(*paths: Path) -> tuple[float, float]:
    """(threshold, recall) of the built-in gate's column of warp probes at <= 1 FA/h: the median threshold
    over every probed seed (one probe of a seed study, or one probe per seed), and their mean pooled recall."""
    import statistics

    thresholds, recalls = [], []
    for path in paths:
        probe = json.loads(path.read_text())
        rows = [row for row in probe["rows"] if row["factor"] == "built-in"]
        if not rows:
            raise ValueError(f"{path}: no built-in gate column (run scripts/warp_probe.py with --built-in)")
        pooled = rows[0]["pooled"]["recall_at_1_fa_per_hour"]
        thresholds += [float(t) for t in pooled["thresholds"].values() if t is not None and 0 < float(t) < 1]
        recalls += [float(r) for r in pooled["seeds"].values()] if "seeds" in pooled else [float(pooled["mean"])]
    if not thresholds:
        raise ValueError("the built-in gate kept no seed at <= 1 false alarm an hour")
    return statistics.median(thresholds), statistics.mean(recalls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, nargs="+", required=True,
                        help="a train.py best.ckpt, or a shipped .safetensors (its temperature is undone first, "
                             "e.g. to ship it again with --pitch-gate); several: shipped as their ensemble")
    parser.add_argument("--name", choices=registry.MODEL_NAMES, required=True)
    parser.add_argument("--minutes", type=float, default=120.0, help="validation stream audio to calibrate on")
    parser.add_argument("--target", type=float, default=0.5, help="false alarms per hour to aim for")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--from-cross-engine", type=Path, metavar="JSON",
                        help="take the threshold from a cross_engine.json (pooled over held-out-engine folds)")
    parser.add_argument("--pitch-gate", action="store_true",
                        help="ship the model wrapped in models.PitchGated (spectrogram models; the gate's defaults); "
                             "without --from-warp-probe its threshold is calibrated on validation streams like any "
                             "model's, which finds little on unseen voices: for trying it, not for shipping")
    parser.add_argument("--from-warp-probe", type=Path, nargs="+", metavar="JSON",
                        help="with --pitch-gate: the threshold from the .json of scripts/warp_probe.py --built-in "
                             "(the built-in gate's pooled threshold at <= 1 FA/h; the median over its seeds; "
                             "several files: over all their seeds)")
    parser.add_argument("--pooled-threshold", type=float, metavar="T",
                        help="a pooled cross-engine threshold (before temperature) read from an earlier run's "
                             "cross_engine.md, when its JSON is not at hand; --pooled-recall says what it kept")
    parser.add_argument("--pooled-recall", type=float, help="with --pooled-threshold: the pooled recall it kept")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="folder for <name>.safetensors, .onnx and .stream.onnx")
    args = parser.parse_args(argv)
    if args.pooled_threshold is not None and (args.from_cross_engine or not 0.0 < args.pooled_threshold < 1.0):
        parser.error("--pooled-threshold needs a value in (0, 1) and excludes --from-cross-engine")
    if args.from_warp_probe and (not args.pitch_gate or args.from_cross_engine or args.pooled_threshold is not None):
        parser.error("--from-warp-probe goes with --pitch-gate, and excludes --from-cross-engine and --pooled-threshold")
    if args.pitch_gate and args.from_cross_engine:
        parser.error("--pitch-gate: the ungated folds' threshold is not the gated model's; give --from-warp-probe")

    from audioconv import calibrate, checkpoints, config, corpus, evaluate, export
    from audioconv.detect import DEFAULT_REFRACTORY_SECONDS, DEFAULT_SMOOTHING_FRAMES

    try:
        model, info = checkpoints.load_ensemble(args.checkpoint)
    except (checkpoints.CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if checkpoints.model_name(model) != args.name:
        print(f"error: {args.checkpoint[0]}: a {checkpoints.model_name(model)} model, not {args.name}", file=sys.stderr)
        return 2
    undone = calibrate.undo_temperature(model, info)  # a shipped .safetensors: back on its trained scale
    if args.pitch_gate:
        from audioconv.models import PitchGated
        from audioconv.models.pitch_gate import trained_rule

        try:
            model = PitchGated(model, **trained_rule(model).settings).eval()  # VTLN-trained: its own warps
        except ValueError as error:
            print(f"error: {args.checkpoint[0]}: {error}", file=sys.stderr)
            return 2
        info = {**info, "model_config": checkpoints.pitch_gated_config(info["model_config"], model)}
    probed = None
    if args.from_warp_probe:
        try:
            probed = gated_pooled_threshold(*args.from_warp_probe)
        except (OSError, ValueError, KeyError) as error:
            print(f"error: {' '.join(map(str, args.from_warp_probe))}: {error}", file=sys.stderr)
            return 2
    settings = config.corpus_settings(root=ROOT)
    rows = corpus.read_manifest(corpus.build_corpus(settings, ROOT / "data" / "corpus"))
    temperature, threshold, evaluation = calibrate.calibrate_threshold(
        model, rows, args.minutes, args.target, args.seed, keyword=settings["keyword"]
    )
    recall, _ = evaluate.recall_at(evaluation.points, args.target)
    source = {"split": "val", "minutes": args.minutes, "target_false_alarms_per_hour": args.target,
              "recall_at_target": recall}
    if args.from_cross_engine:
        pooled = json.loads(args.from_cross_engine.read_text())["pooled"]
        if pooled.get("threshold") is None:
            print(f"error: {args.from_cross_engine}: no pooled threshold", file=sys.stderr)
            return 2
        threshold = calibrate.through_temperature(float(pooled["threshold"]), temperature)
        recall = float(pooled["recall"])
        source = {"cross_engine": str(args.from_cross_engine), "pooled_threshold_before_temperature":
                  pooled["threshold"], "target_false_alarms_per_hour": pooled["target"], "recall_at_target": recall}
    if probed is not None:
        pooled_threshold, recall = probed
        threshold = calibrate.through_temperature(pooled_threshold, temperature)
        source = {"warp_probe": [str(p) for p in args.from_warp_probe], "pooled_threshold_before_temperature": pooled_threshold,
                  "target_false_alarms_per_hour": 1.0, "recall_at_target": recall}
    if args.pooled_threshold is not None:
        threshold = calibrate.through_temperature(args.pooled_threshold, temperature)
        recall = args.pooled_recall
        source = {"cross_engine": "given (--pooled-threshold)", "pooled_threshold_before_temperature":
                  args.pooled_threshold, "target_false_alarms_per_hour": 1.0, "recall_at_target": recall}
    runs = [checkpoint.parent.parent / "metrics.json" for checkpoint in args.checkpoint]
    run_metrics = [json.loads(m.read_text())["metrics"] if m.is_file() else {} for m in runs]
    run_metrics = run_metrics[0] if len(run_metrics) == 1 else run_metrics  # an ensemble: each member's run
    if "test_metrics" in info:  # a shipped file shipped again: it holds the test metrics of the run that made it
        run_metrics = info["test_metrics"]
        source = {**source, "shipped_from": str(args.checkpoint[0]), "shipped_temperature_undone": undone}
    out = args.out / f"{args.name}.safetensors"
    checkpoints.save_detector(
        out,
        model,
        info["model_config"],
        threshold=threshold,
        smoothing_frames=DEFAULT_SMOOTHING_FRAMES,
        refractory_seconds=DEFAULT_REFRACTORY_SECONDS,
        calibration={"temperature": temperature, **source},
        test_metrics=run_metrics,
    )
    shipped, shipped_info = checkpoints.load_detector(out)  # the ONNX file is made from exactly what was saved
    onnx_out = export.export_onnx(shipped, shipped_info, args.out / f"{args.name}.onnx")
    stream_out = export.export_onnx_stream(shipped, shipped_info, args.out / f"{args.name}{export.STREAM_SUFFIX}")
    print(f"{out}: temperature {temperature:.2f}, threshold {threshold:.3f} ({source}); {onnx_out}; {stream_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
