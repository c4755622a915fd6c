"""scan.png: a recording with "welcome" spoken twice among other words, and the detector scanned along it.

Waveform (true keyword spans shaded), log-mel spectrogram, a few first-layer
feature maps, and the frame scores of ``scan.scan_chunked``. The window of the
best frame near each keyword is drawn as a bracket on the waveform: that
frame's score was computed from exactly those ~0.93 s and nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
import torch

from audioconv.checkpoints import LoadedModel
from audioconv.features import LogSpectrogram
from audioconv.figures.common import (
    BRACKET_COLOR, FONT_SIZE, bracket, frame_times, new_figure, save_figure, shade_outline, shade_spans, style, title,
)
from audioconv.figures.recording import KEYWORD, Recording
from audioconv.models import Conv1dDetector, Detector, SpectrogramDetector
from audioconv.scan import scan_chunked

FEATURE_MAPS = 6  # conv1d: filter envelopes shown
CONV2D_MAPS = 4  # spectrogram: first conv2d channels shown
RESPONSE_FFT = 1024  # points of the filter kernels' frequency responses
WAVE_POINTS = 2800  # columns of the drawn waveform envelope


def _filter_responses(model: Conv1dDetector) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(magnitude responses [filters, bins], each scaled to peak 1; bin frequencies in Hz; peak frequency per filter)."""
    kernels = model.filterbank.weight.detach().cpu().numpy()[:, 0, :]
    magnitude = np.abs(np.fft.rfft(kernels, n=RESPONSE_FFT, axis=-1))
    freqs = np.fft.rfftfreq(RESPONSE_FFT, 1.0 / model.sample_rate)
    return magnitude / np.maximum(magnitude.max(axis=1, keepdims=True), 1e-12), freqs, freqs[np.argmax(magnitude, axis=1)]


def _first(value: int | tuple[int, ...]) -> int:
    return value if isinstance(value, int) else value[0]


def _feature_panels_conv1d(model: Conv1dDetector, wave: torch.Tensor, axis, side, duration: float) -> None:
    """A few filters' log envelopes (bottom: lowest peak frequency) and, beside them, their frequency responses."""
    with torch.inference_mode():
        maps = model.features(wave).numpy()[0]  # [filters, frames], log envelopes at 10 ms
    response, freqs, centers = _filter_responses(model)
    order = np.argsort(centers, kind="stable")
    chosen = order[np.linspace(0, order.size - 1, min(FEATURE_MAPS, order.size)).round().astype(int)]
    stride = model.filterbank.stride[0]
    frame_hop = stride * _first(model.pool.stride)
    frame_span = (_first(model.pool.kernel_size) - 1) * stride + model.filterbank.kernel_size[0]
    times = (np.arange(maps.shape[1]) * frame_hop + frame_span / 2) / model.sample_rate
    colors = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, chosen.size))
    for row, (index, color) in enumerate(zip(chosen, colors)):
        trace = maps[index]
        low, high = np.percentile(trace, 1), np.percentile(trace, 99.5)
        axis.fill_between(times, row, row + 0.9 * np.clip((trace - low) / max(high - low, 1e-6), 0, 1),
                          color=color, alpha=0.85, linewidth=0)
        side.fill_between(freqs / 1000, row, row + 0.9 * response[index], color=color, alpha=0.85, linewidth=0)
    axis.set_yticks(np.arange(chosen.size) + 0.4, [f"{centers[i] / 1000:.1f} kHz" for i in chosen])
    axis.set_ylim(-0.1, chosen.size)
    axis.set_ylabel("peak frequency")
    axis.set_title(f"first layer: {chosen.size} of the {maps.shape[0]} learned filters' log envelopes (|filter output| "
                   f"averaged over {frame_span / model.sample_rate * 1000:.0f} ms, every "
                   f"{frame_hop / model.sample_rate * 1000:.0f} ms)", loc="left")
    side.set_ylim(-0.1, chosen.size)
    side.set_yticks([])
    side.set_xlim(0, model.sample_rate / 2000)
    side.set_xlabel("kHz")
    side.set_title(f"their {model.filterbank.kernel_size[0]}-tap kernels'\nfrequency responses", fontsize=FONT_SIZE - 1)


