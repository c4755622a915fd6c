"""Find the spoken keyword in audio files or a live stream: `audioconv-detect FILE [FILE ...]`.

    audioconv-detect recording.wav other.flac            # shipped weights, table per file
    audioconv-detect --json --plot out.png recording.wav
    arecord -q -f S16_LE -r 16000 -c 1 | audioconv-detect --stream -
    sox -d -t raw -r 16000 -e signed -b 16 -c 1 - | audioconv-detect --stream - --json
    audioconv-detect --mic                                # needs sounddevice (PortAudio)

Files: one table per file (or JSON lines with --json) and optionally a plot
per file. Bad files are reported on stderr, one line each, and skipped; the
exit status is 1 if any file failed, 2 for bad arguments or an unusable model.

Live (--stream, --mic): raw signed 16-bit little-endian mono at --rate, or a
WAV stream (recognised by its RIFF header); events are printed, and flushed,
as soon as they are settled (about a second after the word), with their
stream times; the end of the input or Ctrl-C ends the stream. The events
are exactly those of the file scan on the same scores.

Stdout carries results only: everything else, library warnings included, goes
to stderr, so `--json` output can be piped straight into another tool.
Two backends: PyTorch (.safetensors / .ckpt weights) and ONNX (an export, run
with onnxruntime); the default takes torch when it is installed, else ONNX.
Live, the ONNX backend runs the stateful streaming export beside the model
(NAME.stream.onnx, shipped for both models: each push computes only the frames
it completes), else it re-runs one receptive field per push.
The ONNX path imports neither torch nor librosa: numpy, soundfile, soxr and
onnxruntime are all it needs (matplotlib too for --plot).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterable, TextIO

from audioconv import registry

if TYPE_CHECKING:
    from audioconv.api import Detector, Stream
    from audioconv.detect import Event

BACKENDS = ("auto", *registry.BACKENDS)
# C0 control characters and DEL, escaped in error lines: a file name cannot break a line or drive the terminal
CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(32), 127)} | {10: "\\n", 13: "\\r", 9: "\\t"}
EXIT_FILE_FAILED, EXIT_USAGE = 1, 2
READ_BYTES = 1 << 14  # most bytes one read of a live stream takes (~0.5 s of 16 kHz s16); a pipe gives what it has
MIC_LABEL = "mic"


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


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
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
    parser = argparse.ArgumentParser(
        prog="audioconv-detect", description=__doc__.split("\n\n")[0],
        epilog="live: arecord -q -f S16_LE -r 16000 -c 1 | audioconv-detect --stream -",
    )
    add = parser.add_argument
    add("files", nargs="*", metavar="FILE", help="audio files (wav, flac, ogg; any rate, any channels)")
    live = parser.add_mutually_exclusive_group()
    live.add_argument("--stream", metavar="SOURCE",
                      help="scan a live byte stream: '-' for stdin (or a named pipe); raw s16le mono at --rate, or WAV")
    live.add_argument("--mic", action="store_true", help="listen to the default input device (needs sounddevice)")
    add("--rate", type=positive_int, default=16_000, help="sample rate of a raw --stream (default 16000; WAV says its own)")
    add("--device", help="--mic input device (a sounddevice name or index; default: the system's)")
    add("--model", choices=registry.MODEL_NAMES,
        help=f"a shipped model (default: the one audioconv/weights/{registry.DEFAULT_MODEL_FILE} names)")
    add("--checkpoint", type=Path, help=".safetensors or train.py .ckpt, or an .onnx export; overrides --model")
    add("--backend", choices=BACKENDS, default="auto",
        help="auto (default: onnx for an .onnx file, else torch when installed, else onnx), torch, or onnx "
        "(onnxruntime; no torch needed). --backend onnx --model NAME uses the shipped NAME.onnx")
    add("--onnx", type=Path, metavar="PATH", help="an ONNX export (audioconv-export): implies --backend onnx")
    add("--threshold", type=probability, help="score threshold in [0, 1] (default: the weights' own, else the package's)")
    add("--smoothing", type=odd_frames, metavar="FRAMES",
        help="centered moving average over this many frames, odd; 1 = off (default: the weights' own, else off)")
    add("--refractory", type=non_negative_float, metavar="SECONDS",
        help="a peak this soon after the one that fired an event is merged into it "
        "(default: the weights' own, else the package's)")
    add("--chunk-seconds", type=positive_float, help="audio scanned per forward pass: bounds memory, not results")
    add("--json", action="store_true", help="one JSON object per event per line on stdout, nothing else")
    add("--plot", type=Path, metavar="OUT.png", help="write a plot per file (several files: OUT_<stem>.png)")
    args = parser.parse_args(argv)
    live_mode = args.stream is not None or args.mic
    if live_mode and args.files:
        parser.error("pass audio files or a live source (--stream / --mic), not both")
    if not live_mode and not args.files:
        parser.error("no input: pass FILE ..., --stream - or --mic")
    if live_mode and args.plot:
        parser.error("--plot draws whole files; it does not apply to --stream or --mic")
    if args.onnx is not None and args.checkpoint is not None:
        parser.error("pass either --onnx or --checkpoint, not both")
    if args.onnx is not None and args.backend == "torch":
        parser.error("--onnx needs the onnx backend")
    return args


def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """``warnings.showwarning`` for a CLI: one line per warning, no source excerpt."""
    report(f"warning: {category.__name__}: {(str(message).strip().splitlines() or [''])[0]}")


def load(args: argparse.Namespace) -> Detector:
    """The detector the arguments name, with their detection settings (``api.load_detector``)."""
    from audioconv.api import load_detector

    warnings.filterwarnings("ignore", message="Detected pickle protocol")  # torch.load on a foreign pickle: noise
    model = args.onnx if args.onnx is not None else args.checkpoint if args.checkpoint is not None else args.model
    backend = "onnx" if args.onnx is not None else args.backend
    return load_detector(model, backend, threshold=args.threshold, smoothing_frames=args.smoothing,
                         refractory_seconds=args.refractory)


def print_table(results: TextIO, file: str, events: list[Event]) -> None:
    """One table per file: start and end in seconds, 2 decimals (the hop is 20 ms)."""
    if not events:
        results.write(f"{file}  no keyword found\n")
        return
    width = max(len(file), len("file"))
    results.write(f"{'file':<{width}}  {'start':>8}  {'end':>8}  {'score':>5}\n")
    for event in events:
        results.write(f"{file:<{width}}  {event.start:8.2f}  {event.end:8.2f}  {event.score:5.2f}\n")


def scan_files(detector: Detector, args: argparse.Namespace, results: TextIO) -> int:
    """Each file in turn; a bad file is one error line and the others still get their results."""
    from audioconv import audio, detect

    settings = {**detector.settings, "chunk_seconds": args.chunk_seconds}  # None: the backend's default
    if args.plot:
        try:
            from audioconv import plots
        except ImportError as error:
            report(f"error: --plot needs matplotlib ({error}): pip install matplotlib")
            return EXIT_USAGE
        plot_paths = plots.plot_paths(args.plot, args.files)
    else:
        plot_paths = [None] * len(args.files)

    failed = 0
    for file, plot_path in zip(args.files, plot_paths):
        try:
            detection = detect.analyze_file(detector.scorer, file, **settings)
        except audio.AudioError as error:
            report(f"error: {error}")
            failed += 1
            continue
        except (ValueError, RuntimeError) as error:  # the model, not the file: e.g. NaN scores, a broken export
            report(model_failure(detector, file, error))
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


def model_failure(detector: Detector, source: str, error: BaseException) -> str:
    """One line for a model that loaded but fails to score (NaN weights, a broken export)."""
    path = str(detector.source)
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0].removeprefix(f"{path}: ")
    return f"error: {path}: the model failed on {source}: {first_line}"


class LiveWriter:
    """Writes a live source's events as they come: JSON lines, or table rows under one header."""

    def __init__(self, results: TextIO, label: str, as_json: bool) -> None:
        self.results, self.label, self.as_json = results, label, as_json
        self.count = 0

    def write(self, events: Iterable[Event]) -> None:
        for event in events:
            if self.as_json:
                self.results.write(json.dumps(event.to_dict()) + "\n")
            else:
                if self.count == 0:
                    self.results.write(f"{'stream':<6}  {'start':>8}  {'end':>8}  {'score':>5}\n")
                self.results.write(f"{self.label:<6}  {event.start:8.2f}  {event.end:8.2f}  {event.score:5.2f}\n")
            self.count += 1
            self.results.flush()  # live: the reader sees each event when it happens

    def finish(self) -> None:
        if self.count == 0 and not self.as_json:
            self.results.write(f"{self.label}  no keyword found\n")
            self.results.flush()


