#!/usr/bin/env python
"""Find the spoken keyword in audio files: `python scripts/detect.py FILE [FILE ...]`.

Prints one table per file (or JSON lines with --json) and optionally a plot
per file. Bad files are reported on stderr, one line each, and skipped; the
exit status is 1 if any file failed, 2 for bad arguments or an unusable model.
Stdout carries results only: everything else, library warnings included, goes
to stderr, so `--json` output can be piped straight into another tool.

Two backends: PyTorch (.safetensors / .ckpt weights) and ONNX (an export from
scripts/export.py, run with onnxruntime). The ONNX path imports neither torch
nor librosa: numpy, soundfile, soxr and onnxruntime are all it needs
(matplotlib too for --plot).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from audioconv.detect import Event

from audioconv import registry

FALLBACK_MODEL = registry.FALLBACK_MODEL
MODEL_CHOICES = registry.MODEL_NAMES
BACKENDS = registry.BACKENDS
# C0 control characters and DEL, escaped in error lines: a file name cannot break a line or drive the terminal
CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(32), 127)} | {10: "\\n", 13: "\\r", 9: "\\t"}
EXIT_FILE_FAILED, EXIT_USAGE = 1, 2


def reserve_stdout() -> TextIO:
    """Return a stream onto the real stdout and point fd 1 (and ``sys.stdout``) at stderr.

    Anything a library prints, from Python or from C, then lands on stderr and
    the results written to the returned stream are the only thing on stdout.
    """
    sys.stdout.flush()
    try:
        results_fd = os.dup(sys.stdout.fileno())
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptors (embedded use): best effort
        results, sys.stdout = sys.stdout, sys.stderr
        return results
    sys.stdout = sys.stderr
    # surrogateescape: a file name that is not valid UTF-8 is written back as the bytes it was given as
    return os.fdopen(results_fd, "w", buffering=1, errors="surrogateescape")


def report(message: str) -> None:
    """One line on stderr, whatever the message holds (file names with newlines or escape codes included)."""
    print(str(message).translate(CONTROL_ESCAPES), file=sys.stderr)


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def odd_frames(text: str) -> int:
    value = int(text)
    if value < 1 or value % 2 == 0:
        raise argparse.ArgumentTypeError(f"must be a positive odd number of frames (1 = off), got {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Arguments only: the package is imported after parsing, so --help and usage errors are instant."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("files", nargs="+", metavar="FILE", help="audio files (wav, flac, ogg; any rate, any channels)")
    add("--model", choices=MODEL_CHOICES,
        help=f"shipped weights models/<name>.safetensors (default: the name in models/default.txt, else {FALLBACK_MODEL})")
    add("--checkpoint", type=Path, help=".safetensors or train.py .ckpt, or an .onnx export; overrides --model")
    add("--backend", choices=BACKENDS,
        help="torch, or onnx (onnxruntime; no torch needed). Default: onnx for --onnx or an .onnx --checkpoint, "
        "else torch. --backend onnx --model NAME uses models/NAME.onnx")
    add("--onnx", type=Path, metavar="PATH", help="an ONNX export (scripts/export.py): implies --backend onnx")
    add("--threshold", type=probability, help="score threshold in [0, 1] (default: the weights' own, else the package's)")
    add("--smoothing", type=odd_frames, metavar="FRAMES",
        help="centred moving average over this many frames, odd; 1 = off (default: the weights' own, else off)")
    add("--refractory", type=non_negative_float, metavar="SECONDS",
        help="a peak this soon after the one that fired an event is merged into it "
        "(default: the weights' own, else the package's)")
    add("--chunk-seconds", type=positive_float, help="audio scanned per forward pass: bounds memory, not results")
    add("--json", action="store_true", help="one JSON object per event per line on stdout, nothing else")
    add("--plot", type=Path, metavar="OUT.png", help="write a plot per file (several files: OUT_<stem>.png)")
    args = parser.parse_args(argv)
    if args.onnx is not None and args.checkpoint is not None:
        parser.error("pass either --onnx or --checkpoint, not both")
    if args.onnx is not None and args.backend == "torch":
        parser.error("--onnx needs the onnx backend")
    if args.backend is None:
        onnx_file = args.onnx is not None or (args.checkpoint is not None and args.checkpoint.suffix.lower() == ".onnx")
        args.backend = "onnx" if onnx_file else "torch"
    return args


def weights_path(args: argparse.Namespace) -> Path:
    """The weights to load: --onnx / --checkpoint, else --model, else the name in models/default.txt."""
    if args.onnx is not None:
        return args.onnx
    if args.checkpoint is not None:
        return args.checkpoint
    return registry.backend_file(args.model, args.backend)


def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """``warnings.showwarning`` for a CLI: one line per warning, no source excerpt."""
    report(f"warning: {category.__name__}: {(str(message).strip().splitlines() or [''])[0]}")


def load_scorer(backend: str, path: Path):
    """(detector, info) for the backend; only that backend's libraries are imported."""
    warnings.filterwarnings("ignore", message="Detected pickle protocol")  # torch.load on a foreign pickle: noise
    if backend == "onnx":
        try:
            from audioconv.onnx_backend import OnnxDetector
        except ImportError as error:
            raise ValueError(f"the onnx backend needs onnxruntime ({error}); install it or use --backend torch") from None
        detector = OnnxDetector(path)
        return detector, detector.info
    from audioconv import checkpoints

    return checkpoints.load_detector(path)