def _feature_panels_spectrogram(model: SpectrogramDetector, wave: torch.Tensor, axis, side, duration: float) -> None:
    first = model.conv2d[0]
    with torch.inference_mode():
        x = model.input_norm(model.features(wave)).unsqueeze(1)
        maps = first(x).numpy()[0]  # [channels, bins, frames]
    energy = maps.reshape(maps.shape[0], -1).std(axis=1)
    chosen = np.sort(np.argsort(energy)[::-1][: min(CONV2D_MAPS, maps.shape[0])])
    bins = maps.shape[1]
    scaled = [np.clip(maps[c] / max(float(np.percentile(maps[c], 99.5)), 1e-6), 0, 1) for c in chosen[::-1]]
    stacked = np.concatenate([np.concatenate([m, np.full((1, maps.shape[2]), np.nan)]) for m in scaled])
    hop = model.frontend.spectrogram.hop_length
    span = model.frontend.spectrogram.n_fft + (first.kernel - 1) * hop
    start = span / 2 / model.sample_rate
    extent = (start, start + maps.shape[2] * hop / model.sample_rate, 0, stacked.shape[0])
    axis.imshow(stacked, origin="lower", aspect="auto", extent=extent, cmap="inferno", interpolation="nearest", vmin=0, vmax=1)
    axis.set_yticks([(bins + 1) * r + bins / 2 for r in range(chosen.size)], [f"ch {c}" for c in chosen[::-1]])
    axis.set_title(f"first conv layer: {chosen.size} of its {maps.shape[0]} feature maps (3x3 kernels over the normalised "
                   f"log-mel; {bins} rows after frequency stride 2)", loc="left")
    kernels = first.conv.weight.detach().cpu().numpy()[chosen, 0]  # [k, 3, 3]
    side.axis("off")
    side.set_title("their 3x3 kernels\n(freq x time)", fontsize=FONT_SIZE - 1)
    for k, (channel, kernel) in enumerate(zip(chosen, kernels)):
        inset = side.inset_axes([0.02 + 0.245 * k, 0.25, 0.22, 0.5])
        limit = float(np.abs(kernel).max()) or 1.0
        inset.imshow(kernel, origin="lower", cmap="coolwarm", vmin=-limit, vmax=limit)
        inset.set_xticks([])
        inset.set_yticks([])
        inset.set_xlabel(f"ch {channel}", fontsize=FONT_SIZE - 3)


