"""The one door for audio in and out of the project.

Everything that reads or writes a sound file goes through here, so every part of
the project sees the same thing: float32, mono, 16 kHz, finite samples. Reading
uses soundfile (any format libsndfile knows: wav, flac, ogg; int16/24/32, float);
writing is atomic (temporary name, then rename) so a half-written file never
looks complete.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16_000


class AudioError(ValueError):
    """A file that cannot be used as audio. The message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def resample(wave: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling (soxr through librosa), float32 out."""
    if orig_sr == target_sr:
        return wave.astype(np.float32, copy=False)
    import librosa

    return librosa.resample(wave.astype(np.float32), orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq").astype(
        np.float32
    )


def load(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, min_samples: int = 1) -> np.ndarray:
    """Read any soundfile-readable file as float32 mono at ``sample_rate``.

    Channels are averaged; non-finite samples are an error, not silently zeroed,
    because a file full of NaN means something upstream broke.
    Raises ``AudioError`` with a one-line reason for anything unusable.
    """
    p = Path(path)
    if not p.exists():
        raise AudioError(path, "no such file")
    if p.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if not os.access(p, os.R_OK):
        raise AudioError(path, "permission denied")
    if p.stat().st_size == 0:
        raise AudioError(path, "empty file")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        reason = str(error).split(":")[-1].strip() or "unreadable"
        raise AudioError(path, f"not a readable audio file ({reason})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "contains no samples")
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(wave)):
        bad = int(np.count_nonzero(~np.isfinite(wave)))
        raise AudioError(path, f"{bad} of {wave.size} samples are NaN or infinite")
    wave = resample(wave, int(sr), sample_rate)
    if wave.size < min_samples:
        raise AudioError(
            path, f"too short: {wave.size / sample_rate:.3f} s, the model needs at least {min_samples / sample_rate:.3f} s"
        )
    return wave


def save(path: str | os.PathLike, wave: np.ndarray, sample_rate: int = SAMPLE_RATE, subtype: str = "PCM_16") -> None:
    """Write a wav atomically: a reader never sees a half-written file under ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        sf.write(tmp, np.clip(wave, -1.0, 1.0), sample_rate, subtype=subtype, format="WAV")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
