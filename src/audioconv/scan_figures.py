"""Teaching figures: a detector is one small window, scanned along the signal with shared weights.

Three pictures, all drawn on bare Agg ``Figure``s and written atomically:

- ``scan.png``: a recording with "welcome" spoken twice among other words:
  waveform (true keyword spans shaded), log-mel spectrogram, a few first-layer
  feature maps, and the frame scores of ``scan.scan_chunked``. The window of
  the best frame near each keyword is drawn as a bracket on the waveform:
  that frame's score was computed from exactly those ~0.93 s and nothing else.
- ``shift.png``: one spoken "welcome" placed at several offsets (multiples of
  the hop) in otherwise identical audio. The score curve moves by exactly the
  shift (equivariance) and its maximum, the clip score, stays the same
  (invariance).
- ``receptive_field.png``: from ``geometry.cumulative(model.time_layers)``, for
  both detectors: which units of each layer reach one output frame, and how
  the receptive field and hop grow layer by layer.

The recording comes from the corpus's voice-disjoint test split when a corpus
exists (``data/corpus/*/manifest.csv``), else from espeak-ng. Everything random
(voice, utterances, gaps, background noise, random weights) is drawn from one
seed.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
import soundfile as sf
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from audioconv import audio, checkpoints, geometry
from audioconv.checkpoints import MODEL_NAMES
from audioconv.detect import DEFAULT_THRESHOLD
from audioconv.features import LogSpectrogram
from audioconv.models import Conv1dDetector, Detector, SpectrogramDetector
from audioconv.scan import scan_chunked
from audioconv.corpus import read_manifest

ROOT = Path(__file__).resolve().parents[2]  # the checkout (this file is src/audioconv/scan_figures.py)
CORPUS_ROOT = ROOT / "data" / "corpus"
OUTPUTS_DIR = ROOT / "outputs"
CONF_DIR = ROOT / "conf"
SOURCES = ("auto", "corpus", "espeak")

# ---- the scan recording
SCAN_SECONDS = (6.0, 8.0)  # wanted length of the demo recording: at least, at most
CORPUS_SPLIT = "test"  # voices the model never trained on (and not the festival held-out voice)
LEAD_SECONDS = 0.3  # silence before the first utterance
GAP_SECONDS = (0.15, 0.35)  # silence between utterances, drawn per gap
TRIM_RATIO = 0.02  # an utterance's ends are cut where |x| first/last exceeds this fraction of its peak
TRIM_PAD_SECONDS = 0.05  # kept around the trimmed speech
NOISE_RMS = 0.002  # background white noise (about -54 dBFS): keeps the gaps from being digital silence
PEAK_LEVEL = 0.5  # the recording's speech is scaled so its peak sits here
NEGATIVE_KINDS = ("speech", "confusable")
MAX_DRAWS = 200  # random (voice, utterances) draws tried before settling for one that is too long

# ---- espeak-ng fallback
ESPEAK_VOICE = "en-us"
ESPEAK_SPEED = 150  # words per minute
ESPEAK_TIMEOUT_SECONDS = 20.0
ESPEAK_NEGATIVES = (
    "the weather is lovely today",
    "well, come and see the garden",
    "she bought a new umbrella",
    "the income report is late again",
    "please close the kitchen window",
)
KEYWORD = "welcome"

# ---- the shift figure
SHIFT_COUNT = 4  # offsets of the word
SHIFT_STEP_SECONDS = 0.5  # between offsets; rounded to whole hops
SUBHOP_STEPS = 20  # the sub-hop panel: shifts of 0, hop/20, 2 hop/20, ... hop samples
WORD_MARGIN_SECONDS = 0.06  # kept around the keyword span when the word is cut out of an utterance
FADE_SECONDS = 0.01  # raised-cosine fade at the cut word's ends: no clicks

# ---- drawing
FONT_SIZE = 11
DPI = 100
PNG_COLOURS = 256  # palette size of the written PNGs
FEATURE_MAPS = 6  # conv1d: filter envelopes shown
CONV2D_MAPS = 4  # spectrogram: first conv2d channels shown
RESPONSE_FFT = 1024  # points of the filter kernels' frequency responses
WAVE_POINTS = 2800  # columns of the drawn waveform envelope
MAX_TICKS = 300  # a level with more units than this reaching one frame is drawn as a band, not dots
MAX_DOTS = 100  # ... and so is an unbroken run of more than this many
KEYWORD_COLOUR = "tab:green"
BRACKET_COLOUR = "tab:red"
SIDE_TEXT_WIDTH = 26  # characters per line in the narrow side panels


# --------------------------------------------------------------------------- data

Part = tuple[np.ndarray, str, "tuple[float, float] | None"]  # trimmed audio, text, keyword span (s) within it


@dataclass
class Piece:
    """One utterance inside a composed recording: where it is (seconds) and what it says."""

    start: float
    end: float
    text: str
    keyword: tuple[float, float] | None = None  # the keyword's span, seconds in the recording


@dataclass
class Recording:
    wave: np.ndarray
    sample_rate: int
    pieces: list[Piece]
    source: str  # one line: where the audio came from
    voice: str | None = None  # the corpus voice, when there is one

    @property
    def spans(self) -> list[tuple[float, float]]:
        """True keyword spans, seconds, in order."""
        return [p.keyword for p in self.pieces if p.keyword is not None]

    def source_short(self, width: int = SIDE_TEXT_WIDTH) -> str:
        """``source`` wrapped for a narrow side panel."""
        return "\n".join(textwrap.wrap(self.source, width))


@dataclass
class Placement:
    """The word at one offset: the whole signal and the word's true span."""

    wave: np.ndarray
    start: int  # samples
    end: int  # samples (exclusive)

    def span(self, sample_rate: int) -> tuple[float, float]:
        return self.start / sample_rate, self.end / sample_rate