def announce(detector: Detector, label: str, what: str) -> None:
    scanner = detector.stream_scanner  # "stateful onnx" when <name>.stream.onnx lies beside the .onnx
    report(f"listening to {label} ({what}); model {detector.source.name} ({scanner}), "
           f"threshold {detector.settings['threshold']:.3g}; events come about a second after the word; Ctrl-C stops")


def scan_byte_stream(detector: Detector, args: argparse.Namespace, results: TextIO) -> int:
    """--stream: decode bytes as they arrive (raw s16le or WAV), scan, print settled events."""
    from audioconv.pcm import PcmDecoder, StreamFormatError

    label = args.stream
    if label == "-":
        source: BinaryIO = sys.stdin.buffer
        if source.isatty():
            report("error: --stream -: stdin is a terminal; pipe audio into it, e.g. "
                   "arecord -q -f S16_LE -r 16000 -c 1 | audioconv-detect --stream -")
            return EXIT_USAGE
    else:
        try:
            source = open(label, "rb")  # noqa: SIM115 - closed below; a named pipe or a growing file
        except OSError as error:
            report(f"error: {label}: cannot open: {error.strerror or error}")
            return EXIT_FILE_FAILED
    decoder = PcmDecoder(rate=args.rate, name=label)
    writer = LiveWriter(results, label, args.json)
    stream: Stream | None = None
    fd = source.fileno()
    try:
        while True:
            data = os.read(fd, READ_BYTES)
            samples = decoder.feed(data) if data else decoder.finish()
            if stream is None and decoder.rate is not None:
                stream = detector.stream(decoder.rate, file=label)
                announce(detector, label, f"{decoder.format}, {decoder.rate} Hz")
            if stream is not None and samples.size:
                writer.write(stream.push(samples))
            if not data:
                break
    except KeyboardInterrupt:  # Ctrl-C ends the stream like the end of the input
        pass
    except StreamFormatError as error:  # the bytes are not audio we can read
        report(f"error: {error}")
        return EXIT_FILE_FAILED
    except (ValueError, RuntimeError) as error:  # the model, not the stream: e.g. NaN scores
        report(model_failure(detector, label, error))
        return EXIT_USAGE
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    return close_stream(stream, writer)