def print_table(results: TextIO, file: str, events: list[Event]) -> None:
    """One table per file: start and end in seconds, 2 decimals (the hop is 20 ms)."""
    if not events:
        results.write(f"{file}  no keyword found\n")
        return
    width = max(len(file), len("file"))
    results.write(f"{'file':<{width}}  {'start':>8}  {'end':>8}  {'score':>5}\n")
    for event in events:
        results.write(f"{file:<{width}}  {event.start:8.2f}  {event.end:8.2f}  {event.score:5.2f}\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = reserve_stdout()
    warnings.showwarning = one_line_warning

    # after the redirect: import-time noise goes to stderr. Only torch-free modules here; the backend
    # imports its own (torch for the torch backend, onnxruntime for the onnx one).
    from audioconv import audio, detect

    try:
        path = weights_path(args)
        model, info = load_scorer(args.backend, path)
    except (ValueError, OSError) as error:
        hint = "" if args.checkpoint or args.onnx else " (train one, or pass --checkpoint)"
        report(f"error: {error}{hint}")
        return EXIT_USAGE
    try:
        settings = detect.detection_settings(info, args.threshold, args.smoothing, args.refractory)
    except (ValueError, TypeError) as error:
        report(f"error: {path}: detection defaults: {error}")
        return EXIT_USAGE
    settings["chunk_seconds"] = args.chunk_seconds  # None: the backend's default
    if args.plot:
        from audioconv import plots

        plot_paths = plots.plot_paths(args.plot, args.files)
    else:
        plot_paths = [None] * len(args.files)

    failed = 0
    for file, plot_path in zip(args.files, plot_paths):
        try:
            detection = detect.analyse_file(model, file, **settings)
        except audio.AudioError as error:
            report(f"error: {error}")
            failed += 1
            continue
        except (ValueError, RuntimeError) as error:  # the model, not the file: e.g. NaN scores, a broken export
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0].removeprefix(f"{path}: ")
            report(f"error: {path}: the model failed on {file}: {first_line}")
            return EXIT_USAGE
        if args.json:
            for event in detection.events:
                results.write(json.dumps(event.to_dict()) + "\n")
        else:
            print_table(results, file, detection.events)
        results.flush()
        if plot_path is not None:
            try:
                plots.plot_detection(detection, plot_path)
            except OSError as error:
                report(f"error: {file}: cannot write plot {plot_path}: {error.strerror or error}")
                failed += 1
    if failed:
        print(f"{failed} of {len(args.files)} file(s) failed", file=sys.stderr)
    return EXIT_FILE_FAILED if failed else 0


if __name__ == "__main__":
    sys.exit(main())
