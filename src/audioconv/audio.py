"""The one door for audio in and out of the project.

Everything that reads or writes a sound file goes through here, so every part of
the project sees the same thing: float32, mono, 16 kHz, finite samples. Reading
uses soundfile (any format libsndfile knows: wav, flac, ogg; int16/24/32, float)
and soxr for resampling: nothing here needs torch or librosa, so the ONNX
detection path can use it. Writing is atomic (temporary name, then rename) so a
half-written file never looks complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from audioconv.files import write_atomically

SAMPLE_RATE = 16_000
READ_BLOCK_FRAMES = 1 << 18  # frames per read of a multichannel file: bounds the all-channels buffer
# Fixed-point encodings: their samples are within [-1, 1] by construction, and stay so after resampling.
FIXED_POINT_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "ULAW", "ALAW"})


class AudioError(ValueError):
    """A file that cannot be used as audio. The message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def resample(wave: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling (soxr, high quality), float32 out.

    The result has ``ceil(len(wave) * target_sr / orig_sr)`` samples (soxr's
    own count, rounded, is zero-padded to that), which is what librosa's
    ``resample(res_type="soxr_hq")`` gave: same filter, same numbers, without
    importing librosa.
    """
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    if orig_sr == target_sr:
        return wave
    import soxr

    out = soxr.resample(wave, orig_sr, target_sr, quality="HQ")
    length = -(-wave.size * target_sr // orig_sr)
    if out.size < length:
        out = np.concatenate([out, np.zeros(length - out.size, dtype=out.dtype)])
    return np.asarray(out[:length], dtype=np.float32)


def _read_mono(handle: sf.SoundFile) -> np.ndarray:
    """All frames of an open file as float32 mono: channels averaged block by block.

    A multichannel file is never held whole: one block of all channels plus the
    mono result, instead of a [frames, channels] float32 copy (an hour of 48 kHz
    6-channel audio would be 4 GB). Short reads (a header that promises more
    frames than the file holds) simply end the signal early.
    """
    if handle.channels == 1:
        return handle.read(dtype="float32")
    block = np.empty((max(1, min(READ_BLOCK_FRAMES, handle.frames)), handle.channels), dtype=np.float32)
    mono = np.empty(max(0, handle.frames), dtype=np.float32)
    filled = 0
    while True:
        data = handle.read(out=block)
        count = data.shape[0]
        if count == 0:
            return mono[:filled]
        if filled + count > mono.size:  # more frames than the header said: grow
            grown = np.empty(max(2 * mono.size, filled + count), dtype=np.float32)
            grown[:filled] = mono[:filled]
            mono = grown
        np.mean(data, axis=1, out=mono[filled : filled + count])
        filled += count


def _libsndfile_reason(error: Exception) -> str:
    """libsndfile's reason, without the file name it repeats, on one line."""
    reason = getattr(error, "error_string", None) or str(error).split(":")[-1]
    reason = " ".join(str(reason).split()).rstrip(".") or "unreadable"
    if reason.startswith("File does not exist or is not a regular file"):
        return "format not recognised"  # what libsndfile says when its mp3 probe gives up; the file is regular
    return reason


def load(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, min_samples: int = 1) -> np.ndarray:
    """Read any soundfile-readable file as float32 mono at ``sample_rate``.

    Channels are averaged; non-finite samples are an error, not silently zeroed,
    because a file full of NaN means something upstream broke. A fixed-point
    (PCM, u-law, A-law) file comes out within [-1, 1] even when resampled.
    Raises ``AudioError`` with a one-line reason for anything unusable.
    """
    p = Path(path)
    if not p.exists():
        raise AudioError(path, "broken or looping symbolic link" if p.is_symlink() else "no such file")
    if p.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if not p.is_file():
        raise AudioError(path, "not a regular file (a pipe, socket or device cannot be scanned)")
    if not os.access(p, os.R_OK):
        raise AudioError(path, "permission denied")
    if p.stat().st_size == 0:
        raise AudioError(path, "empty file")
    try:
        with sf.SoundFile(os.fsencode(p)) as handle:  # bytes: any name the OS allows, UTF-8 or not
            sr, subtype = handle.samplerate, handle.subtype
            wave = _read_mono(handle)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise AudioError(path, f"not a readable audio file ({_libsndfile_reason(error)})") from None
    except MemoryError:
        raise AudioError(path, "too large to load into memory") from None
    if wave.size == 0:
        raise AudioError(path, "contains no samples")
    if not np.isfinite(wave.sum(dtype=np.float64)):  # one cheap pass; a finite float64 sum means every sample is finite
        bad = int(np.count_nonzero(~np.isfinite(wave)))
        raise AudioError(path, f"{bad} of {wave.size} samples are NaN or infinite")
    resampled = int(sr) != sample_rate
    wave = resample(wave, int(sr), sample_rate)
    if resampled and subtype in FIXED_POINT_SUBTYPES:
        np.clip(wave, -1.0, 1.0, out=wave)  # the filter's ringing can overshoot full scale, which PCM cannot hold
    if wave.size < min_samples:
        raise AudioError(
            path, f"too short: {wave.size / sample_rate:.3f} s, the model needs at least {min_samples / sample_rate:.3f} s"
        )
    return wave


def save(path: str | os.PathLike, wave: np.ndarray, sample_rate: int = SAMPLE_RATE, subtype: str = "PCM_16") -> None:
    """Write a wav atomically: a reader never sees a half-written file under ``path``."""
    write_atomically(path, lambda tmp: sf.write(tmp, np.clip(wave, -1.0, 1.0), sample_rate, subtype=subtype, format="WAV"))
