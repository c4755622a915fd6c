#!/usr/bin/env python
"""Recall on unseen voices with the mel filterbank warped: is the gap a vocal-tract mismatch?

    python scripts/warp_probe.py runs/xe_seeds                         # prints the tables
    python scripts/warp_probe.py runs/xe_seeds --out runs/xe_seeds/warps.md
    python scripts/warp_probe.py runs/xe_seeds --factors 0.85 1 1.15 --engines kokoro piper
    python scripts/warp_probe.py runs/xe_seeds --factors 0.85 1 1.15 --gate      # + each frame warped by its pitch
    python scripts/warp_probe.py runs/xe_seeds --factors 1 --built-in             # + the gate as it ships (PitchGated)

Each fold's best checkpoint of a cross-engine study scans its held-out
engine's streams once per warp factor (``audioconv.warp_probe``: factor w
hears every voice with its formants and pitch multiplied by w; nothing is
retrained). The tables give each fold's recall at <= 1 false alarm per hour
and the pooled recall at <= 1 and <= 5 per factor, averaged over the study's
seeds, then each voice's recall at <= 5 FA/h per factor and the factor where
it is best. ``--gate`` adds a column: each frame scored at the factor its
voice's pitch suggests (speaker normalization without retraining; pYIN over
the last few seconds); ``--built-in`` one more: the model wrapped in
``models.PitchGated``, the gate that ships (its own pitch tracker, inside each
frame's receptive field, so it scans and streams exactly). Numbers
also go to a ``.json`` beside ``--out``. Spectrogram models only. Exit status 2 with a one-line error for a folder it cannot score.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"a warp factor must be positive, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path, help="a cross-engine study folder (seed<N>/ folders, or one run's folds)")
    parser.add_argument("--factors", nargs="+", type=positive,
                        help="warp factors (default 0.8 0.85 ... 1.2; 1 is the model as trained)")
    parser.add_argument("--engines", nargs="+", help="folds to score (default: every fold with streams)")
    parser.add_argument("--gate", action="store_true",
                        help="also score the pitch gate: each frame at the probed factor its voice's F0 suggests "
                             "(audioconv.warp_probe.PitchGate; pYIN, ~1.5 min per hour of audio)")
    parser.add_argument("--built-in", action="store_true",
                        help="also score the model wrapped in models.PitchGated (its own pitch tracker and factors)")
    parser.add_argument("--built-in-factors", nargs="+", type=positive,
                        help="the built-in gate's warps (default: those the model trained in with model.pitch_warp, "
                             "else models.pitch_gate.GATE_FACTORS)")
    parser.add_argument("--gate-reference", type=positive, default=130.0, help="F0 scored unwarped, Hz (default 130)")
    parser.add_argument("--gate-exponent", type=float, default=0.3, help="warp = (F0 / reference)^-exponent (default 0.3)")
    parser.add_argument("--gate-window", type=positive, default=3.0, help="seconds of pitch per frame (default 3)")
    parser.add_argument("--streams", type=Path,
                        help="score each fold on DIR/<engine>/streams instead of its own (cross_engine.py --streams-only)")
    parser.add_argument("--min-keywords", type=int, default=10, help="voices with fewer keywords get no row (default 10)")
    parser.add_argument("--out", type=Path, help="also write the tables here (Markdown), and the numbers beside it (.json)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if args.out is not None and args.out.suffix == ".json":
        parser.error(f"--out {args.out}: the tables are Markdown (the numbers go to a .json beside it); name it .md")
    from audioconv import evaluate, warp_probe
    from audioconv.files import write_text_atomically

    if not args.study.is_dir():
        print(f"error: {args.study}: not a folder", file=sys.stderr)
        return 2
    progress = (lambda _: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    factors = sorted(set(args.factors)) if args.factors else list(warp_probe.DEFAULT_FACTORS)
    try:
        gate = (warp_probe.PitchGate(args.gate_reference, args.gate_exponent, args.gate_window) if args.gate else None)
        built_in = None
        if args.built_in:
            built_in = {"reference_hz": args.gate_reference, "exponent": args.gate_exponent}
            if args.built_in_factors:
                built_in["factors"] = sorted(set(args.built_in_factors))
        probe = warp_probe.study_warps(args.study, factors, args.engines, args.min_keywords, gate, progress=progress,
                                       built_in=built_in, streams_root=args.streams)
    except (ValueError, OSError) as error:  # ProbeError, CheckpointError, AudioError name their file
        print(f"error: {str(error).splitlines()[0] if str(error) else type(error).__name__}", file=sys.stderr)
        return 2
    table = warp_probe.format_probe(probe)
    if args.out:
        write_text_atomically(args.out, table)
        write_text_atomically(args.out.with_suffix(".json"), json.dumps(evaluate.jsonable(probe), indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