@dataclass
class LoadedModel:
    model: Detector
    name: str  # "conv1d" | "spectrogram"
    source: str  # where the weights came from, for titles
    random: bool = False
    threshold: float = DEFAULT_THRESHOLD  # the weights' own operating point when they carry one


def _warn(message: str) -> None:
    print(f"scan_demo: {message}", file=sys.stderr)


def _name_of(model: Detector) -> str:
    return "conv1d" if isinstance(model, Conv1dDetector) else "spectrogram"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _load(path: Path, source: str) -> LoadedModel:
    model, info = checkpoints.load_detector(path)
    threshold = info.get("threshold")
    return LoadedModel(model, _name_of(model), source, threshold=float(threshold) if threshold is not None else DEFAULT_THRESHOLD)


def resolve_model(
    name: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    seed: int = 0,
    models_dir: str | os.PathLike | None = None,
    outputs_dir: str | os.PathLike = OUTPUTS_DIR,
) -> LoadedModel:
    """The weights to draw with, first found of: ``checkpoint`` (when given), the shipped weights,
    the newest ``outputs/<name>/*/checkpoints/best.ckpt``, random weights (``random=True``).

    A checkpoint named explicitly that cannot be loaded is an error; a fallback that
    cannot be loaded (a run still writing it, say) is skipped with a warning.
    """
    if checkpoint is not None:
        path = Path(checkpoint)
        loaded = _load(path, f"checkpoint {_display(path)}")
        if name is not None and loaded.name != name:
            _warn(f"--model {name} ignored: {path} holds a {loaded.name} detector")
        return loaded
    if name is None:
        name = checkpoints.shipped_weights(None, models_dir).stem
    shipped = checkpoints.shipped_weights(name, models_dir)
    if shipped.is_file():
        return _load(shipped, f"shipped weights {_display(shipped)}")
    candidates = sorted(Path(outputs_dir).glob(f"{name}/*/checkpoints/best.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        try:
            return _load(path, f"checkpoint {_display(path)}")
        except checkpoints.CheckpointError as error:
            _warn(f"skipping {error}")
    torch.manual_seed(seed)
    model = checkpoints.build_detector({"_target_": MODEL_NAMES[name]}).eval()
    _warn(f"no trained {name} weights found (no {shipped}, no {outputs_dir}/{name}/*/checkpoints/best.ckpt): RANDOM WEIGHTS")
    return LoadedModel(model, name, "RANDOM WEIGHTS, untrained: the scores mean nothing", random=True)


def find_corpus(corpus_root: str | os.PathLike = CORPUS_ROOT, split: str = CORPUS_SPLIT) -> Path | None:
    """The first manifest (sorted by corpus key, so the choice is stable) with keywords in ``split``."""
    for manifest in sorted(Path(corpus_root).glob("*/manifest.csv")):
        try:
            rows = read_manifest(manifest)
        except (OSError, ValueError, KeyError) as error:
            _warn(f"skipping corpus {manifest}: {error}")
            continue
        if any(r["split"] == split and r["label"] == 1 for r in rows):
            return manifest
    return None


def _trim(wave: np.ndarray, sample_rate: int) -> tuple[int, int]:
    """Sample range of the speech in ``wave``: leading and trailing near-silence cut, a little padding kept."""
    loud = np.flatnonzero(np.abs(wave) > TRIM_RATIO * max(float(np.abs(wave).max()), 1e-9))
    if loud.size == 0:
        return 0, wave.size
    pad = int(TRIM_PAD_SECONDS * sample_rate)
    return max(0, int(loud[0]) - pad), min(wave.size, int(loud[-1]) + 1 + pad)


def _fade(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    n = min(int(FADE_SECONDS * sample_rate), wave.size // 2)
    if n == 0:
        return wave
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))).astype(wave.dtype)
    out = wave.copy()
    out[:n] *= ramp
    out[-n:] *= ramp[::-1]
    return out


def _assemble(parts: Sequence[Part], rng: np.random.Generator, sample_rate: int, source: str) -> Recording:
    """Utterances laid end to end with random gaps; keyword spans (seconds within each part) moved along."""
    chunks, pieces = [np.zeros(int(LEAD_SECONDS * sample_rate), np.float32)], []
    position = chunks[0].size
    for index, (wave, text, keyword) in enumerate(parts):
        if index:
            gap = np.zeros(int(rng.uniform(*GAP_SECONDS) * sample_rate), np.float32)
            chunks.append(gap)
            position += gap.size
        start = position / sample_rate
        span = None if keyword is None else (start + keyword[0], start + keyword[1])
        pieces.append(Piece(start, start + wave.size / sample_rate, text, span))
        chunks.append(wave.astype(np.float32))
        position += wave.size
    chunks.append(np.zeros(int(LEAD_SECONDS * sample_rate), np.float32))
    wave = np.concatenate(chunks)
    wave *= PEAK_LEVEL / max(float(np.abs(wave).max()), 1e-9)
    wave += (NOISE_RMS * rng.standard_normal(wave.size)).astype(np.float32)
    return Recording(wave.astype(np.float32), sample_rate, pieces, source)


def _corpus_part(row: dict, sample_rate: int) -> Part:
    wave = audio.load(row["path"], sample_rate=sample_rate)
    first, last = _trim(wave, sample_rate)
    keyword = None
    if int(row["label"]) == 1:
        k0, k1 = int(round(float(row["kw_start"]) * sample_rate)), int(round(float(row["kw_end"]) * sample_rate))
        first, last = min(first, k0), max(last, k1)  # never trim into the keyword
        keyword = ((k0 - first) / sample_rate, (k1 - first) / sample_rate)
    return wave[first:last], str(row["text"]), keyword


def _test_voices(manifest: Path, split: str, sample_rate: int) -> list[tuple[str, list[Part], list[Part]]]:
    """(voice, keyword parts, other parts) for each voice of ``split`` with two or more of each, audio trimmed."""
    rows = [r for r in read_manifest(manifest) if r["split"] == split]
    voices = []
    for voice in sorted({r["voice"] for r in rows}):
        mine = [r for r in rows if r["voice"] == voice]
        keywords = [r for r in mine if r["label"] == 1]
        others = [r for r in mine if r["label"] == 0 and r["kind"] in NEGATIVE_KINDS]
        if len(keywords) >= 2 and len(others) >= 2:
            voices.append((voice, [_corpus_part(r, sample_rate) for r in keywords], [_corpus_part(r, sample_rate) for r in others]))
    if not voices:
        raise ValueError(f"{manifest}: no voice in split {split!r} has two keyword and two other utterances")
    return voices


def _draw_utterances(voices: list[tuple[str, list[Part], list[Part]]], rng: np.random.Generator, sample_rate: int
                     ) -> tuple[str, list[Part], list[Part]]:
    """A voice, two keyword utterances and two or more others that fit in ``SCAN_SECONDS`` (one full gap
    counted per utterance: an upper bound). Random draws until one fits; the last draw if none does."""
    for _ in range(MAX_DRAWS):
        voice, keywords, others = voices[int(rng.integers(len(voices)))]
        chosen_keywords = [keywords[i] for i in rng.choice(len(keywords), 2, replace=False)]
        total = 2 * LEAD_SECONDS + sum(p[0].size / sample_rate + GAP_SECONDS[1] for p in chosen_keywords)
        chosen = []
        for index in rng.permutation(len(others)):
            length = others[index][0].size / sample_rate + GAP_SECONDS[1]
            if total + length <= SCAN_SECONDS[1]:
                chosen.append(others[index])
                total += length
            if len(chosen) >= 2 and total >= SCAN_SECONDS[0]:
                break
        if len(chosen) >= 2:
            return voice, chosen_keywords, chosen
    return voice, chosen_keywords, sorted(others, key=lambda p: p[0].size)[:2]


def corpus_recording(manifest: str | os.PathLike, rng: np.random.Generator, sample_rate: int = audio.SAMPLE_RATE,
                     split: str = CORPUS_SPLIT) -> Recording:
    """other, KEYWORD, other, KEYWORD, other...: utterances of one voice from ``split`` of a corpus, ~6-8 s."""
    manifest = Path(manifest)
    voice, keywords, others = _draw_utterances(_test_voices(manifest, split, sample_rate), rng, sample_rate)
    parts = [others[0], keywords[0], others[1], keywords[1], *others[2:]]
    recording = _assemble(parts, rng, sample_rate, f"corpus {_display(manifest.parent)}, split {split}, voice {voice}")
    recording.voice = voice
    return recording


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak_say(text: str, sample_rate: int = audio.SAMPLE_RATE, voice: str = ESPEAK_VOICE, speed: int = ESPEAK_SPEED) -> np.ndarray:
    """``text`` spoken by espeak-ng (text on stdin, never taken for an option), float32 at ``sample_rate``."""
    done = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout"],
        input=text.encode(), capture_output=True, timeout=ESPEAK_TIMEOUT_SECONDS,
    )
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError(f"espeak-ng failed for {text!r}: {done.stderr.decode(errors='replace').strip() or done.returncode}")
    wave, rate = sf.read(io.BytesIO(done.stdout), dtype="float32")
    wave = audio.resample(wave if wave.ndim == 1 else wave.mean(axis=1), int(rate), sample_rate)
    first, last = _trim(wave, sample_rate)
    return wave[first:last]


