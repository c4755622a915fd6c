"""shift.png: one spoken "welcome" at several offsets (multiples of the hop) in otherwise identical audio.

The score curve moves by exactly the shift (equivariance) and its maximum, the
clip score, stays the same (invariance); a lower panel shows the clip score for
shifts smaller than one hop, where invariance is only approximate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np

from audioconv.checkpoints import LoadedModel
from audioconv.figures.common import FONT_SIZE, frame_times, new_figure, save_figure, style, title
from audioconv.models import Detector
from audioconv.scan import scan_chunked

SHIFT_COUNT = 4  # offsets of the word
SHIFT_STEP_SECONDS = 0.5  # between offsets; rounded to whole hops
SUBHOP_STEPS = 20  # the sub-hop panel: shifts of 0, hop/20, 2 hop/20, ... hop samples


@dataclass
class Placement:
    """The word at one offset: the whole signal and the word's true span."""

    wave: np.ndarray
    start: int  # samples
    end: int  # samples (exclusive)

    def span(self, sample_rate: int) -> tuple[float, float]:
        return self.start / sample_rate, self.end / sample_rate


def shift_offsets(word_samples: int, model: Detector, count: int = SHIFT_COUNT, step_seconds: float = SHIFT_STEP_SECONDS
                  ) -> tuple[list[int], int]:
    """(offsets, total samples) for the shift figure: whole-hop offsets ``step_seconds`` apart, the first late
    enough and the signal long enough that every frame whose window touches the word exists at every offset."""
    hop, rf = model.hop, model.receptive_field
    first = -(-rf // hop) * hop  # frame 0's window ends before the word starts
    step = max(1, int(round(step_seconds * model.sample_rate / hop))) * hop
    offsets = [first + k * step for k in range(count)]
    return offsets, offsets[-1] + word_samples + rf + hop  # the last frame's window starts after the word ends


def place_at_offsets(word: np.ndarray, offsets: Sequence[int], total: int, background: np.ndarray | None = None) -> list[Placement]:
    """``word`` added into copies of ``background`` (default: silence of ``total`` samples), once per offset.

    Everything but the word's position is identical between the signals, so
    with a silent background and offsets that differ by whole hops the frame
    scores are exact shifts of one another.
    """
    word = np.asarray(word, dtype=np.float32)
    base = np.zeros(total, np.float32) if background is None else np.asarray(background, dtype=np.float32)
    if base.ndim != 1 or base.size != total:
        raise ValueError(f"background must be 1-D with {total} samples, got shape {base.shape}")
    placements = []
    for offset in offsets:
        if offset < 0 or offset + word.size > total:
            raise ValueError(f"offset {offset}: a {word.size}-sample word does not fit in {total} samples")
        wave = base.copy()
        wave[offset : offset + word.size] += word
        placements.append(Placement(wave, int(offset), int(offset) + word.size))
    return placements


def plot_shift(loaded: LoadedModel, word: np.ndarray, word_label: str, out: str | os.PathLike) -> tuple[Path, list[str]]:
    """shift.png: the same word at several whole-hop offsets in silence (the curves shift, their max does not),
    and, below, the clip score for shifts smaller than one hop (where invariance is only approximate)."""
    model = loaded.model
    sr, hop = model.sample_rate, model.hop
    offsets, total = shift_offsets(word.size, model)
    placements = place_at_offsets(word, offsets, total)
    curves = [scan_chunked(model, p.wave) for p in placements]
    times = frame_times(model, curves[0].size)
    peaks = [int(np.argmax(c)) for c in curves]
    shifts = [(p.start - placements[0].start) // hop for p in placements]
    deviations = []
    for shift, curve in zip(shifts, curves):
        n = curves[0].size - shift
        deviations.append(float(np.abs(curve[shift:] - curves[0][:n]).max()))
    clip = [float(c.max()) for c in curves]
    moved = [k - peaks[0] for k in peaks]
    sub = np.linspace(0, hop, SUBHOP_STEPS + 1).round().astype(int)
    sub_clip = np.array([scan_chunked(model, p.wave).max() for p in place_at_offsets(word, offsets[0] + sub, total + hop)])
    colors = matplotlib.colormaps["tab10"](np.arange(len(placements)))
    notes = [
        f"offset {p.start / sr:.2f} s: peak frame {k} ({times[k]:.2f} s, {times[k] - (p.start + p.end) / 2 / sr:+.2f} s from "
        f"the word's center), clip score {m:.4f}, max |s(t) - s0(t - shift)| = {d:.1e}"
        for p, k, m, d in zip(placements, peaks, clip, deviations)
    ]
    notes.append(f"sub-hop shifts 0..{hop} samples: clip score from {sub_clip.min():.3f} to {sub_clip.max():.3f}")
    worst = max(deviations)
    with matplotlib.rc_context(style()):
        figure = new_figure(13.0, 2.0 * len(placements) + 4.6)
        # rows of placements, a spacer (room for the x label), the sub-hop panel
        grid = figure.add_gridspec(len(placements) + 2, 1, height_ratios=[1.0] * len(placements) + [0.2, 1.15], hspace=0.45)
        axes = [figure.add_subplot(grid[0, 0])]
        axes += [figure.add_subplot(grid[i, 0], sharex=axes[0]) for i in range(1, len(placements))]
        top = float(np.abs(word).max())
        for row, (axis, placement, curve, peak, color) in enumerate(zip(axes, placements, curves, peaks, colors)):
            start, end = placement.span(sr)
            axis.axvspan(start, end, color=color, alpha=0.12, linewidth=0)
            axis.plot(np.arange(total) / sr, 0.5 + 0.45 * placement.wave / top, color="0.6", linewidth=0.4)
            axis.plot(times, curve, color=color, linewidth=2.0)
            axis.plot([times[peak]], [curve[peak]], "o", color=color, markersize=7, zorder=4)
            axis.axvline(times[peak], color=color, linestyle=":", linewidth=1.2)
            axis.set_ylim(-0.05, 1.3)
            axis.set_yticks([0, 0.5, 1])
            axis.set_ylabel(f"word at\n+{start:.2f} s", rotation=0, ha="right", va="center", color=color, labelpad=12)
            axis.text(1.005, 0.5, f"peak: frame {peak}\n({times[peak]:.2f} s)\nclip score\n= {clip[row]:.4f}",
                      transform=axis.transAxes, va="center", fontsize=FONT_SIZE - 1, color=color)
            if row:
                previous = times[peaks[row - 1]]
                axis.annotate("", xy=(times[peak], 1.17), xytext=(previous, 1.17),
                              arrowprops={"arrowstyle": "->", "color": color, "linewidth": 1.6})
                axis.axvline(previous, color="0.5", linestyle=":", linewidth=1.0)
                axis.text((previous + times[peak]) / 2, 1.2, f"+{peak - peaks[row - 1]} frames = "
                          f"+{(peak - peaks[row - 1]) * hop / sr:.2f} s", ha="center", va="bottom",
                          fontsize=FONT_SIZE - 1, color=color)
            if row < len(placements) - 1:
                axis.tick_params(labelbottom=False)
        axes[0].set_xlim(0, total / sr)
        step = shifts[1] if len(shifts) > 1 else 0
        axes[0].set_title(f"{word_label} placed in silence, {step} hops ({step * hop / sr:.2f} s) further each row.  "
                          f"grey: waveform; colour: frame scores", loc="left", fontsize=FONT_SIZE)
        axes[-1].set_xlabel("time (s); each score drawn at the centre of its frame's window")

        ax_sub = figure.add_subplot(grid[-1, 0])
        ax_sub.plot(sub / sr * 1000, sub_clip, "o-", color="0.25", linewidth=1.5, markersize=4)
        ax_sub.set_xlim(0, hop / sr * 1000)
        spread = max(float(sub_clip.max() - sub_clip.min()), 0.02)
        ax_sub.set_ylim(max(0.0, sub_clip.min() - spread), min(1.0, sub_clip.max() + spread) + 0.002)
        ax_sub.set_xlabel(f"extra shift of the first row's word (ms; one hop = {hop / sr * 1000:.0f} ms = {hop} samples)")
        ax_sub.set_ylabel("clip score")
        ax_sub.set_title(f"shifts smaller than a hop put the word at a new place on the frame grid: the clip score is then "
                         f"invariant only approximately (here {sub_clip.min():.4f} to {sub_clip.max():.4f})",
                         loc="left", fontsize=FONT_SIZE)
        verdict = "exactly" if moved == shifts else "NOT exactly"
        figure.suptitle(title(loaded,
            f"Shift the word by whole hops and the {loaded.name} scores shift with it, {verdict}: peaks moved {moved} "
            f"frames for shifts of {shifts}\n(largest difference between the shifted curves {worst:.1e}); the clip score, "
            f"the max over time, stays put: {' / '.join(f'{m:.4f}' for m in clip)}\nweights: {loaded.source}"),
            color="red" if loaded.random else "black", fontsize=FONT_SIZE + 1, y=0.995)
        figure.subplots_adjust(left=0.1, right=0.89, top=0.885 if not loaded.random else 0.85, bottom=0.07)
        path = save_figure(figure, out)
    return path, notes
