"""Record your own voice for fine-tuning: prompts, takes, checks, and the folder ``data.user_folder`` reads.

Why: twenty recordings of the keyword and forty of other speech took a voice
the model never heard from 0.03-0.07 to 0.38-0.54 recall at <= 1 false alarm
an hour (README, "Your own voice"): no change to the training recipe has come
near. What stands between a user and that is making the recordings right:
the keyword said once per file, its span known, nothing clipped or cut off,
and the folder laid out as ``corpus.user_corpus_rows`` expects. A guided
session does that: it prompts each take, checks it, asks again when a take is
unusable, and writes

    FOLDER/positive/SPEAKER/NNN.wav    the keyword once, with some room sound around it
    FOLDER/positive/keywords.csv       each positive's keyword span (file,kw_start,kw_end)
    FOLDER/negative/SPEAKER/NNN.wav    other speech, confusable words among it
    FOLDER/background/SPEAKER/NNN.wav  the room without speech (negatives, and noise to mix into clips)
    FOLDER/takes.csv                   which prompt each file answers (what a resumed session reads)

The span is found by an energy endpointer (``speech_spans``), so the room
sound before and after the word stays in the file: under the frames loss it
teaches what the user's room sounds like without the keyword. Files are
written atomically, and a session can stop at any take and resume later: it
asks only for the prompts that have no file yet. No torch; the microphone is ``audioconv.mic``'s
(sounddevice), and anything else that returns samples can stand in for it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from audioconv import audio
from audioconv.files import write_text_atomically

KEYWORD = "welcome"
FRAME_SECONDS = 0.02  # energy frames of the endpointer
MERGE_GAP_SECONDS = 0.25  # silences shorter than this inside a word or phrase (a stop's closure) do not split it
SPAN_PAD_SECONDS = 0.06  # kept around the found span: soft onsets ("w") and releases sit below the energy threshold
EDGE_SECONDS = 0.1  # speech this near either end of a take was probably cut off
MIN_PEAK = 10 ** (-40 / 20)  # a take whose peak is below -40 dBFS heard no speech
MIN_ROOM_PEAK = 10 ** (-70 / 20)  # a quiet room may be that quiet; below -70 dBFS the input is muted
DIGITAL_SILENCE_DB = -100.0
MIN_SPEECH_DB = 12.0  # speech must stand this far above the take's own noise floor
CLIPPED = 0.99  # |sample| at or above this is clipping
MAX_CLIPPED_SHARE = 1e-3
KEYWORD_SECONDS = (0.2, 1.6)  # what one spoken keyword can last
KEYWORD_TAKE_SECONDS = 2.5
OTHER_TAKE_SECONDS = 4.0  # the shortest; longer sentences get longer takes (``sentence_seconds``)
BACKGROUND_SECONDS = 30.0
MIN_OTHER_SPEECH_SECONDS = 0.6  # an other-speech take must hold at least this much sound: a sentence, not a cough

# How to say the keyword: each take a little different, as a user says it on different days.
KEYWORD_STYLES = (
    "in your normal voice", "a little faster", "slowly", "a little louder", "quietly", "as a question",
    "cheerfully", "tiredly", "turned a little away from the microphone", "from an arm's length away",
)

# Other speech for "welcome": ordinary sentences, and words the model confuses with it (welding, Malcolm,
# well done...; conf/data/welcome.yaml's confusable words). Never "well" just before "come": that IS the keyword.
WELCOME_SENTENCES = (
    "Malcolm is welding the gate behind the house.",
    "Well done, that was the best outcome we could hope for.",
    "The welfare office closes at five today.",
    "She lives in Wellington with her brother.",
    "Hello, is anybody home?",
    "Come here and look at this map.",
    "I would like to become a member of the club.",
    "The shoes have velcro straps instead of laces.",
    "Oh well, we can try again tomorrow.",
    "My income went up a little this year.",
    "The welder wore a heavy leather apron.",
    "He seldom calls before noon.",
    "Wellness starts with a good night's sleep.",
    "They overcame every problem on the way.",
    "The telecom company sent another letter.",
    "Put the kettle on, I will be back in a minute.",
    "It was a long and quiet winter.",
    "Please turn the lights off when you leave.",
    "The train to the city was late again.",
    "I feel well enough to go for a walk.",
    "We walked along the river until it got dark.",
    "Could you pass me the salt, please?",
    "The meeting has been moved to Thursday.",
    "A welt rose on his arm where the branch hit him.",
    "The Welsh hills were covered in fog.",
    "Come with me, I will show you the garden.",
    "She bought bread, cheese and a bag of apples.",
    "What time does the film start tonight?",
    "The dog barked at the postman all morning.",
    "There is a small cafe at the end of the street.",
    "As well as the car, they sold the old boat.",
    "Turn left at the church and keep going.",
    "I have never seen so much snow in one day.",
    "The children are playing in the yard.",
    "He left his keys on the kitchen table.",
    "Let me know when you are ready to leave.",
    "The outcome of the vote will be known tonight.",
    "A welkin is an old word for the sky.",
    "This soup needs a little more pepper.",
    "We should plant the tomatoes next week.",
)


KINDS = {"keyword": "positive", "other": "negative", "background": "background"}  # take kind -> subfolder


@dataclass(frozen=True)
class Take:
    """One prompted recording: ``kind`` "keyword" (to positive/), "other" (speech, to negative/) or
    "background" (the room without speech, to background/); ``key`` names it in the session (``keyword-07``),
    so a resumed session knows which prompts are done."""

    kind: str
    key: str
    prompt: str
    seconds: float


@dataclass(frozen=True)
class Verdict:
    """A take checked: usable or not, why not (a line the user can act on), and the keyword's span in seconds."""

    ok: bool
    reason: str = ""
    span: tuple[float, float] | None = None