def espeak_recording(rng: np.random.Generator, sample_rate: int = audio.SAMPLE_RATE) -> Recording:
    """other, "welcome", other, "welcome", [other], spoken piece by piece, so the keyword spans are known exactly.

    The last other sentence is added only while the recording stays within ``SCAN_SECONDS``.
    """
    negatives = [ESPEAK_NEGATIVES[i] for i in rng.permutation(len(ESPEAK_NEGATIVES))[:3]]
    word = espeak_say(KEYWORD, sample_rate)
    loud = np.flatnonzero(np.abs(word) > TRIM_RATIO * float(np.abs(word).max()))  # the word without its padding
    keyword_part = (word, KEYWORD, (loud[0] / sample_rate, (loud[-1] + 1) / sample_rate))
    other = [(espeak_say(t, sample_rate), t, None) for t in negatives]
    parts = [other[0], keyword_part, other[1], keyword_part]
    length = 2 * LEAD_SECONDS + sum(p[0].size / sample_rate + GAP_SECONDS[1] for p in parts)
    if length + other[2][0].size / sample_rate <= SCAN_SECONDS[1]:
        parts.append(other[2])
    return _assemble(parts, rng, sample_rate, f"espeak-ng -v {ESPEAK_VOICE} -s {ESPEAK_SPEED}")


