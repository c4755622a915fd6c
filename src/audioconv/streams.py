"""Long evaluation recordings composed from corpus utterances, with their truth.

A stream is a timeline of utterances from one split of the corpus (test or
heldout: voices the model never trained on) over a noise background:

* **negative speech and confusable words** fill it; **keyword utterances**
  ("welcome" alone, in a carrier phrase or amid random words) come at about
  ``keywords_per_minute``, never closer than ``min_keyword_spacing`` so that
  each keyword's hit window (``evaluate``) is unambiguous;
* **placement varies**: an utterance follows the previous one after a normal
  pause, or a short gap (running speech: the keyword lands inside a longer
  phrase), or after a long silence; every utterance gets its own gain (speaker
  distance) and maybe its own synthetic room (reverberation);
* **background**: noise files of the split (or of ``noise_rows``) tiled over
  the whole stream, at one SNR per stream against the speech level; with no
  noise file at all, seeded colored noise is generated instead.

Utterances are joined so that the keyword is never spelled across a junction
(``forbidden_junction``: "well" then "come..." for "welcome"): spoken close
together, that *is* the keyword, and the truth would not know it.

Everything is drawn from ``numpy.random.default_rng(seed)``: the same rows,
settings and seed give the same samples and the same truth.

Truth CSV (``write_truth``/``read_truth``): ``file,start,end,voice,text``, one
row per keyword, times in seconds. ``file`` is written relative to the CSV's
folder (``stream_000.flac``), and readers resolve a relative ``file`` against
that folder (``truth_paths``). A file without keywords is listed with one row
whose ``start`` and ``end`` are empty, so negative-only streams can be
evaluated (they count as audio scanned, with no keyword).
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np
import soundfile as sf

from audioconv import audio, augment
from audioconv.channel import telephone
from audioconv.files import write_atomically, write_text_atomically

TRUTH_COLUMNS = ("file", "start", "end", "voice", "text")
STREAM_FORMATS = {".wav": "WAV", ".flac": "FLAC"}  # both PCM16; audio.load reads either
DEFAULT_KEYWORD = "welcome"  # conf/data/welcome.yaml: data.corpus.keyword
JUNCTION_GAP_SECONDS = 1.0  # least pause at a forbidden junction (the keyword split across two utterances)


@dataclass(frozen=True)
class StreamConfig:
    """How a stream is laid out. Seconds unless named otherwise; ranges are drawn uniformly."""

    seconds: float = 300.0
    keywords_per_minute: float = 4.0  # mean rate; 0 gives a negative-only stream
    min_keyword_spacing: float = 3.0  # between one keyword's end and the next one's start
    end_margin: float = 1.0  # audio kept after the last keyword, so a detector can hear it out
    pause_range: tuple[float, float] = (0.2, 1.5)  # between utterances, usually
    phrase_prob: float = 0.25  # else a short gap: utterances run together like one phrase
    phrase_gap_range: tuple[float, float] = (0.03, 0.15)
    silence_prob: float = 0.05  # else a long silence (background only)
    silence_range: tuple[float, float] = (3.0, 8.0)
    gain_range_db: tuple[float, float] = (-9.0, 0.0)  # per utterance
    snr_range_db: tuple[float, float] = (5.0, 20.0)  # per stream, speech level over the background
    background: bool = True  # False: speech on digital silence
    reverb_prob: float = 0.3  # per utterance
    reverb_t60_range: tuple[float, float] = (0.2, 0.7)
    narrowband_prob: float = 0.0  # per utterance: through a telephone line before the (wideband) background joins
    sample_rate: int = audio.SAMPLE_RATE
    keyword: str = DEFAULT_KEYWORD  # data.corpus.keyword: never spelled across two joined utterances


class Utterance(NamedTuple):
    """One utterance laid along a stream (any kind: keyword, speech, confusable): what was said, and when."""

    start: float
    end: float
    kind: str
    voice: str
    text: str


SAID_COLUMNS = ("file", *Utterance._fields)


class Keyword(NamedTuple):
    """One keyword in a stream: its span in seconds, and who said what (for per-voice reports)."""

    start: float
    end: float
    voice: str = ""
    text: str = ""


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", str(text or "").lower())


def _spelled(words: Sequence[str]) -> str:
    """Words run together as heard: no spaces, a doubled letter once ("well come" -> "welcome")."""
    return re.sub(r"(.)\1+", r"\1", "".join(words))


def forbidden_junction(before: Mapping | None, after: Mapping, keyword: str = DEFAULT_KEYWORD) -> bool:
    """True when ``before`` then ``after`` say ``keyword`` across the junction, so they must not be joined closely.

    That is: ``before``'s last word(s) and ``after``'s first word(s), run
    together (``_spelled``: spaces dropped, a doubled letter once), start
    with the keyword, and the keyword does not fit in ``before``'s words
    alone: it is split into ``A + B``, ``before`` ending with the whole
    word(s) ``A`` and ``after`` starting with ``B`` ("come" also in "comes").
    For "welcome", "that went well" + "come here" is forbidden; for "hello",
    "hel" + "lo there" is; "well" + "done" never is. ``before`` None
    (nothing yet) never is.
    """
    if before is None:
        return False
    spoken = _spelled(_words(keyword))
    last, head = _words(before.get("text", "")), _words(after.get("text", ""))
    for count in range(1, len(last) + 1):
        if len(_spelled(last[-count:])) >= len(spoken):
            break  # A must leave some of the keyword to ``after``
        if head and _spelled(last[-count:] + head).startswith(spoken):
            return True
    return False


def _colored_noise(samples: int, rng: np.random.Generator) -> np.ndarray:
    """Pink-ish noise (1/f power) for streams whose split has no noise files."""
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    frequencies = np.fft.rfftfreq(samples)
    frequencies[0] = frequencies[1] if samples > 1 else 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(frequencies), n=samples)
    return (noise / (np.std(noise) + 1e-12)).astype(np.float32)


def _cached_loader(sample_rate: int) -> Callable[[str], np.ndarray]:
    cache: dict[str, np.ndarray] = {}

    def load(path: str) -> np.ndarray:
        if path not in cache:
            cache[path] = audio.load(path, sample_rate=sample_rate)
        return cache[path]

    return load


def compose_stream(
    rows: Sequence[Mapping],
    config: StreamConfig,
    seed: int | Sequence[int],
    noise_rows: Sequence[Mapping] = (),
    said: list[Utterance] | None = None,
) -> tuple[np.ndarray, list[Keyword]]:
    """Build one stream from manifest rows (absolute paths). Returns (wave float32, keywords in time order).

    ``said``, when given, receives every utterance laid down, in time order
    (what a false alarm overlapped: ``write_said``). It draws nothing, so the
    stream is the same with or without it.

    ``rows`` supply the speech (label 1: keyword utterances with ``kw_start``/
    ``kw_end``; label 0, kind other than noise: everything else) and, with
    ``noise_rows``, the background pool (kind ``noise``).
    """
    rng = np.random.default_rng(seed)
    sr = config.sample_rate
    load = _cached_loader(sr)
    positives = [r for r in rows if int(r["label"]) == 1]
    speech = [r for r in rows if int(r["label"]) == 0 and r["kind"] != "noise"]
    noises = [r for r in [*rows, *noise_rows] if r["kind"] == "noise"]
    if not speech:
        raise ValueError("a stream needs non-keyword utterances in the chosen rows")
    if config.keywords_per_minute > 0 and not positives:
        raise ValueError("keywords_per_minute > 0 but the chosen rows hold no keyword utterance")
    total = int(round(config.seconds * sr))
    wave = np.zeros(total, dtype=np.float32)
    keywords: list[Keyword] = []
    mean_interval = 60.0 / config.keywords_per_minute if config.keywords_per_minute > 0 else np.inf

    def next_interval() -> float:
        return max(config.min_keyword_spacing, float(rng.uniform(0.5, 1.5)) * mean_interval)

    next_keyword = float(rng.uniform(0.0, 1.0)) * mean_interval if np.isfinite(mean_interval) else np.inf
    cursor = int(rng.uniform(*config.pause_range) * sr)
    previous: Mapping | None = None
    while cursor < total:
        row = None
        now = cursor / sr
        if now >= next_keyword and (not keywords or now - keywords[-1].end >= config.min_keyword_spacing):
            candidate = positives[int(rng.integers(len(positives)))]
            if cursor + int(np.ceil((float(candidate["kw_end"]) + config.end_margin) * sr)) <= total:
                row = candidate
            next_keyword = now + next_interval()
        if row is None:
            row = speech[int(rng.integers(len(speech)))]
        if forbidden_junction(previous, row, config.keyword):
            cursor += int(JUNCTION_GAP_SECONDS * sr)
            if cursor >= total:
                break
        utterance = load(row["path"])
        if rng.random() < config.reverb_prob:
            room = augment.synthetic_room(rng, float(rng.uniform(*config.reverb_t60_range)), sr)
            utterance = augment.reverberate(utterance, room)
        if config.narrowband_prob > 0 and rng.random() < config.narrowband_prob:  # no draw when off: streams unchanged
            utterance = telephone(utterance, rng, sr)
        utterance = utterance * np.float32(10 ** (float(rng.uniform(*config.gain_range_db)) / 20))
        end = min(cursor + utterance.size, total)
        wave[cursor:end] += utterance[: end - cursor]
        if int(row["label"]) == 1:
            start_s = cursor / sr + float(row["kw_start"])
            keywords.append(Keyword(start_s, cursor / sr + float(row["kw_end"]), str(row.get("voice", "")), str(row.get("text", ""))))
        if said is not None:
            said.append(Utterance(cursor / sr, end / sr, str(row.get("kind", "")), str(row.get("voice", "")),
                                  str(row.get("text", ""))))
        previous = row
        draw = rng.random()
        if draw < config.phrase_prob:
            pause = rng.uniform(*config.phrase_gap_range)
        elif draw < config.phrase_prob + config.silence_prob:
            pause = rng.uniform(*config.silence_range)
        else:
            pause = rng.uniform(*config.pause_range)
        cursor = end + int(pause * sr)

    speech_rms = augment.rms(wave[wave != 0]) if np.any(wave) else 0.1
    if config.background:
        if noises:
            picks = rng.integers(len(noises), size=min(16, max(4, len(noises))))
            pieces = [load(noises[int(i)]["path"]) for i in picks]
            background = np.resize(np.concatenate(pieces), total)  # the pieces repeated to cover the stream
        else:
            background = _colored_noise(total, rng)
        wave = augment.mix_at_snr(wave, background, float(rng.uniform(*config.snr_range_db)), speech_rms)
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    return (wave * min(1.0, 0.9 / peak) if peak > 0 else wave).astype(np.float32), keywords


def save_stream(path: str | os.PathLike, wave: np.ndarray, sample_rate: int = audio.SAMPLE_RATE) -> None:
    """Write a stream as 16-bit PCM, WAV or FLAC by the suffix, atomically (FLAC: about half the size)."""
    path = Path(path)
    kind = STREAM_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path}: stream files must end in one of {sorted(STREAM_FORMATS)}")
    write_atomically(path, lambda tmp: sf.write(tmp, np.clip(wave, -1.0, 1.0), sample_rate, subtype="PCM_16", format=kind))


def write_truth(path: str | os.PathLike, entries: Mapping[str, Sequence[Keyword | tuple]]) -> None:
    """Truth CSV (file,start,end,voice,text), written atomically; a file with no keyword gets an empty row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TRUTH_COLUMNS)
    for file, keywords in entries.items():
        if not keywords:
            writer.writerow([file, "", "", "", ""])
        for keyword in keywords:
            keyword = Keyword(*keyword)
            writer.writerow([file, f"{keyword.start:.3f}", f"{keyword.end:.3f}", keyword.voice, keyword.text])
    write_text_atomically(path, buffer.getvalue())