def close_stream(stream: Stream | None, writer: LiveWriter) -> int:
    """End of input: the events still held, then the 'no keyword' line if there were none."""
    if stream is not None:
        writer.write(stream.close())
    writer.finish()
    return 0


def scan_microphone(detector: Detector, args: argparse.Namespace, results: TextIO) -> int:
    """--mic: the default (or --device) input through sounddevice, until Ctrl-C."""
    from audioconv import mic

    device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
    writer = LiveWriter(results, MIC_LABEL, args.json)
    stream = None
    try:
        rate = mic.open_rate(detector.sample_rate, device)
        blocks = mic.blocks(rate, device)
        stream = detector.stream(rate, file=MIC_LABEL)
        for index, samples in enumerate(blocks):
            if index == 0:
                announce(detector, "the microphone", f"{rate} Hz")
            writer.write(stream.push(samples))
    except mic.MicrophoneError as error:
        report(f"error: {MIC_LABEL}: {error} (or pipe a recorder into --stream -)")
        return EXIT_FILE_FAILED
    except KeyboardInterrupt:  # the way to stop listening
        pass
    except (ValueError, RuntimeError) as error:  # the model, not the microphone: e.g. NaN scores
        report(model_failure(detector, MIC_LABEL, error))
        return EXIT_USAGE
    return close_stream(stream, writer)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = reserve_stdout()
    warnings.showwarning = one_line_warning
    # after the redirect: import-time noise goes to stderr. Only torch-free modules here; the backend
    # imports its own (torch for the torch backend, onnxruntime for the onnx one).
    try:
        detector = load(args)
    except (ValueError, OSError, ImportError) as error:
        shipped_missing = args.checkpoint is None and args.onnx is None and "no such file" in str(error)
        hint = " (make the shipped weights with `make models`, or pass --checkpoint)" if shipped_missing else ""
        report(f"error: {error}{hint}")
        return EXIT_USAGE
    try:
        if args.mic:
            return scan_microphone(detector, args, results)
        if args.stream is not None:
            return scan_byte_stream(detector, args, results)
        return scan_files(detector, args, results)
    except BrokenPipeError:  # the reader went away (`| head -1`): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), results.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