def letters(text: str) -> str:
    """Lower-case letters only: "Well, come!" -> "wellcome" (how a spoken sentence runs its words together)."""
    return "".join(c for c in text.lower() if c.isalpha())


def sentence_seconds(sentence: str) -> float:
    """A take long enough to read ``sentence`` unhurried: about 2.5 words a second, with a second to spare."""
    return max(OTHER_TAKE_SECONDS, round(1.5 + 0.4 * len(sentence.split()), 1))


def session_plan(keyword_takes: int, other_takes: int, keyword: str = KEYWORD,
                 sentences: Sequence[str] | None = None, background_takes: int = 0) -> list[Take]:
    """The takes of one session: the room first (before anyone speaks), then keywords and other speech
    interleaved as evenly as their counts allow, so a tired voice at the end is in both classes.

    ``sentences``: the other speech to read (default ``WELCOME_SENTENCES`` for "welcome"; another keyword
    needs its own, with its confusable words). A sentence that says the keyword, even split ("well, come"),
    is refused: it would be a keyword in negative/.
    """
    if min(keyword_takes, other_takes, background_takes) < 0:
        raise ValueError(f"take counts must be >= 0, got {keyword_takes}, {other_takes}, {background_takes}")
    if sentences is None:
        if keyword.strip().lower() != KEYWORD:
            raise ValueError(f"no built-in sentences for the keyword {keyword!r}: give your own (one per line)")
        sentences = WELCOME_SENTENCES
    sentences = [s.strip() for s in sentences if s.strip()]
    if other_takes and not sentences:
        raise ValueError("no sentences to read for the other-speech takes")
    spoken_keyword = letters(keyword)
    for sentence in sentences:
        if spoken_keyword in letters(sentence) or (spoken_keyword == "welcome" and "wellcome" in letters(sentence)):
            raise ValueError(f"the sentence {sentence!r} says the keyword: it cannot be other speech")
    keywords = [Take("keyword", f"keyword-{i + 1:02d}",
                     f'Say "{keyword}" once, {KEYWORD_STYLES[i % len(KEYWORD_STYLES)]}.', KEYWORD_TAKE_SECONDS)
                for i in range(keyword_takes)]
    others = [Take("other", f"other-{i + 1:02d}", f'Read aloud: "{sentences[i % len(sentences)]}"',
                   sentence_seconds(sentences[i % len(sentences)]))
              for i in range(other_takes)]
    rooms = [Take("background", f"background-{i + 1:02d}",
                  "Stay quiet: your room as it usually sounds (fan, traffic, TV if it is often on).", BACKGROUND_SECONDS)
             for i in range(background_takes)]
    total = keyword_takes + other_takes
    # Bresenham-style interleaving: after n takes, round(n * share) of them are keywords
    plan, k = list(rooms), 0
    for n in range(1, total + 1):
        if k < keyword_takes and round(n * keyword_takes / total) > k:
            plan.append(keywords[k])
            k += 1
        else:
            plan.append(others[n - 1 - k])
    return plan


