"""What the figures share: one style, bare Agg figures written atomically as small palette PNGs, and a few marks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from audioconv.checkpoints import LoadedModel
from audioconv.files import write_atomically
from audioconv.models import Detector

FONT_SIZE = 11
DPI = 100
PNG_COLORS = 256  # palette size of the written PNGs
KEYWORD_COLOR = "tab:green"
BRACKET_COLOR = "tab:red"


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, out: str | os.PathLike) -> Path:
    """PNG written to a temporary file beside ``out``, then renamed: never seen half-written.

    The image is reduced to a 256-color palette (no dithering), which keeps
    figures full of spectrogram pixels small enough to live in the repository.
    """
    from PIL import Image

    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    image = image.quantize(colors=PNG_COLORS, dither=Image.Dither.NONE)
    return write_atomically(out, lambda tmp: image.save(tmp, format="PNG", optimize=True))


def style() -> dict:
    return {
        "font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE + 1, "axes.labelsize": FONT_SIZE,
        "legend.fontsize": FONT_SIZE - 1, "xtick.labelsize": FONT_SIZE - 1, "ytick.labelsize": FONT_SIZE - 1,
        "figure.titlesize": FONT_SIZE + 3, "axes.spines.top": False, "axes.spines.right": False,
    }


def frame_times(model: Detector, frames: int) -> np.ndarray:
    """Seconds at the center of each frame's window (where, on average, the word it reacts to sits)."""
    return (np.arange(frames) * model.hop + model.receptive_field / 2) / model.sample_rate


def title(loaded: LoadedModel, text: str) -> str:
    if loaded.random:
        return f"!!! RANDOM WEIGHTS - NO TRAINED MODEL FOUND - SCORES ARE MEANINGLESS !!!\n{text}"
    return text


def bracket(axis, start: float, end: float, y: float, height: float, label: str, limit: float,
            color: str = BRACKET_COLOR) -> None:
    """A bracket over [start, end) at height ``y``, its label kept inside [0, limit] on the x axis."""
    axis.plot([start, start, end, end], [y - height, y, y, y - height], color=color, linewidth=2.0, clip_on=False)
    center = (start + end) / 2
    x, ha = (end, "right") if center > 0.8 * limit else (start, "left") if center < 0.2 * limit else (center, "center")
    axis.text(x, y + 0.3 * height, label, ha=ha, va="bottom", color=color, fontsize=FONT_SIZE - 1,
              bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.0})


def shade_spans(axis, spans: Sequence[tuple[float, float]], label: str | None = "keyword (true span)") -> None:
    for index, (start, end) in enumerate(spans):
        axis.axvspan(start, end, color=KEYWORD_COLOR, alpha=0.18, linewidth=0, label=label if index == 0 else None)


def shade_outline(axis, spans: Sequence[tuple[float, float]], bottom: float = 0.0) -> None:
    """Keyword spans as thin green brackets along the bottom edge of an image panel."""
    for k0, k1 in spans:
        axis.plot([k0, k1], [bottom, bottom], color=KEYWORD_COLOR, linewidth=5, solid_capstyle="butt", clip_on=False)
