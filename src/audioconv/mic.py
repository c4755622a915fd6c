"""The microphone as a source of sample blocks, through ``sounddevice`` (PortAudio), when it is installed.

``sounddevice`` is optional (``pip install sounddevice``; on Debian PortAudio is
``libportaudio2``): everything that can go wrong before the first block —
the package missing, the PortAudio library missing, no input device, a rate
the device refuses — becomes one ``MicrophoneError`` whose message says what
to do, so the CLI can print one line instead of a traceback.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

BLOCK_SECONDS = 0.1  # samples per read: latency of a block, small against the detector's ~1 s window


class MicrophoneError(RuntimeError):
    """The microphone cannot be used; the message says why and what to do."""


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _sounddevice():  # noqa: ANN202 - the module, typed only where installed
    try:
        import sounddevice
    except ImportError:
        raise MicrophoneError("the microphone needs the sounddevice package: pip install sounddevice") from None
    except OSError as error:  # sounddevice is there, the PortAudio library is not
        raise MicrophoneError(f"the microphone needs the PortAudio library ({_first_line(error)}): "
                              "sudo apt-get install libportaudio2") from None
    return sounddevice


def open_rate(sample_rate: int, device: int | str | None = None) -> int:
    """The rate to record at: ``sample_rate`` if the input device takes it, else the device's own default rate."""
    sd = _sounddevice()
    try:
        info = sd.query_devices(device, kind="input")
    except (sd.PortAudioError, ValueError) as error:
        raise MicrophoneError(f"no usable input device ({_first_line(error)})") from None
    try:
        sd.check_input_settings(device=device, channels=1, dtype="float32", samplerate=sample_rate)
        return sample_rate
    except (sd.PortAudioError, ValueError):
        return int(info["default_samplerate"])


def blocks(rate: int, device: int | str | None = None, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Mono float32 blocks from the input device at ``rate`` (see ``open_rate``), until the caller stops."""
    sd = _sounddevice()
    frames = max(1, int(round(rate * block_seconds)))
    try:
        stream = sd.InputStream(samplerate=rate, channels=1, dtype="float32", blocksize=frames, device=device)
        stream.start()
    except (sd.PortAudioError, ValueError) as error:
        raise MicrophoneError(f"cannot open the input device ({_first_line(error)})") from None
    with stream:
        while True:
            data, _overflowed = stream.read(frames)  # an overflow drops samples: stream times then run behind
            yield np.ascontiguousarray(data[:, 0], dtype=np.float32)