def keyword_word(manifest: Path | None, rng: np.random.Generator, sample_rate: int = audio.SAMPLE_RATE,
                 voice: str | None = None, split: str = CORPUS_SPLIT) -> tuple[np.ndarray, str]:
    """One spoken "welcome", cut to its span (plus a margin): from the corpus when there is one, else espeak-ng.

    From the corpus: a keyword utterance of ``voice`` when it has one (the one said alone preferred),
    else of any voice of ``split``.
    """
    if manifest is not None:
        rows = [r for r in read_manifest(manifest) if r["split"] == split and r["label"] == 1]
        rows = [r for r in rows if r["voice"] == voice] or rows
        alone = [r for r in rows if str(r["text"]).strip(" .!?").lower() == KEYWORD] or rows
        row = alone[int(rng.integers(len(alone)))]
        wave = audio.load(row["path"], sample_rate=sample_rate)
        margin = int(WORD_MARGIN_SECONDS * sample_rate)
        first = max(0, int(round(float(row["kw_start"]) * sample_rate)) - margin)
        last = min(wave.size, int(round(float(row["kw_end"]) * sample_rate)) + margin)
        word = _fade(wave[first:last], sample_rate)
        label = f"\"{KEYWORD}\" ({row['voice']}, corpus {split} split)"
    else:
        word = espeak_say(KEYWORD, sample_rate)
        label = f"\"{KEYWORD}\" (espeak-ng -v {ESPEAK_VOICE})"
    return (PEAK_LEVEL * word / max(float(np.abs(word).max()), 1e-9)).astype(np.float32), label


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