def frame_levels_db(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level of each ``FRAME_SECONDS`` frame, in dB (floored at -120)."""
    size = max(1, round(FRAME_SECONDS * sample_rate))
    frames = wave[: wave.size // size * size].reshape(-1, size).astype(np.float64)
    return 10 * np.log10(np.maximum((frames**2).mean(axis=1), 1e-12))


def speech_spans(wave: np.ndarray, sample_rate: int) -> list[tuple[float, float]]:
    """Where the take holds sound well above its own noise floor: [(start, end)] in seconds, padded.

    The floor is the 10th percentile of the frame levels (a take is mostly the
    room; frames of digital silence left out); frames more than ``MIN_SPEECH_DB`` above it, or more than 40 % of the
    way (in dB) from floor to peak when that is higher, are sound. Runs of sound
    closer than ``MERGE_GAP_SECONDS`` join; each span is padded by
    ``SPAN_PAD_SECONDS`` within the take.
    """
    levels = frame_levels_db(wave, sample_rate)
    if levels.size == 0:
        return []
    live = levels[levels > DIGITAL_SILENCE_DB]  # exact zeros (a device still starting) are no room
    if live.size == 0:
        return []
    floor, peak = np.percentile(live, 10), levels.max()
    if peak - floor < MIN_SPEECH_DB:
        return []
    loud = levels > max(floor + MIN_SPEECH_DB, floor + 0.4 * (peak - floor))
    runs, start = [], None
    for i, on in enumerate([*loud, False]):
        if on and start is None:
            start = i
        elif not on and start is not None:
            runs.append([start, i])
            start = None
    merged = [runs[0]]
    gap = MERGE_GAP_SECONDS / FRAME_SECONDS
    for run in runs[1:]:
        if run[0] - merged[-1][1] < gap:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    duration = wave.size / sample_rate
    return [(max(0.0, a * FRAME_SECONDS - SPAN_PAD_SECONDS), min(duration, b * FRAME_SECONDS + SPAN_PAD_SECONDS))
            for a, b in merged]


def check_take(wave: np.ndarray, sample_rate: int, kind: str, keyword: str = KEYWORD) -> Verdict:
    """Is this take usable for training? The first problem found, worded as what to do about it."""
    wave = np.asarray(wave, dtype=np.float32)
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak < (MIN_ROOM_PEAK if kind == "background" else MIN_PEAK):
        return Verdict(False, "nothing heard: is the microphone on and not muted?")
    if np.mean(np.abs(wave) >= CLIPPED) > MAX_CLIPPED_SHARE:
        return Verdict(False, "too loud, the sound clipped: move back a little or turn the input gain down")
    if kind == "background":
        return Verdict(True)  # the room as it is: no speech expected, any level above silence will do
    spans = speech_spans(wave, sample_rate)
    if not spans:
        return Verdict(False, f"no speech stood out from the background (needs {MIN_SPEECH_DB:.0f} dB): speak up or find a quieter spot")
    duration = wave.size / sample_rate
    if spans[0][0] + SPAN_PAD_SECONDS < EDGE_SECONDS:
        return Verdict(False, "speech at the very start: wait a moment after pressing Enter")
    if spans[-1][1] - SPAN_PAD_SECONDS > duration - EDGE_SECONDS:
        return Verdict(False, "cut off at the end: start a little sooner or say it faster")
    spoken = [end - start - 2 * SPAN_PAD_SECONDS for start, end in spans]
    if kind != "keyword":
        if sum(spoken) < MIN_OTHER_SPEECH_SECONDS:
            return Verdict(False, f"only {sum(spoken):.2f} s of sound: read the whole sentence aloud")
        return Verdict(True)
    if len(spans) > 1:
        return Verdict(False, f'heard {len(spans)} separate sounds: say "{keyword}" once, and nothing else')
    low, high = KEYWORD_SECONDS
    if not low <= spoken[0] <= high:
        return Verdict(False, f'{spoken[0]:.2f} s of speech is not one "{keyword}" ({low}-{high} s): say it once')
    start, end = spans[0]
    return Verdict(True, span=(round(start, 3), round(end, 3)))


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: a spreadsheet's byte-order mark
        return list(csv.DictReader(handle))


def _write_csv(path: Path, rows: list[dict[str, str]], columns: Sequence[str]) -> None:
    """``rows`` under ``columns`` first (then any other columns the rows carry), atomically."""
    extra = [c for row in rows for c in row if c not in columns and c is not None]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=[*columns, *dict.fromkeys(extra)], lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows({k: v for k, v in row.items() if k is not None} for row in rows)
    write_text_atomically(path, text.getvalue())


def _put_row(path: Path, row: dict[str, str]) -> None:
    """``row`` into the table at ``path`` in place of any row for the same ``file`` (an orphan of a stopped
    save), the other rows and columns kept; its keys lead the columns."""
    rows = [old for old in _read_csv(path) if old.get("file") != row["file"]]
    _write_csv(path, [*rows, row], list(row))


class RecordingFolder:
    """A user's recordings folder as ``corpus.user_corpus_rows`` reads it, written one take at a time.

    Takes go to ``positive/``, ``negative/`` and ``background/`` under the
    speaker's subfolder as ``NNN.wav`` (16 kHz, 16-bit), numbered on from the
    highest number there, so files from other sessions are kept. Two tables,
    each rewritten whole and atomically: ``positive/keywords.csv`` (each
    keyword's span, what training reads) and ``takes.csv`` (which prompt each
    file answers, what a resumed session reads). Both are written *before* the
    audio: a session stopped in between leaves a row without a file, which
    both readers ignore and the next take at that number replaces, never a
    file without its span.
    """

    def __init__(self, root: str | Path, speaker: str = "me") -> None:
        if not speaker or Path(speaker).name != speaker or speaker.startswith("."):
            raise ValueError(f"speaker must be a plain folder name, got {speaker!r}")
        self.root, self.speaker = Path(root), speaker
        self.times_path = self.root / "positive" / "keywords.csv"
        self.takes_path = self.root / "takes.csv"

    def folder(self, kind: str) -> Path:
        """Where this speaker's takes of ``kind`` go."""
        return self.root / KINDS[kind] / self.speaker

    def _numbered(self, kind: str) -> list[Path]:
        folder = self.folder(kind)
        return [p for p in folder.glob("*.wav") if p.stem.isdigit()] if folder.is_dir() else []

    def count(self, kind: str) -> int:
        """Takes of this kind saved for this speaker (the ``NNN.wav`` files)."""
        return len(self._numbered(kind))

    def done(self) -> set[str]:
        """The keys of the takes this speaker has a file for (``takes.csv``)."""
        return {row["take"] for row in _read_csv(self.takes_path)
                if row.get("speaker") == self.speaker and row.get("file") and (self.root / row["file"]).is_file()}

    def save(self, wave: np.ndarray, take: Take, verdict: Verdict) -> Path:
        """Write one checked take (16 kHz): its rows first, then the audio; returns the audio file's path."""
        if not verdict.ok:
            raise ValueError(f"refusing to save an unusable take: {verdict.reason}")
        if take.kind == "keyword" and verdict.span is None:
            raise ValueError("a keyword take needs its span")
        path = self.folder(take.kind) / f"{max((int(p.stem) for p in self._numbered(take.kind)), default=0) + 1:03d}.wav"
        if take.kind == "keyword":
            _put_row(self.times_path, {"file": path.relative_to(self.root / "positive").as_posix(),
                                       "kw_start": f"{verdict.span[0]:.3f}", "kw_end": f"{verdict.span[1]:.3f}"})
        _put_row(self.takes_path, {"speaker": self.speaker, "take": take.key, "kind": take.kind,
                                   "prompt": take.prompt, "file": path.relative_to(self.root).as_posix()})
        audio.save(path, wave)
        return path


Recorder = Callable[[float], tuple[np.ndarray, int]]  # seconds -> (mono float samples, their rate)
ANSWERS = {"": "record", "s": "skip", "skip": "skip", "q": "quit", "quit": "quit"}


def record_session(folder: RecordingFolder, takes: Sequence[Take], record: Recorder, ask: Callable[[str], str],
                   say: Callable[[str], None], keyword: str = KEYWORD, max_tries: int = 5) -> dict[str, int]:
    """Prompt, record and check each take; save the good ones. Returns how many of each kind were saved.

    ``ask`` shows a prompt and returns the user's answer: Enter records, ``s``
    skips the take, ``q`` ends the session (what is saved stays); anything
    else asks again. A take that fails its check is explained (``say``) and
    asked for again, at most ``max_tries`` times, then skipped. Takes the
    folder already has (by key, ``takes.csv``) are not asked for: a resumed
    session asks only for the rest, skipped ones included.
    """
    saved = dict.fromkeys(KINDS, 0)
    done = folder.done()
    todo = [take for take in takes if take.key not in done]
    if len(todo) < len(takes):
        say(f"{len(takes) - len(todo)} takes already in {folder.root}: {len(todo)} to go")
    for number, take in enumerate(todo, 1):
        tries = 0
        while tries < max_tries:
            answer = ask(f"[{number}/{len(todo)}] {take.prompt}  Enter: record {take.seconds:.1f} s, s: skip, q: quit ")
            action = ANSWERS.get(answer.strip().lower())
            if action is None:
                say("  press Enter to record, s to skip this take, q to stop (what is saved stays)")
                continue
            if action == "quit":
                return saved
            if action == "skip":
                break
            tries += 1
            wave, rate = record(take.seconds)
            wave = audio.resample(np.asarray(wave, dtype=np.float32), rate)
            verdict = check_take(wave, audio.SAMPLE_RATE, take.kind, keyword)
            if verdict.ok:
                path = folder.save(wave, take, verdict)
                saved[take.kind] += 1
                say(f"  saved {path}")
                break
            say(f"  again: {verdict.reason}")
        else:
            say(f"  skipped after {max_tries} tries")
    return saved