def write_said(path: str | os.PathLike, entries: Mapping[str, Sequence[Utterance]]) -> None:
    """Every utterance of every stream (file,start,end,kind,voice,text), written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SAID_COLUMNS)
    for file, utterances in entries.items():
        for u in utterances:
            writer.writerow([file, f"{u.start:.3f}", f"{u.end:.3f}", u.kind, u.voice, u.text])
    write_text_atomically(path, buffer.getvalue())


def read_said(path: str | os.PathLike) -> dict[str, list[Utterance]]:
    """file -> its utterances in time order, from ``write_said``'s CSV."""
    said: dict[str, list[Utterance]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            said.setdefault(row["file"], []).append(
                Utterance(float(row["start"]), float(row["end"]), row["kind"], row["voice"], row["text"]))
    return said


def read_truth(path: str | os.PathLike) -> dict[str, list[Keyword]]:
    """file (as written) -> its keywords, from a truth CSV. Only ``file,start,end`` are required."""
    truth: dict[str, list[Keyword]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", "start", "end"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: truth CSV lacks column(s) {sorted(missing)} (expected {','.join(TRUTH_COLUMNS)})")
        for line, row in enumerate(reader, start=2):
            keywords = truth.setdefault(row["file"], [])
            if not (row["start"] or "").strip() and not (row["end"] or "").strip():
                continue  # a file listed without keywords
            try:
                start, end = float(row["start"]), float(row["end"])
            except ValueError:
                raise ValueError(f"{path}:{line}: start/end must be seconds, got {row['start']!r}, {row['end']!r}") from None
            if not 0.0 <= start < end:
                raise ValueError(f"{path}:{line}: need 0 <= start < end, got {start}, {end}")
            keywords.append(Keyword(start, end, row.get("voice") or "", row.get("text") or ""))
    for keywords in truth.values():
        keywords.sort()
    return truth


def truth_paths(truth_csv: str | os.PathLike, files: Sequence[str]) -> dict[str, Path]:
    """Where each truth ``file`` lies: absolute as written, or relative to the CSV's folder."""
    folder = Path(truth_csv).resolve().parent
    return {file: Path(file) if Path(file).is_absolute() else folder / file for file in files}


def split_rows(rows: Sequence[Mapping], split: str) -> tuple[list[Mapping], list[Mapping]]:
    """(rows of ``split``, background noise rows for it).

    Noise files are split at random and the heldout split may hold none; its
    background then comes from the test and val noise files (never train's,
    which training mixed into its clips).
    """
    mine = [r for r in rows if r["split"] == split]
    noise = [r for r in mine if r["kind"] == "noise"]
    if not noise and split != "train":
        noise = [r for r in rows if r["kind"] == "noise" and r["split"] in ("test", "val")]
    return mine, noise
