"""Live byte streams to samples: raw 16-bit PCM or a WAV stream, as it arrives, in pieces of any size.

``arecord -f S16_LE -r 16000 -c 1`` and ``sox ... -t raw -e signed -b 16 -`` send
bare samples; ``arecord`` without ``-t raw`` and ``sox ... -t wav -`` send a WAV
header first (whose sizes are placeholders: the stream has no known end). The
decoder looks at the first four bytes: ``RIFF`` means a WAV stream, whose
header gives rate, channels and encoding; anything else is raw signed 16-bit
little-endian mono at the rate the caller names. Samples come out as float32
in [-1, 1] at the source rate (int16 / 32768, as soundfile reads a file),
channels averaged as ``audio.load`` does. Bytes that do not complete a sample
are kept for the next piece. Numpy only: resampling is the caller's
(``audioconv.api.Stream``).
"""

from __future__ import annotations

import struct

import numpy as np

RIFF, WAVE, FMT, DATA = b"RIFF", b"WAVE", b"fmt ", b"data"
MAX_HEADER_BYTES = 1 << 20  # a WAV stream whose data has not begun by then is not one we can use
# WAV format tags: PCM, IEEE float, and WAVE_FORMAT_EXTENSIBLE (its sub-format's first two bytes are the tag)
PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
# (tag, bits per sample) -> (numpy dtype of one sample, scale to [-1, 1], offset subtracted first)
ENCODINGS: dict[tuple[int, int], tuple[str, float, float]] = {
    (PCM, 8): ("u1", 1 / 128, 128.0),
    (PCM, 16): ("<i2", 1 / 32768, 0.0),
    (PCM, 24): ("<i4", 1 / 2**31, 0.0),  # three bytes, widened into the top of an int32 (see _samples)
    (PCM, 32): ("<i4", 1 / 2**31, 0.0),
    (FLOAT, 32): ("<f4", 1.0, 0.0),
    (FLOAT, 64): ("<f8", 1.0, 0.0),
}


class StreamFormatError(ValueError):
    """A byte stream that is not usable audio. The message names the stream and the reason."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")


class PcmDecoder:
    """Feed it bytes as they arrive; it returns float32 mono samples at ``rate`` (known once the header is read)."""

    def __init__(self, rate: int = 16_000, name: str = "-") -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.name = name
        self.rate: int | None = None  # None until the stream says what it is
        self.channels = 1
        self.format = "raw s16le"
        self._raw_rate = rate
        self._pending = b""
        self._encoding: tuple[str, float, float] | None = None
        self._sample_bytes = 2

    def feed(self, data: bytes) -> np.ndarray:
        """Decode the next bytes; return the samples they complete (maybe none)."""
        self._pending += data
        if self._encoding is None and not self._read_header():
            return np.zeros(0, dtype=np.float32)
        frame_bytes = self._sample_bytes * self.channels
        usable = len(self._pending) - len(self._pending) % frame_bytes
        block, self._pending = self._pending[:usable], self._pending[usable:]
        return self._samples(block)

    def finish(self) -> np.ndarray:
        """End of stream: the samples still held (a stream shorter than four bytes); a trailing partial sample is dropped.

        Raises ``StreamFormatError`` for an empty stream or one that ended inside its WAV header.
        """
        samples = np.zeros(0, dtype=np.float32)
        if self._encoding is None:
            if not self._pending:
                raise StreamFormatError(self.name, "no audio: the stream was empty")
            if RIFF.startswith(self._pending[:4]):
                raise StreamFormatError(self.name, "the WAV stream ended inside its header")
            self._read_header(final=True)
            samples = self.feed(b"")
        self._pending = b""
        return samples

    def _read_header(self, final: bool = False) -> bool:
        """Decide raw or WAV; for WAV, parse up to the data chunk. ``True`` once samples can follow."""
        if len(self._pending) < 4 and not final:
            return False
        if self._pending[:4] != RIFF:
            self.rate, self._encoding = self._raw_rate, ENCODINGS[(PCM, 16)]
            return True
        header = self._parse_wav(self._pending)
        if header is None:
            if len(self._pending) > MAX_HEADER_BYTES:
                raise StreamFormatError(self.name, f"no WAV data chunk in the first {MAX_HEADER_BYTES} bytes")
            return False
        offset, tag, channels, rate, bits = header
        if channels < 1 or rate < 1:
            raise StreamFormatError(self.name, f"WAV header gives {channels} channels at {rate} Hz")
        if (tag, bits) not in ENCODINGS:
            kind = {PCM: "integer", FLOAT: "float"}.get(tag, f"format tag {tag:#x}")
            raise StreamFormatError(self.name, f"unsupported WAV encoding ({kind}, {bits} bits); "
                                    "use 8/16/24/32-bit integer or 32/64-bit float")
        self.rate, self.channels, self._encoding = rate, channels, ENCODINGS[(tag, bits)]
        self._sample_bytes = bits // 8
        self.format = f"WAV {'float' if tag == FLOAT else 'integer'} {bits}-bit, {channels} channel(s)"
        self._pending = self._pending[offset:]
        return True

    def _parse_wav(self, data: bytes) -> tuple[int, int, int, int, int] | None:
        """``(data offset, tag, channels, rate, bits)``, or ``None`` if the header is not complete yet."""
        if len(data) < 12:
            return None
        if data[8:12] != WAVE:
            raise StreamFormatError(self.name, "a RIFF stream that is not WAVE audio")
        position, fmt = 12, None
        while position + 8 <= len(data):
            chunk, size = data[position : position + 4], struct.unpack("<I", data[position + 4 : position + 8])[0]
            if chunk == DATA:  # its size is a placeholder in a stream: read to the end
                if fmt is None:
                    raise StreamFormatError(self.name, "WAV data before its fmt chunk")
                return (position + 8, *fmt)
            end = position + 8 + size + size % 2  # chunks are padded to an even length
            if end > len(data):
                return None
            if chunk == FMT:
                if size < 16:
                    raise StreamFormatError(self.name, f"WAV fmt chunk of {size} bytes (at least 16 expected)")
                tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[position + 8 : position + 24])
                if tag == EXTENSIBLE and size >= 26:
                    tag = struct.unpack("<H", data[position + 32 : position + 34])[0]
                fmt = (tag, channels, rate, bits)
            position = end
        return None

    def _samples(self, block: bytes) -> np.ndarray:
        dtype, scale, offset = self._encoding
        if not block:
            return np.zeros(0, dtype=np.float32)
        if self._sample_bytes == 3:  # 24-bit: widen each sample into the top three bytes of an int32
            raw = np.frombuffer(block, dtype=np.uint8).reshape(-1, 3)
            wide = np.zeros((raw.shape[0], 4), dtype=np.uint8)
            wide[:, 1:] = raw
            values = wide.view("<i4")[:, 0]
        else:
            values = np.frombuffer(block, dtype=dtype)
        samples = values.astype(np.float32)
        if offset:
            samples -= np.float32(offset)
        if scale != 1.0:
            samples *= np.float32(scale)
        if self.channels > 1:
            samples = samples.reshape(-1, self.channels).mean(axis=1, dtype=np.float32)
        if not np.isfinite(samples.sum(dtype=np.float64)):
            raise StreamFormatError(self.name, "NaN or infinite samples in the stream")
        return samples
