"""The demo recording of the figures: utterances with known keyword spans, from the corpus or espeak-ng.

The recording comes from the corpus's voice-disjoint test split when a corpus
exists (``data/corpus/*/manifest.csv``), else from espeak-ng through the corpus
engine's runner. Utterances are trimmed with the corpus engines' ``active_span``
and laid end to end with random gaps; everything random (voice, utterances,
gaps, background noise) is drawn from one generator.

The placement is not ``streams.compose_stream``'s: that one draws a long
stream's layout (rates, pauses, gains, rooms, SNR) from manifest rows on disk;
here a few trimmed, in-memory utterances go in a fixed order (other, keyword,
other, keyword, ...) with one gap distribution, sized to fit 6-8 s.
"""

from __future__ import annotations

import logging
import math
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from audioconv import audio
from audioconv.config import ROOT  # the checkout
from audioconv.corpus import read_manifest
from audioconv.corpus.engines import espeak
from audioconv.corpus.engines.base import SynthesisError, active_span, wav_bytes_to_16k

log = logging.getLogger(__name__)
CORPUS_ROOT = ROOT / "data" / "corpus"
SOURCES = ("auto", "corpus", "espeak")
KEYWORD = "welcome"

SCAN_SECONDS = (6.0, 8.0)  # wanted length of the demo recording: at least, at most
CORPUS_SPLIT = "test"  # voices the model never trained on (and not the festival held-out voice)
LEAD_SECONDS = 0.3  # silence before the first utterance
GAP_SECONDS = (0.15, 0.35)  # silence between utterances, drawn per gap
TRIM_DB = -20 * math.log10(0.02)  # an utterance's ends are cut where |x| first/last exceeds 2 % of its peak
TRIM_PAD_SECONDS = 0.05  # kept around the trimmed speech
NOISE_RMS = 0.002  # background white noise (about -54 dBFS): keeps the gaps from being digital silence
PEAK_LEVEL = 0.5  # the recording's speech is scaled so its peak sits here
NEGATIVE_KINDS = ("speech", "confusable")
MAX_DRAWS = 200  # random (voice, utterances) draws tried before settling for one that is too long
WORD_MARGIN_SECONDS = 0.06  # kept around the keyword span when the word is cut out of an utterance
FADE_SECONDS = 0.01  # raised-cosine fade at the cut word's ends: no clicks
SIDE_TEXT_WIDTH = 26  # characters per line of ``Recording.source_short``

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


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def find_corpus(corpus_root: str | os.PathLike = CORPUS_ROOT, split: str = CORPUS_SPLIT) -> Path | None:
    """The first manifest (sorted by corpus key, so the choice is stable) with keywords in ``split``."""
    for manifest in sorted(Path(corpus_root).glob("*/manifest.csv")):
        try:
            rows = read_manifest(manifest)
        except (OSError, ValueError, KeyError) as error:
            log.warning("skipping corpus %s: %s", manifest, error)
            continue
        if any(r["split"] == split and r["label"] == 1 for r in rows):
            return manifest
    return None


def _trim(wave: np.ndarray, sample_rate: int) -> tuple[int, int]:
    """Sample range of the speech in ``wave`` (the corpus engines' ``active_span``); all of it when silent."""
    try:
        return active_span(wave, TRIM_DB, int(TRIM_PAD_SECONDS * sample_rate))
    except SynthesisError:
        return 0, wave.size


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
    return espeak.unavailable() is None


def espeak_say(text: str, sample_rate: int = audio.SAMPLE_RATE, voice: str = ESPEAK_VOICE, speed: int = ESPEAK_SPEED) -> np.ndarray:
    """``text`` spoken by espeak-ng (the corpus engine's runner), trimmed, float32 at ``sample_rate``."""
    try:
        wave = wav_bytes_to_16k(espeak.run(voice, text, ["-s", str(speed)], ESPEAK_TIMEOUT_SECONDS))
    except SynthesisError as error:
        raise RuntimeError(f"espeak-ng failed: {error}") from None
    if sample_rate != audio.SAMPLE_RATE:
        wave = audio.resample(wave, audio.SAMPLE_RATE, sample_rate)
    first, last = _trim(wave, sample_rate)
    return wave[first:last]


def espeak_recording(rng: np.random.Generator, sample_rate: int = audio.SAMPLE_RATE) -> Recording:
    """other, "welcome", other, "welcome", [other], spoken piece by piece, so the keyword spans are known exactly.

    The last other sentence is added only while the recording stays within ``SCAN_SECONDS``.
    """
    negatives = [ESPEAK_NEGATIVES[i] for i in rng.permutation(len(ESPEAK_NEGATIVES))[:3]]
    word = espeak_say(KEYWORD, sample_rate)
    start, end = active_span(word, TRIM_DB, 0)  # the word without its padding
    keyword_part = (word, KEYWORD, (start / sample_rate, end / sample_rate))
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