def make_recording(source: str, rng: np.random.Generator, sample_rate: int, corpus: str | os.PathLike | None = None
                   ) -> tuple[Recording, Path | None, str]:
    """(recording, manifest used or None, "corpus" | "espeak")."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    manifest = None
    if source in ("auto", "corpus"):
        if corpus is not None:
            manifest = Path(corpus)
            manifest = manifest / "manifest.csv" if manifest.is_dir() else manifest
        else:
            manifest = find_corpus()
        if manifest is None and source == "corpus":
            raise FileNotFoundError(f"no corpus with a {CORPUS_SPLIT} split under {CORPUS_ROOT}")
    if manifest is not None:
        return corpus_recording(manifest, rng, sample_rate), manifest, "corpus"
    if not espeak_available():
        raise FileNotFoundError(f"no corpus under {CORPUS_ROOT} and no espeak-ng: nothing to make the demo recording from")
    return espeak_recording(rng, sample_rate), None, "espeak"


# --------------------------------------------------------------------------- drawing helpers


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, out: str | os.PathLike) -> Path:
    """PNG written to a temporary file beside ``out``, then renamed: never seen half-written.

    The image is reduced to a 256-colour palette (no dithering), which keeps
    figures full of spectrogram pixels small enough to live in the repository.
    """
    from PIL import Image

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    image = image.quantize(colors=PNG_COLOURS, dither=Image.Dither.NONE)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        image.save(tmp, format="PNG", optimize=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def _style() -> dict:
    return {
        "font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE + 1, "axes.labelsize": FONT_SIZE,
        "legend.fontsize": FONT_SIZE - 1, "xtick.labelsize": FONT_SIZE - 1, "ytick.labelsize": FONT_SIZE - 1,
        "figure.titlesize": FONT_SIZE + 3, "axes.spines.top": False, "axes.spines.right": False,
    }


def _frame_times(model: Detector, frames: int) -> np.ndarray:
    """Seconds at the centre of each frame's window (where, on average, the word it reacts to sits)."""
    return (np.arange(frames) * model.hop + model.receptive_field / 2) / model.sample_rate


def _title(loaded: LoadedModel, text: str) -> str:
    if loaded.random:
        return f"!!! RANDOM WEIGHTS - NO TRAINED MODEL FOUND - SCORES ARE MEANINGLESS !!!\n{text}"
    return text


def _bracket(axis, start: float, end: float, y: float, height: float, label: str, limit: float,
             colour: str = BRACKET_COLOUR) -> None:
    """A bracket over [start, end) at height ``y``, its label kept inside [0, limit] on the x axis."""
    axis.plot([start, start, end, end], [y - height, y, y, y - height], color=colour, linewidth=2.0, clip_on=False)
    centre = (start + end) / 2
    x, ha = (end, "right") if centre > 0.8 * limit else (start, "left") if centre < 0.2 * limit else (centre, "center")
    axis.text(x, y + 0.3 * height, label, ha=ha, va="bottom", color=colour, fontsize=FONT_SIZE - 1,
              bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.0})


def _shade_spans(axis, spans: Sequence[tuple[float, float]], label: str | None = "keyword (true span)") -> None:
    for index, (start, end) in enumerate(spans):
        axis.axvspan(start, end, color=KEYWORD_COLOUR, alpha=0.18, linewidth=0, label=label if index == 0 else None)