def _envelope(axis, wave: np.ndarray, sample_rate: int) -> None:
    """The waveform as a min/max envelope of ``WAVE_POINTS`` columns: looks the same, draws and compresses better."""
    bucket = max(1, -(-wave.size // WAVE_POINTS))
    edges = np.arange(0, wave.size, bucket)
    low, high = np.minimum.reduceat(wave, edges), np.maximum.reduceat(wave, edges)
    axis.fill_between(edges / sample_rate, low, high, color="0.35", linewidth=0.3, step="post")


def _keyword_peaks(model: Detector, scores: np.ndarray, spans: Sequence[tuple[float, float]]) -> list[int]:
    """Per keyword, the best frame among those whose window overlaps the keyword."""
    sr, hop, rf = model.sample_rate, model.hop, model.receptive_field
    starts = np.arange(scores.size) * hop / sr
    peaks = []
    for k0, k1 in spans:
        near = np.flatnonzero((starts < k1) & (starts + rf / sr > k0))
        peaks.append(int(near[np.argmax(scores[near])]) if near.size else -1)
    return peaks


def _far_from_keywords(model: Detector, scores: np.ndarray, spans: Sequence[tuple[float, float]]) -> np.ndarray:
    """Mask of frames whose window does not overlap any keyword."""
    sr, hop, rf = model.sample_rate, model.hop, model.receptive_field
    starts = np.arange(scores.size) * hop / sr
    mask = np.ones(scores.size, bool)
    for k0, k1 in spans:
        mask &= ~((starts < k1) & (starts + rf / sr > k0))
    return mask


def plot_scan(loaded: LoadedModel, recording: Recording, out: str | os.PathLike) -> tuple[Path, list[str]]:
    """scan.png; returns its path and a few observations (peak positions relative to the words) as text."""
    model, sr = loaded.model, recording.sample_rate
    wave = recording.wave
    inner = getattr(model, "unwarped", model.branches[0])  # the panels show one network: an ensemble's first member,
    # a pitch-gated model's unwarped copy; the scores are the whole detector's
    duration = wave.size / sr
    scores = scan_chunked(model, wave)
    times = frame_times(model, scores.size)
    spans = recording.spans
    peaks = _keyword_peaks(model, scores, spans)
    outside = _far_from_keywords(model, scores, spans)
    tensor = torch.from_numpy(wave).unsqueeze(0)
    rf_s, hop_s = model.receptive_field / sr, model.hop / sr

    notes = []
    with matplotlib.rc_context(style()):
        figure = new_figure(14.0, 12.5)
        grid = figure.add_gridspec(4, 2, width_ratios=[6.0, 1.15], height_ratios=[1.3, 1.0, 1.0, 1.0], hspace=0.38, wspace=0.06)
        ax_wave = figure.add_subplot(grid[0, 0])
        ax_spec = figure.add_subplot(grid[1, 0], sharex=ax_wave)
        ax_feat = figure.add_subplot(grid[2, 0], sharex=ax_wave)
        ax_score = figure.add_subplot(grid[3, 0], sharex=ax_wave)
        side_text, side_spec, side_feat, side_score = (figure.add_subplot(grid[r, 1]) for r in range(4))

        # waveform, true spans, words, the windows of the best frames
        _envelope(ax_wave, wave, sr)
        shade_spans(ax_wave, spans)
        top = float(np.abs(wave).max())
        for piece in recording.pieces:
            text = piece.text if len(piece.text) <= 34 else piece.text[:32] + "..."
            ax_wave.text((piece.start + piece.end) / 2, -1.32 * top, f"\"{text}\"", ha="center", va="bottom",
                         fontsize=FONT_SIZE - 2, color="darkgreen" if piece.keyword else "0.3", style="italic")
        ax_wave.set_ylim(-1.35 * top, 2.2 * top)
        for k, peak in enumerate(peaks):
            if peak < 0:
                continue
            start = peak * model.hop / sr
            y = (1.25 + 0.45 * (k % 2)) * top
            bracket(ax_wave, start, start + rf_s, y, 0.12 * top,
                     f"frame {peak} sees only [{start:.2f}, {start + rf_s:.2f}) s", duration)
        ax_wave.set_ylabel("amplitude")
        ax_wave.set_yticks([])
        ax_wave.legend(loc="upper left", framealpha=0.9)
        ax_wave.set_title("waveform: true keyword spans shaded; brackets = the one window behind the best frame near each keyword",
                          loc="left")

        # spectrogram: the model's own front end when it has one, the same LogSpectrogram module otherwise
        if isinstance(inner, SpectrogramDetector):
            frontend, whose = inner.frontend, "the model's own front end"
        else:
            frontend, whose = LogSpectrogram(sr), "audioconv.features.LogSpectrogram, for reference"
        with torch.inference_mode():
            image = frontend(tensor).numpy()[0]
        fft, hop = frontend.spectrogram.n_fft, frontend.spectrogram.hop_length
        t0 = fft / 2 / sr
        low = np.percentile(image, 5)
        ax_spec.imshow(image, origin="lower", aspect="auto", cmap="magma", vmin=low, vmax=image.max(),
                       extent=(t0, t0 + image.shape[1] * hop / sr, 0, image.shape[0]), interpolation="nearest")
        shade_outline(ax_spec, spans)
        ax_spec.set_ylabel("mel bin")
        ax_spec.set_title(f"log-mel spectrogram ({image.shape[0]} mel bins, {fft / sr * 1000:.0f} ms frames every "
                          f"{hop / sr * 1000:.0f} ms; {whose})", loc="left")

        if isinstance(inner, Conv1dDetector):
            _feature_panels_conv1d(inner, tensor, ax_feat, side_feat, duration)
        else:
            _feature_panels_spectrogram(inner, tensor, ax_feat, side_feat, duration)
        shade_outline(ax_feat, spans, bottom=ax_feat.get_ylim()[0])

        # scores
        shade_spans(ax_score, spans, label=None)
        ax_score.plot(times, scores, color="tab:blue", linewidth=1.6, marker=".", markersize=3, label="frame score")
        ax_score.axhline(loaded.threshold, color="k", linestyle="--", linewidth=0.9, label=f"threshold {loaded.threshold:g}")
        for k, peak in enumerate(peaks):
            if peak < 0:
                continue
            ax_score.plot([times[peak]], [scores[peak]], "o", color=BRACKET_COLOR, markersize=7)
            for axis in (ax_wave, ax_spec, ax_feat, ax_score):
                axis.axvline(times[peak], color=BRACKET_COLOR, linestyle=":", linewidth=1.0)
            k0, k1 = spans[k]
            window0 = peak * model.hop / sr
            notes.append(
                f"keyword {k + 1} [{k0:.2f}, {k1:.2f}] s: best frame {peak}, score {scores[peak]:.3f}, window "
                f"[{window0:.2f}, {window0 + rf_s:.2f}) s, window center {times[peak] - (k0 + k1) / 2:+.2f} s from the "
                f"word's center, word starts {k0 - window0:.2f} s into the window, ends {window0 + rf_s - k1:.2f} s before its end"
            )
        if outside.any():
            worst = int(np.flatnonzero(outside)[np.argmax(scores[outside])])
            notes.append(f"highest score of a frame whose window misses both keywords: {scores[worst]:.3f} at {times[worst]:.2f} s")
        ax_score.set_ylim(-0.02, 1.05)
        ax_score.set_ylabel("score")
        ax_score.set_xlabel("time (s); each score is drawn at the centre of its frame's window")
        ax_score.legend(loc="upper left", framealpha=0.9, ncol=2)
        ax_score.set_title(f"frame scores: one per {hop_s * 1000:.0f} ms hop, each from a {rf_s * 1000:.0f} ms window "
                           f"(scan.scan_chunked); red dots = best frame per keyword", loc="left")
        ax_wave.set_xlim(0.0, duration)
        for axis in (ax_wave, ax_spec, ax_feat):
            axis.tick_params(labelbottom=False)

        side_spec.axis("off")
        side_score.axis("off")
        side_text.axis("off")
        side_text.text(0.0, 1.0,
                       f"one detector, {rf_s * 1000:.0f} ms wide,\nslid along in {hop_s * 1000:.0f} ms steps\n"
                       f"with the same weights:\n{scores.size} frames from\n{duration:.1f} s of audio.\n\n"
                       f"{recording.source_short()}",
                       va="top", fontsize=FONT_SIZE - 1, transform=side_text.transAxes, wrap=True)
        found = [f"{scores[p]:.2f}" if p >= 0 else "-" for p in peaks]
        elsewhere = f"\naway from both:\n  {scores[outside].max():.2f}" if outside.any() else ""
        side_score.text(0.0, 0.95, "best score\n" + "\n".join(f"  at keyword {k + 1}: {v}" for k, v in enumerate(found))
                        + elsewhere, va="top", fontsize=FONT_SIZE, transform=side_score.transAxes)
        figure.suptitle(title(loaded, f"The {loaded.name} detector scanning a {duration:.1f} s recording with \"{KEYWORD}\" "
                                       f"said twice\nweights: {loaded.source}"),
                        color="red" if loaded.random else "black", y=0.995)
        figure.subplots_adjust(left=0.08, right=0.985, top=0.915 if not loaded.random else 0.9, bottom=0.05)
        path = save_figure(figure, out)
    return path, notes
