"""Export a detector to ONNX or TorchScript: `audioconv-export --model spectrogram --format onnx OUT`.

The export maps a waveform [1, samples] (any length, mono at the model's rate)
to frame probabilities [1, frames], and carries hop, receptive field, sample
rate and detection defaults as metadata (see ``audioconv.export``). Each export
is checked against the PyTorch model before it is written (atomically).

`--format onnx-stream` (the default for a name ending in `.stream.onnx`) writes
the stateful streaming graph instead: one push of `--push-ms` audio (a whole
number of 20 ms hops, default 80) plus each layer's state in, that push's frame
probabilities plus the new states out. Put `NAME.stream.onnx` beside
`NAME.onnx` and the ONNX backend's live stream uses it:

    audioconv-export --model spectrogram --format onnx-stream --push-ms 80 spectrogram.stream.onnx
Exit status: 0 on success, 2 for bad arguments, unusable weights or a failed export.
Exporting needs the training install (torch) and the ``export`` extra (onnx).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audioconv import registry

FORMATS = ("onnx", "onnx-stream", "torchscript")
STREAM_SUFFIX = ".stream.onnx"
SUFFIX_FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".torchscript": "torchscript"}
DEFAULT_PUSH_MS = 80.0
EXIT_USAGE = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", choices=registry.MODEL_NAMES, help="shipped weights (audioconv/weights/<name>.safetensors)")
    source.add_argument("--checkpoint", type=Path, help=".safetensors or train.py .ckpt")
    parser.add_argument("--format", choices=FORMATS,
                        help=f"default: from OUT's suffix ({', '.join(f'{k} -> {v}' for k, v in SUFFIX_FORMATS.items())})")
    parser.add_argument("--push-ms", type=float, default=None, metavar="MS",
                        help=f"onnx-stream: audio per run of the graph, a whole number of hops (default {DEFAULT_PUSH_MS:g})")
    parser.add_argument("out", type=Path, metavar="OUT", help="file to write")
    args = parser.parse_args(argv)
    if args.format is None and args.out.name.lower().endswith(STREAM_SUFFIX):
        args.format = "onnx-stream"
    if args.format is None:
        args.format = SUFFIX_FORMATS.get(args.out.suffix.lower())
        if args.format is None:
            parser.error(f"cannot tell the format from {args.out.name!r}: pass --format {'|'.join(FORMATS)}")
    if args.push_ms is not None and args.format != "onnx-stream":
        parser.error("--push-ms applies to --format onnx-stream only")
    if args.push_ms is None:
        args.push_ms = DEFAULT_PUSH_MS
    if not args.push_ms > 0:
        parser.error(f"--push-ms must be positive, got {args.push_ms:g}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from audioconv import checkpoints, export  # after parsing: --help and usage errors stay instant
    except ImportError as error:
        print(f"error: exporting needs torch and onnx ({error}): pip install 'audioconv[train,export]'", file=sys.stderr)
        return EXIT_USAGE
    path = args.checkpoint if args.checkpoint is not None else registry.shipped_weights(args.model)
    try:
        model, info = checkpoints.load_detector(path)
    except (ValueError, OSError) as error:
        hint = "" if args.checkpoint else " (train one, or pass --checkpoint)"
        print(f"error: {error}{hint}", file=sys.stderr)
        return EXIT_USAGE
    try:
        out = export.export(model, info, args.out, args.format, push_ms=args.push_ms)
    except (export.ExportError, ValueError, OSError) as error:  # ValueError: unusable detection defaults
        print(f"error: {args.out}: {error}", file=sys.stderr)
        return EXIT_USAGE
    push = f", pushes of {args.push_ms:g} ms" if args.format == "onnx-stream" else ""
    print(f"wrote {out} ({args.format}; hop {model.hop}, receptive field {model.receptive_field} samples "
          f"at {model.sample_rate} Hz{push})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