# --------------------------------------------------------------------------- scan.png


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
    response, freqs, centres = _filter_responses(model)
    order = np.argsort(centres, kind="stable")
    chosen = order[np.linspace(0, order.size - 1, min(FEATURE_MAPS, order.size)).round().astype(int)]
    stride = model.filterbank.stride[0]
    frame_hop = stride * _first(model.pool.stride)
    frame_span = (_first(model.pool.kernel_size) - 1) * stride + model.filterbank.kernel_size[0]
    times = (np.arange(maps.shape[1]) * frame_hop + frame_span / 2) / model.sample_rate
    colours = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, chosen.size))
    for row, (index, colour) in enumerate(zip(chosen, colours)):
        trace = maps[index]
        low, high = np.percentile(trace, 1), np.percentile(trace, 99.5)
        axis.fill_between(times, row, row + 0.9 * np.clip((trace - low) / max(high - low, 1e-6), 0, 1),
                          color=colour, alpha=0.85, linewidth=0)
        side.fill_between(freqs / 1000, row, row + 0.9 * response[index], color=colour, alpha=0.85, linewidth=0)
    axis.set_yticks(np.arange(chosen.size) + 0.4, [f"{centres[i] / 1000:.1f} kHz" for i in chosen])
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
    duration = wave.size / sr
    scores = scan_chunked(model, wave)
    times = _frame_times(model, scores.size)
    spans = recording.spans
    peaks = _keyword_peaks(model, scores, spans)
    outside = _far_from_keywords(model, scores, spans)
    tensor = torch.from_numpy(wave).unsqueeze(0)
    rf_s, hop_s = model.receptive_field / sr, model.hop / sr

    notes = []
    with matplotlib.rc_context(_style()):
        figure = _figure(14.0, 12.5)
        grid = figure.add_gridspec(4, 2, width_ratios=[6.0, 1.15], height_ratios=[1.3, 1.0, 1.0, 1.0], hspace=0.38, wspace=0.06)
        ax_wave = figure.add_subplot(grid[0, 0])
        ax_spec = figure.add_subplot(grid[1, 0], sharex=ax_wave)
        ax_feat = figure.add_subplot(grid[2, 0], sharex=ax_wave)
        ax_score = figure.add_subplot(grid[3, 0], sharex=ax_wave)
        side_text, side_spec, side_feat, side_score = (figure.add_subplot(grid[r, 1]) for r in range(4))

        # waveform, true spans, words, the windows of the best frames
        _envelope(ax_wave, wave, sr)
        _shade_spans(ax_wave, spans)
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
            _bracket(ax_wave, start, start + rf_s, y, 0.12 * top,
                     f"frame {peak} sees only [{start:.2f}, {start + rf_s:.2f}) s", duration)
        ax_wave.set_ylabel("amplitude")
        ax_wave.set_yticks([])
        ax_wave.legend(loc="upper left", framealpha=0.9)
        ax_wave.set_title("waveform: true keyword spans shaded; brackets = the one window behind the best frame near each keyword",
                          loc="left")

        # spectrogram: the model's own front end when it has one, the same LogSpectrogram module otherwise
        if isinstance(model, SpectrogramDetector):
            frontend, whose = model.frontend, "the model's own front end"
        else:
            frontend, whose = LogSpectrogram(sr), "audioconv.features.LogSpectrogram, for reference"
        with torch.inference_mode():
            image = frontend(tensor).numpy()[0]
        fft, hop = frontend.spectrogram.n_fft, frontend.spectrogram.hop_length
        t0 = fft / 2 / sr
        low = np.percentile(image, 5)
        ax_spec.imshow(image, origin="lower", aspect="auto", cmap="magma", vmin=low, vmax=image.max(),
                       extent=(t0, t0 + image.shape[1] * hop / sr, 0, image.shape[0]), interpolation="nearest")
        _shade_outline(ax_spec, spans)
        ax_spec.set_ylabel("mel bin")
        ax_spec.set_title(f"log-mel spectrogram ({image.shape[0]} mel bins, {fft / sr * 1000:.0f} ms frames every "
                          f"{hop / sr * 1000:.0f} ms; {whose})", loc="left")

        if isinstance(model, Conv1dDetector):
            _feature_panels_conv1d(model, tensor, ax_feat, side_feat, duration)
        else:
            _feature_panels_spectrogram(model, tensor, ax_feat, side_feat, duration)
        _shade_outline(ax_feat, spans, bottom=ax_feat.get_ylim()[0])

        # scores
        _shade_spans(ax_score, spans, label=None)
        ax_score.plot(times, scores, color="tab:blue", linewidth=1.6, marker=".", markersize=3, label="frame score")
        ax_score.axhline(loaded.threshold, color="k", linestyle="--", linewidth=0.9, label=f"threshold {loaded.threshold:g}")
        for k, peak in enumerate(peaks):
            if peak < 0:
                continue
            ax_score.plot([times[peak]], [scores[peak]], "o", color=BRACKET_COLOUR, markersize=7)
            for axis in (ax_wave, ax_spec, ax_feat, ax_score):
                axis.axvline(times[peak], color=BRACKET_COLOUR, linestyle=":", linewidth=1.0)
            k0, k1 = spans[k]
            window0 = peak * model.hop / sr
            notes.append(
                f"keyword {k + 1} [{k0:.2f}, {k1:.2f}] s: best frame {peak}, score {scores[peak]:.3f}, window "
                f"[{window0:.2f}, {window0 + rf_s:.2f}) s, window centre {times[peak] - (k0 + k1) / 2:+.2f} s from the "
                f"word's centre, word starts {k0 - window0:.2f} s into the window, ends {window0 + rf_s - k1:.2f} s before its end"
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
        figure.suptitle(_title(loaded, f"The {loaded.name} detector scanning a {duration:.1f} s recording with \"{KEYWORD}\" "
                                       f"said twice\nweights: {loaded.source}"),
                        color="red" if loaded.random else "black", y=0.995)
        figure.subplots_adjust(left=0.08, right=0.985, top=0.915 if not loaded.random else 0.9, bottom=0.05)
        path = save_figure(figure, out)
    return path, notes


def _shade_outline(axis, spans: Sequence[tuple[float, float]], bottom: float = 0.0) -> None:
    """Keyword spans as thin green brackets along the bottom edge of an image panel."""
    for k0, k1 in spans:
        axis.plot([k0, k1], [bottom, bottom], color=KEYWORD_COLOUR, linewidth=5, solid_capstyle="butt", clip_on=False)


# --------------------------------------------------------------------------- shift.png


def plot_shift(loaded: LoadedModel, word: np.ndarray, word_label: str, out: str | os.PathLike) -> tuple[Path, list[str]]:
    """shift.png: the same word at several whole-hop offsets in silence (the curves shift, their max does not),
    and, below, the clip score for shifts smaller than one hop (where invariance is only approximate)."""
    model = loaded.model
    sr, hop = model.sample_rate, model.hop
    offsets, total = shift_offsets(word.size, model)
    placements = place_at_offsets(word, offsets, total)
    curves = [scan_chunked(model, p.wave) for p in placements]
    times = _frame_times(model, curves[0].size)
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
    colours = matplotlib.colormaps["tab10"](np.arange(len(placements)))
    notes = [
        f"offset {p.start / sr:.2f} s: peak frame {k} ({times[k]:.2f} s, {times[k] - (p.start + p.end) / 2 / sr:+.2f} s from "
        f"the word's centre), clip score {m:.4f}, max |s(t) - s0(t - shift)| = {d:.1e}"
        for p, k, m, d in zip(placements, peaks, clip, deviations)
    ]
    notes.append(f"sub-hop shifts 0..{hop} samples: clip score from {sub_clip.min():.3f} to {sub_clip.max():.3f}")
    worst = max(deviations)
    with matplotlib.rc_context(_style()):
        figure = _figure(13.0, 2.0 * len(placements) + 4.6)
        # rows of placements, a spacer (room for the x label), the sub-hop panel
        grid = figure.add_gridspec(len(placements) + 2, 1, height_ratios=[1.0] * len(placements) + [0.2, 1.15], hspace=0.45)
        axes = [figure.add_subplot(grid[0, 0])]
        axes += [figure.add_subplot(grid[i, 0], sharex=axes[0]) for i in range(1, len(placements))]
        top = float(np.abs(word).max())
        for row, (axis, placement, curve, peak, colour) in enumerate(zip(axes, placements, curves, peaks, colours)):
            start, end = placement.span(sr)
            axis.axvspan(start, end, color=colour, alpha=0.12, linewidth=0)
            axis.plot(np.arange(total) / sr, 0.5 + 0.45 * placement.wave / top, color="0.6", linewidth=0.4)
            axis.plot(times, curve, color=colour, linewidth=2.0)
            axis.plot([times[peak]], [curve[peak]], "o", color=colour, markersize=7, zorder=4)
            axis.axvline(times[peak], color=colour, linestyle=":", linewidth=1.2)
            axis.set_ylim(-0.05, 1.3)
            axis.set_yticks([0, 0.5, 1])
            axis.set_ylabel(f"word at\n+{start:.2f} s", rotation=0, ha="right", va="center", color=colour, labelpad=12)
            axis.text(1.005, 0.5, f"peak: frame {peak}\n({times[peak]:.2f} s)\nclip score\n= {clip[row]:.4f}",
                      transform=axis.transAxes, va="center", fontsize=FONT_SIZE - 1, color=colour)
            if row:
                previous = times[peaks[row - 1]]
                axis.annotate("", xy=(times[peak], 1.17), xytext=(previous, 1.17),
                              arrowprops={"arrowstyle": "->", "color": colour, "linewidth": 1.6})
                axis.axvline(previous, color="0.5", linestyle=":", linewidth=1.0)
                axis.text((previous + times[peak]) / 2, 1.2, f"+{peak - peaks[row - 1]} frames = "
                          f"+{(peak - peaks[row - 1]) * hop / sr:.2f} s", ha="center", va="bottom",
                          fontsize=FONT_SIZE - 1, color=colour)
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
        figure.suptitle(_title(loaded,
            f"Shift the word by whole hops and the {loaded.name} scores shift with it, {verdict}: peaks moved {moved} "
            f"frames for shifts of {shifts}\n(largest difference between the shifted curves {worst:.1e}); the clip score, "
            f"the max over time, stays put: {' / '.join(f'{m:.4f}' for m in clip)}\nweights: {loaded.source}"),
            color="red" if loaded.random else "black", fontsize=FONT_SIZE + 1, y=0.995)
        figure.subplots_adjust(left=0.1, right=0.89, top=0.885 if not loaded.random else 0.85, bottom=0.07)
        path = save_figure(figure, out)
    return path, notes


# --------------------------------------------------------------------------- receptive_field.png


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
    colours = matplotlib.colormaps["plasma"](np.linspace(0.05, 0.8, len(rows) + 1))
    # level 0: the input samples behind one output frame
    axis.barh(0, total * to_ms, left=0, height=0.5, color=colours[0], alpha=0.45)
    axis.text(total * to_ms * 1.01, 0, f"{levels[0].size} input samples = {total * to_ms:.0f} ms", va="center",
              fontsize=FONT_SIZE - 1)
    labels = ["input waveform"]
    for level, ((layer, jump, field), colour) in enumerate(zip(rows, colours[1:]), start=1):
        units = levels[level]
        centres = (units * jump + field / 2) * to_ms  # unit p of this level covers samples [p*jump, p*jump + field)
        # one unit's own window (the first one reached): the receptive field so far
        axis.barh(level, field * to_ms, left=units[0] * jump * to_ms, height=0.5, color=colour, alpha=0.3, edgecolor=colour)
        contiguous = units.size > 1 and bool(np.all(np.diff(units) == 1))
        if units.size <= MAX_TICKS and not (contiguous and units.size > MAX_DOTS):
            axis.scatter(centres, np.full(units.size, level), s=22 if units.size < 30 else 8, color=colour, zorder=3,
                         edgecolor="none")
        else:
            axis.plot([centres[0], centres[-1]], [level, level], color=colour, linewidth=3, solid_capstyle="butt")
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
    with matplotlib.rc_context(_style()):
        figure = _figure(15.0, 4.0 * len(models) + 1.3)
        axes = figure.subplots(len(models), 1, squeeze=False)[:, 0]
        for axis, (name, model) in zip(axes, models.items()):
            _pyramid(axis, model, name)
        figure.suptitle(
            "Which units reach one output frame: dots = unit centres, bar = one unit's own receptive field (RF)\n"
            "RF = 1 + sum over layers of (kernel - 1) x dilation x (product of earlier strides);  hop = product of strides"
            + (f"\n{note}" if note else ""), y=0.995)
        figure.subplots_adjust(left=0.14, right=0.66, top=0.86, bottom=0.07, hspace=0.5)
        return save_figure(figure, out)


# --------------------------------------------------------------------------- everything


def configured_detector(name: str, sample_rate: int = audio.SAMPLE_RATE) -> Detector:
    """An untrained detector built from ``conf/model/<name>.yaml`` (the class defaults if that file is missing)."""
    path = CONF_DIR / "model" / f"{name}.yaml"
    if not path.is_file():
        return checkpoints.build_detector({"_target_": MODEL_NAMES[name]})
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    if isinstance(config.get("sample_rate"), str):  # an interpolation into the data config: not ours to resolve
        config["sample_rate"] = sample_rate
    return checkpoints.build_detector(config)


def make_figures(
    out_dir: str | os.PathLike,
    model_name: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    seed: int = 0,
    source: str = "auto",
    corpus: str | os.PathLike | None = None,
) -> tuple[list[Path], list[str]]:
    """Write scan.png, shift.png and receptive_field.png into ``out_dir``; return their paths and observations."""
    out_dir = Path(out_dir)
    loaded = resolve_model(model_name, checkpoint, seed=seed)
    rng = np.random.default_rng(seed)
    recording, manifest, used = make_recording(source, rng, loaded.model.sample_rate, corpus)
    word, word_label = keyword_word(manifest if used == "corpus" else None, rng, loaded.model.sample_rate, recording.voice)
    notes = [f"model: {loaded.name}, weights: {loaded.source}", f"recording: {recording.source}"]
    scan_path, scan_notes = plot_scan(loaded, recording, out_dir / "scan.png")
    shift_path, shift_notes = plot_shift(loaded, word, word_label, out_dir / "shift.png")
    models: dict[str, Detector] = {}
    for name in MODEL_NAMES:
        models[name] = loaded.model if loaded.name == name else configured_detector(name, loaded.model.sample_rate)
    rf_path = plot_receptive_field(models, out_dir / "receptive_field.png",
                                   note=f"{loaded.name}: the loaded weights; other: conf/model/ settings, untrained (geometry only)")
    return [scan_path, shift_path, rf_path], notes + scan_notes + shift_notes
