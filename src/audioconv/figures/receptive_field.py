"""receptive_field.png: which units of each layer reach one output frame, for each detector.

From ``geometry.cumulative(model.time_layers)``: how the receptive field and
the hop grow layer by layer, and how dilation reaches far with few taps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np

from audioconv import geometry
from audioconv.figures.common import FONT_SIZE, new_figure, save_figure, style
from audioconv.models import Detector

MAX_TICKS = 300  # a level with more units than this reaching one frame is drawn as a band, not dots
MAX_DOTS = 100  # ... and so is an unbroken run of more than this many


def _layer_label(layer: geometry.TimeLayer) -> str:
    dilation = f", d={layer.dilation}" if layer.dilation != 1 else ""
    return f"{layer.name} (k={layer.kernel}, s={layer.stride}{dilation})"


def reached_units(layers: Sequence[geometry.TimeLayer]) -> list[np.ndarray]:
    """Per level (0 = input samples, then the output of each layer), the indices of the units that
    output frame 0 of the last layer depends on, found by following every kernel tap down the stack.

    Dilated layers skip units: only every ``dilation``-th unit of the layer below is a tap, which is
    how a few layers reach far without looking at everything in between.
    """
    levels = [np.zeros(1, dtype=np.int64)]
    for layer in reversed(list(layers)):
        taps = np.arange(layer.kernel, dtype=np.int64) * layer.dilation
        below = (levels[0][:, None] * layer.stride + taps[None, :]).ravel()
        levels.insert(0, np.unique(below))
    return levels


def _pyramid(axis, model: Detector, name: str) -> None:
    sr = model.sample_rate
    layers = model.time_layers
    rows = geometry.cumulative(layers)
    levels = reached_units(layers)
    total = model.receptive_field
    to_ms = 1000.0 / sr
    colors = matplotlib.colormaps["plasma"](np.linspace(0.05, 0.8, len(rows) + 1))
    # level 0: the input samples behind one output frame
    axis.barh(0, total * to_ms, left=0, height=0.5, color=colors[0], alpha=0.45)
    axis.text(total * to_ms * 1.01, 0, f"{levels[0].size} input samples = {total * to_ms:.0f} ms", va="center",
              fontsize=FONT_SIZE - 1)
    labels = ["input waveform"]
    for level, ((layer, jump, field), color) in enumerate(zip(rows, colors[1:]), start=1):
        units = levels[level]
        centers = (units * jump + field / 2) * to_ms  # unit p of this level covers samples [p*jump, p*jump + field)
        # one unit's own window (the first one reached): the receptive field so far
        axis.barh(level, field * to_ms, left=units[0] * jump * to_ms, height=0.5, color=color, alpha=0.3, edgecolor=color)
        contiguous = units.size > 1 and bool(np.all(np.diff(units) == 1))
        if units.size <= MAX_TICKS and not (contiguous and units.size > MAX_DOTS):
            axis.scatter(centers, np.full(units.size, level), s=22 if units.size < 30 else 8, color=color, zorder=3,
                         edgecolor="none")
        else:
            axis.plot([centers[0], centers[-1]], [level, level], color=color, linewidth=3, solid_capstyle="butt")
        if level == len(rows):
            reach = "the output frame itself"
        else:
            spacing = "" if contiguous else f" {int(np.diff(units).min()) * jump * to_ms:g} ms apart"
            reach = f"{units.size} units{spacing} reach the output"
        axis.text(total * to_ms * 1.01, level, f"RF {field * to_ms:.1f} ms, hop {jump * to_ms:g} ms; {reach}",
                  va="center", fontsize=FONT_SIZE - 2)
        labels.append(_layer_label(layer))
    axis.set_yticks(range(len(labels)), labels)
    axis.set_ylim(-0.6, len(labels) - 0.4)
    axis.set_xlim(0, total * to_ms)
    axis.set_xlabel("time within the output frame's window (ms)")
    axis.set_title(f"{name}: hop {model.hop * to_ms:g} ms, receptive field {total * to_ms:.0f} ms "
                   f"({geometry.count_parameters(model):,} parameters)", loc="left", fontsize=FONT_SIZE + 1)


def plot_receptive_field(models: dict[str, Detector], out: str | os.PathLike, note: str = "") -> Path:
    """receptive_field.png: one pyramid per model (layers bottom to top), from ``geometry.cumulative``."""
    with matplotlib.rc_context(style()):
        figure = new_figure(15.0, 4.0 * len(models) + 1.3)
        axes = figure.subplots(len(models), 1, squeeze=False)[:, 0]
        for axis, (name, model) in zip(axes, models.items()):
            _pyramid(axis, model, name)
        figure.suptitle(
            "Which units reach one output frame: dots = unit centres, bar = one unit's own receptive field (RF)\n"
            "RF = 1 + sum over layers of (kernel - 1) x dilation x (product of earlier strides);  hop = product of strides"
            + (f"\n{note}" if note else ""), y=0.995)
        figure.subplots_adjust(left=0.14, right=0.66, top=0.86, bottom=0.07, hspace=0.5)
        return save_figure(figure, out)
