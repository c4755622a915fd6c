"""Metric plots: one file's detection (waveform, log spectrogram, score with threshold and events); DET curves.

Drawn on a bare ``matplotlib.figure.Figure`` with the Agg canvas, so no GUI
backend and no pyplot global state are involved. Long recordings are reduced
before drawing (a min/max envelope for the waveform, a capped number of
spectrogram columns), so an hour-long file plots as quickly as a short one.
The PNG is written atomically: a reader never sees a half-written image.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from audioconv.detect import FileDetection
from audioconv.files import write_atomically

if TYPE_CHECKING:
    from audioconv.evaluate import OperatingPoint

FIGURE_SIZE = (12.0, 7.0)  # inches
DPI = 100
MAX_WAVE_POINTS = 4000  # waveform drawn as a min/max envelope above this many samples
SPECTROGRAM_FFT = 512
SPECTROGRAM_HOP_SECONDS = 0.01
MAX_SPECTROGRAM_COLUMNS = 2000
LOG_FLOOR = 1e-10  # power floor before the log: digital silence stays finite
EVENT_COLOR = "tab:red"
EVENT_ALPHA = 0.25
DET_FIGURE_SIZE = (6.0, 4.5)  # inches
DET_DPI = 120


def _save(figure: Figure, out: str | os.PathLike, dpi: float | None = None) -> Path:
    return write_atomically(out, lambda tmp: figure.savefig(tmp, format="png", dpi=dpi))


def _waveform(axis, wave: np.ndarray, sample_rate: int) -> None:
    if wave.size <= MAX_WAVE_POINTS:
        axis.plot(np.arange(wave.size) / sample_rate, wave, linewidth=0.5)
    else:
        bucket = -(-wave.size // MAX_WAVE_POINTS)  # ceil: samples per drawn point
        edges = np.arange(0, wave.size, bucket)
        low, high = np.minimum.reduceat(wave, edges), np.maximum.reduceat(wave, edges)
        axis.fill_between(edges / sample_rate, low, high, linewidth=0.5)
    axis.set_ylabel("amplitude")


def _spectrogram(axis, wave: np.ndarray, sample_rate: int) -> None:
    """Log power spectrogram from strided frames: only the drawn columns are ever computed."""
    n_fft = min(SPECTROGRAM_FFT, wave.size)
    available = wave.size - n_fft + 1
    step = max(int(SPECTROGRAM_HOP_SECONDS * sample_rate), -(-available // MAX_SPECTROGRAM_COLUMNS))
    frames = np.lib.stride_tricks.sliding_window_view(wave, n_fft)[::step] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    image = 10 * np.log10(power.T + LOG_FLOOR)
    extent = (0.0, wave.size / sample_rate, 0.0, sample_rate / 2)
    axis.imshow(image, origin="lower", aspect="auto", extent=extent, cmap="magma")
    axis.set_ylabel("Hz")


def _scores(axis, detection: FileDetection) -> None:
    """Frame scores drawn at the center of their window, where the word they react to is on average."""
    rate = detection.sample_rate
    times = (np.arange(detection.probabilities.size) * detection.hop + detection.receptive_field / 2) / rate
    axis.plot(times, detection.probabilities, linewidth=0.8, label="score")
    axis.axhline(detection.threshold, color="k", linestyle="--", linewidth=0.8, label=f"threshold {detection.threshold:g}")
    for event in detection.events:
        axis.axvspan(event.start, event.end, color=EVENT_COLOR, alpha=EVENT_ALPHA)
    axis.set_ylim(0.0, 1.0)
    axis.set_ylabel("score")
    axis.set_xlabel("time (s)")
    axis.legend(loc="upper right")


def plot_detection(detection: FileDetection, out: str | os.PathLike) -> Path:
    """Write the three-panel PNG for one file to ``out`` (atomically) and return its path."""
    out = Path(out)
    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots(3, 1, sharex=True)
    duration = detection.wave.size / detection.sample_rate
    _waveform(axes[0], detection.wave, detection.sample_rate)
    _spectrogram(axes[1], detection.wave, detection.sample_rate)
    _scores(axes[2], detection)
    axes[0].set_xlim(0.0, duration)
    found = f"{len(detection.events)} event(s)" if detection.events else "no keyword found"
    axes[0].set_title(f"{detection.file}: {found}")
    figure.tight_layout()
    return _save(figure, out)


def det_curve(curves: Mapping[str, Sequence[OperatingPoint]], out: str | os.PathLike, floor: float,
              targets: Sequence[float] = ()) -> Path:
    """DET curve: miss rate against false alarms per hour (log axis), one line per model, written atomically.

    ``curves`` maps a name to its operating points (``evaluate.sweep``); zero false
    alarms are drawn at ``floor``; ``targets`` (FA/h) are drawn as dotted lines.
    """
    figure = Figure(figsize=DET_FIGURE_SIZE)
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    for name, points in curves.items():
        # from the strictest threshold (fewest alarms) down: the miss rate holds until the next point's alarms
        ordered = sorted(points, key=lambda p: -p.threshold)
        alarms = [max(p.false_alarms_per_hour, floor) for p in ordered]
        axis.step(alarms, [p.false_rejection_rate for p in ordered], where="post", label=name)
    axis.set_xscale("log")
    axis.set_xlabel("false alarms per hour")
    axis.set_ylabel("miss rate (false rejection rate)")
    axis.set_ylim(0, 1)
    axis.grid(True, which="both", alpha=0.3)
    for target in targets:
        axis.axvline(target, color="grey", linestyle=":")
    if curves:
        axis.legend()
    axis.set_title(f"DET curve (0 false alarms drawn at {floor:g}/h)")
    figure.tight_layout()
    return _save(figure, out, dpi=DET_DPI)


def plot_paths(out: str | os.PathLike, files: list[str]) -> list[Path]:
    """One PNG name per input: ``out`` itself for one file, else ``out`` + ``_<stem>`` (+ ``_<n>`` if stems repeat)."""
    out = Path(out)
    if len(files) == 1:
        return [out]
    suffix = out.suffix or ".png"
    used: set[str] = set()
    paths = []
    for file in files:
        stem = name = Path(file).stem or "audio"
        copy = 1
        while name in used:
            copy += 1
            name = f"{stem}_{copy}"
        used.add(name)
        paths.append(out.with_name(f"{out.stem}_{name}{suffix}"))
    return paths
