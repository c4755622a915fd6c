"""Export a detector to ONNX or TorchScript: `audioconv-export --model spectrogram --format onnx OUT`.

The export maps a waveform [1, samples] (any length, mono at the model's rate)
to frame probabilities [1, frames], and carries hop, receptive field, sample
rate and detection defaults as metadata (see ``audioconv.export``). Each export
is checked against the PyTorch model before it is written (atomically).
Exit status: 0 on success, 2 for bad arguments, unusable weights or a failed export.
Exporting needs the training install (torch) and the ``export`` extra (onnx).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audioconv import registry

FORMATS = ("onnx", "torchscript")
SUFFIX_FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".torchscript": "torchscript"}
EXIT_USAGE = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", choices=registry.MODEL_NAMES, help="shipped weights (audioconv/weights/<name>.safetensors)")
    source.add_argument("--checkpoint", type=Path, help=".safetensors or train.py .ckpt")
    parser.add_argument("--format", choices=FORMATS,
                        help=f"default: from OUT's suffix ({', '.join(f'{k} -> {v}' for k, v in SUFFIX_FORMATS.items())})")
    parser.add_argument("out", type=Path, metavar="OUT", help="file to write")
    args = parser.parse_args(argv)
    if args.format is None:
        args.format = SUFFIX_FORMATS.get(args.out.suffix.lower())
        if args.format is None:
            parser.error(f"cannot tell the format from {args.out.name!r}: pass --format {'|'.join(FORMATS)}")
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
        out = export.export(model, info, args.out, args.format)
    except (export.ExportError, ValueError, OSError) as error:  # ValueError: unusable detection defaults
        print(f"error: {args.out}: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {out} ({args.format}; hop {model.hop}, receptive field {model.receptive_field} samples "
          f"at {model.sample_rate} Hz)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
