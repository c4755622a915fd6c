"""Record your own voice for fine-tuning: `audioconv-record FOLDER`, then `make adapt RECORDINGS=FOLDER`.

    audioconv-record my_recordings                     # 30 s of the room, 20 keywords, 40 sentences: ~7 minutes
    audioconv-record my_recordings --speaker alice     # another voice in the same folder
    audioconv-record my_recordings --keywords 30 --other 0

Each take is prompted; press Enter, speak, and the take is checked (nothing
heard, clipped, cut off, more than one word...) and asked for again when it
cannot be used. Stop with q or Ctrl-C at any take and run the same command
later: it asks only for the takes still missing. The folder is what
`data.user_folder` reads (data/README.md, "Your own recordings"); the keyword
spans go to positive/keywords.csv. Needs a microphone through sounddevice
(pip install "audioconv[mic]"; PortAudio is libportaudio2 on Debian).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from audioconv.recording import Recorder

EXIT_FAILED, EXIT_USAGE = 1, 2
SETTLE_SECONDS = 0.15  # recorded and dropped at the start of each take: a device's first samples may be zeros or a click


def count(text: str) -> int:
    """argparse type: a whole number >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Arguments only: nothing heavier than argparse is imported before they parse."""
    parser = argparse.ArgumentParser(prog="audioconv-record", description=__doc__.split("\n\n")[0],
                                     epilog="then: make adapt RECORDINGS=FOLDER (README, 'Your own voice')")
    add = parser.add_argument
    add("folder", type=Path, help="where the recordings go (created; an existing one is added to)")
    add("--speaker", default="me", help="subfolder, and voice name, for this person (default: me)")
    add("--keywords", type=count, default=20, help="takes of the keyword (default 20)")
    add("--other", type=count, default=40, help="takes of other speech, confusable words among it (default 40)")
    add("--background", type=count, default=1, help="30 s takes of your room without speech (default 1)")
    add("--sentences", type=Path, help="a text file, one sentence per line, to read for the other takes "
        "(default: 40 built-in ones, confusable words among them)")
    add("--device", help="input device (a sounddevice name or index; default: the system's)")
    return parser.parse_args(argv)


def microphone(device: int | str | None) -> Recorder:
    """A ``recording.Recorder`` on the input device: seconds -> (samples, rate), one input stream per take."""
    from audioconv import audio, mic

    rate = mic.open_rate(audio.SAMPLE_RATE, device)
    settle = round(SETTLE_SECONDS * rate)

    def record(seconds: float) -> tuple[np.ndarray, int]:
        wanted, pieces, have = settle + round(seconds * rate), [], 0
        blocks = mic.blocks(rate, device)
        print("  recording...", file=sys.stderr, flush=True)
        try:
            for block in blocks:
                pieces.append(block)
                have += block.size
                if have >= wanted:
                    break
        except mic.MicrophoneError:
            raise
        except Exception as error:  # noqa: BLE001 - PortAudio's errors: one line, not a traceback
            raise mic.MicrophoneError(f"recording stopped: {str(error).strip() or type(error).__name__}") from None
        finally:
            blocks.close()  # closes the input stream
        return np.concatenate(pieces)[settle:wanted], rate

    return record


def writable(folder: Path) -> None:
    """Raise ``OSError`` naming ``folder`` now if takes cannot be saved there, not after the first take."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from audioconv import mic, recording

    try:
        sentences = None
        if args.sentences is not None:
            sentences = args.sentences.read_text(encoding="utf-8").splitlines()
        takes = recording.session_plan(args.keywords, args.other, sentences=sentences,
                                       background_takes=args.background)
        folder = recording.RecordingFolder(args.folder, args.speaker)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        where = f"{args.sentences}: " if isinstance(error, (OSError, UnicodeDecodeError)) else ""
        print(f"error: {where}{getattr(error, 'strerror', None) or error}", file=sys.stderr)
        return EXIT_USAGE
    device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
    try:
        record = microphone(device)
        writable(args.folder)
        saved = recording.record_session(folder, takes, record, input, lambda line: print(line, file=sys.stderr))
    except mic.MicrophoneError as error:
        print(f"error: microphone: {error}", file=sys.stderr)
        return EXIT_FAILED
    except (OSError, csv.Error, UnicodeDecodeError, ValueError) as error:  # the folder: unwritable, full, bad tables
        print(f"error: {args.folder}: {getattr(error, 'strerror', None) or error}", file=sys.stderr)
        return EXIT_FAILED
    except (KeyboardInterrupt, EOFError):
        print("\nstopped: what was saved stays; run the same command to go on", file=sys.stderr)
        return EXIT_FAILED
    have = {kind: folder.count(kind) for kind in recording.KINDS}
    print(f"saved {saved['keyword']} keyword, {saved['other']} other and {saved['background']} background takes "
          f"this session; {args.folder} now holds {have['keyword']}, {have['other']} and {have['background']} "
          f"for {args.speaker}", file=sys.stderr)
    print(f"next: make adapt RECORDINGS={args.folder}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
