#!/usr/bin/env python
"""Measure detectors on long recordings with known keyword times: recall, false alarms per hour, DET curve.

    python scripts/evaluate.py --truth data/streams/demo/truth.csv
    python scripts/evaluate.py --truth data/streams/heldout/truth.csv --model conv1d spectrogram --det det.png
    python scripts/evaluate.py --truth T.csv --checkpoint outputs/conv1d/RUN/checkpoints/best.ckpt --json
    python scripts/evaluate.py --truth T.csv my_office_hour.wav      # extra files: audio with no keyword

The audio is the files the truth CSV names (``file,start,end[,voice,text]``;
``file`` relative to the CSV's folder unless absolute; see
``scripts/make_streams.py``) plus any FILE given, which counts as negative
audio. Each file is scanned once per model (chunked, exact). Events are
detected at a low base threshold and the threshold is swept over them; the
report gives, per model, recall / FRR / false alarms per hour at the model's
own threshold, recall at <= 1 and <= 0.5 false alarms per hour with the
thresholds that give them, then per-file and per-voice tables. Conventions:
shared/DESIGN.md "Evaluation conventions" (hit window [start - 0.25 s, end + 1 s]).

Exit status: 0 done, 2 bad arguments, an unusable model or an unreadable file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from audioconv.registry import MODEL_NAMES


def probability(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("files", nargs="*", metavar="FILE", help="extra audio with no keyword (negative audio)")
    add("--truth", type=Path, help="truth CSV: file,start,end[,voice,text] (scripts/make_streams.py writes one)")
    add("--model", nargs="+", action="extend", choices=MODEL_NAMES, default=[],
        help="shipped weights src/audioconv/weights/<name>.safetensors (several allowed)")
    add("--checkpoint", nargs="+", action="extend", type=Path, default=[],
        help=".safetensors or train.py .ckpt (several allowed)")
    add("--base-threshold", type=probability, default=None,
        help="events for the sweep are detected at this threshold (default 0.05)")
    add("--threshold", type=probability, help="replace every model's own threshold for the default operating point")
    add("--chunk-seconds", type=float, help="audio scanned per forward pass: bounds memory, not results")
    add("--det", type=Path, metavar="OUT.png", help="write the DET curve, one line per model")
    add("--json", action="store_true", help="print one JSON object with every figure instead of tables")
    add("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if args.truth is None and not args.files:
        parser.error("give --truth CSV and/or audio FILEs")
    return args


def model_label(path: Path, taken: set[str]) -> str:
    """A short unique name for a checkpoint: its stem, or run folder / stem for train.py's best/last.ckpt."""
    parts = path.parts
    label = path.stem
    if label in ("best", "last") and len(parts) >= 3 and parts[-2] == "checkpoints":
        label = "/".join(parts[max(0, len(parts) - 4) : -2] + (label,))
    while label in taken:
        label = str(path)
        if label in taken:
            label += "'"
    return label


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from audioconv import audio, checkpoints, detect, evaluate, scan, streams

    def progress(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    # which audio, and the truth for it
    truth: dict[str, list] = {}
    files: dict[str, Path] = {}
    try:
        if args.truth is not None:
            truth = streams.read_truth(args.truth)
            files.update(streams.truth_paths(args.truth, list(truth)))
    except (OSError, ValueError) as error:
        print(f"error: {args.truth}: {error}", file=sys.stderr)
        return 2
    for file in args.files:
        if file in files:
            print(f"error: {file} is already in the truth CSV", file=sys.stderr)
            return 2
        files[file] = Path(file)
        truth.setdefault(file, [])

    # which models
    sources: list[tuple[str, Path]] = []
    try:
        names = args.model or ([] if args.checkpoint else [None])
        for name in names:
            path = checkpoints.shipped_weights(name)
            sources.append((name or path.stem, path))
        taken = {label for label, _ in sources}
        for path in args.checkpoint:
            label = model_label(path, taken)
            taken.add(label)
            sources.append((label, path))
        models = {}
        for label, path in sources:
            model, info = checkpoints.load_detector(path)
            settings = detect.detection_settings(info, args.threshold)
            models[label] = (model, settings)
            progress(f"model {label}: {path} (threshold {settings['threshold']:.2f})")
    except (ValueError, OSError) as error:
        hint = "" if args.checkpoint else " (train one, or pass --checkpoint)"
        print(f"error: {error}{hint}", file=sys.stderr)
        return 2

    try:
        evaluations = evaluate.evaluate_models(
            models,
            files,
            truth,
            base_threshold=args.base_threshold or evaluate.DEFAULT_BASE_THRESHOLD,
            chunk_seconds=args.chunk_seconds or scan.DEFAULT_CHUNK_SECONDS,
            progress=progress,
        )
    except audio.AudioError as error:
        print(f"error: {error} (every file of the evaluation must be readable)", file=sys.stderr)
        return 2

    if args.json:
        payload = {"truth": str(args.truth) if args.truth else None, "files": [str(p) for p in files.values()],
                   "models": [e.to_dict() for e in evaluations]}
        print(json.dumps(evaluate.jsonable(payload)))
    else:
        print(evaluate.format_report(evaluations))
    if args.det is not None:
        try:
            evaluate.det_curve_png({e.name: e.points for e in evaluations}, args.det)
        except OSError as error:
            print(f"error: cannot write {args.det}: {error.strerror or error}", file=sys.stderr)
            return 2
        progress(f"DET curve: {args.det}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
