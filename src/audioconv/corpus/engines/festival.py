"""festival: kal_diphone, ked_diphone (diphone) and cmu_us_slt_arctic_hts (HTS), whole utterances.

Festival reports word start/end times from its Word relation, so it speaks
whole texts (natural coarticulation across the keyword) and the span comes
from those times. One festival process speaks a chunk of one voice (it is
slow to start); every parameter is set afresh per utterance, so chunking never
changes the audio.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from audioconv.corpus.engines.base import Item, SynthesisError, Synthesized, Voice, active_span, samples, to_16k
from audioconv.corpus.texts import uniform

NAME = "festival"
GROUP_BY_VOICE = True  # one process per chunk of one voice

_PRELUDE = """
(define (ac_report idx utt out)
  (utt.synth utt)
  (utt.save.wave utt out 'riff)
  (mapcar (lambda (w)
            (format t "@@W %s %s %f %f\\n" idx (item.name w) (item.feat w 'word_start) (item.feat w 'word_end)))
          (utt.relation.items utt 'Word))
  (format t "@@OK %s\\n" idx))
(define (ac_lr base factor)
  (list (list 'target_f0_mean (* factor (car (cdr (assoc 'target_f0_mean base)))))
        (list 'target_f0_std (* factor (car (cdr (assoc 'target_f0_std base)))))
        (list 'model_f0_mean (car (cdr (assoc 'model_f0_mean base))))
        (list 'model_f0_std (car (cdr (assoc 'model_f0_std base))))))
(define (ac_diphone idx utt out stretch factor)
  (Parameter.set 'Duration_Stretch stretch)
  (set! int_lr_params (ac_lr ac_base_lr factor))
  (ac_report idx utt out))
(define (ac_hts idx utt out rate)
  (set! hts_engine_params (append ac_base_hts (list (list "-r" rate))))
  (ac_report idx utt out))
"""


@dataclass(frozen=True)
class Settings:
    utterances: dict
    voices: tuple[str, ...]
    stretch: tuple[float, float]  # Duration_Stretch (HTS voices: speech rate 1/stretch)
    semitones: tuple[float, float]  # pitch of the diphone voices (int_lr_params)
    hts_semitones: tuple[float, float]  # HTS voices are shifted offline (formants move too): keep it small
    chunk: int  # utterances per festival process (speed only, not part of the key)


def unavailable() -> str | None:
    return None if shutil.which("festival") else "festival is not installed (apt-get install festival festvox-...)"


def is_hts(voice: str) -> bool:
    """HTS voices ignore Duration_Stretch and int_lr_params: speed goes through hts_engine, pitch offline."""
    return voice.endswith("_hts")


def voices(settings: Settings) -> list[Voice]:
    return [Voice(f"festival:{name}", NAME, name) for name in settings.voices]


def params(settings: Settings, voice: Voice, rng: np.random.Generator) -> dict:
    semitones = settings.hts_semitones if is_hts(voice.spec) else settings.semitones
    return {"stretch": uniform(rng, settings.stretch), "semitones": uniform(rng, semitones)}


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def script(voice: str, items: Sequence[Item], workdir: Path) -> str:
    """One festival batch script for a chunk of one voice: every parameter set afresh per utterance."""
    hts = is_hts(voice)
    lines = [_PRELUDE, f"(voice_{voice})"]
    lines.append("(set! ac_base_hts hts_engine_params)" if hts else "(set! ac_base_lr int_lr_params)")
    for item in items:
        out = _scheme_string(str(workdir / f"{item.index}.wav"))
        utt = f"(Utterance Text {_scheme_string(item.text)})"
        stretch = item.params["stretch"]
        if hts:
            lines.append(f'(ac_hts "{item.index}" {utt} {out} {1.0 / stretch:.6f})')
        else:
            factor = 2 ** (item.params["semitones"] / 12)
            lines.append(f'(ac_diphone "{item.index}" {utt} {out} {stretch:.6f} {factor:.6f})')
    return "\n".join(lines) + "\n"


def _parse(stdout: str) -> tuple[dict[str, list[tuple[str, float, float]]], set[str]]:
    words: dict[str, list[tuple[str, float, float]]] = {}
    done = set()
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == "@@W":
            words.setdefault(parts[1], []).append((parts[2].lower(), float(parts[3]), float(parts[4])))
        elif len(parts) == 2 and parts[0] == "@@OK":
            done.add(parts[1])
    return words, done


def synthesize(items: Sequence[Item], settings: Settings, shared, workdir: Path) -> list[Synthesized]:
    """A chunk of one festival voice in ONE festival process."""
    voice = items[0].spec
    workdir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="festival-", dir=workdir))
    try:
        batch = folder / "batch.scm"
        batch.write_text(script(voice, items, folder))
        done = subprocess.run(
            ["festival", "-b", str(batch)], capture_output=True, text=True, cwd=folder, timeout=shared.timeout_seconds
        )
        words, ok = _parse(done.stdout)
        return [_result(item, words, ok, folder, done.stderr, shared) for item in items]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _result(item: Item, words: dict, ok: set, folder: Path, stderr: str, shared) -> Synthesized:
    """Trimmed 16 kHz audio and keyword span (samples) of one festival utterance; loud failure otherwise."""
    path = folder / f"{item.index}.wav"
    key = str(item.index)
    if key not in ok or not path.exists():
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        raise SynthesisError(f"{item.voice}: {item.text!r}: festival produced no audio ({tail or 'no message'})")
    wave, sr = sf.read(str(path), dtype="float32")
    wave = to_16k(wave, int(sr))
    if is_hts(item.spec) and item.params["semitones"]:
        import librosa

        wave = librosa.effects.pitch_shift(wave, sr=16_000, n_steps=item.params["semitones"]).astype(np.float32)
    pad = samples(shared.trim_pad_seconds)
    try:
        a, b = active_span(wave, shared.trim_db, pad)
    except SynthesisError as error:
        raise SynthesisError(f"{item.voice}: {item.text!r}: {error}") from None
    spoken = words.get(key, [])
    if spoken:  # diphone voices keep recorded room noise in their pauses: cut to the words
        a = max(a, samples(spoken[0][1]) - pad)
        b = min(b, samples(spoken[-1][2]) + pad)
    span = None
    if item.kind == "keyword":
        hits = [(s, e) for name, s, e in spoken if name == shared.keyword.lower()]
        if len(hits) != 1:
            raise SynthesisError(f"{item.voice}: {item.text!r}: keyword found {len(hits)} times in festival's words")
        s, e = hits[0]
        span = (min(max(samples(s) - a, 0), b - a), min(max(samples(e) - a, 0), b - a))
        if span[1] <= span[0]:
            raise SynthesisError(f"{item.voice}: {item.text!r}: empty keyword span {hits[0]}")
    return wave[a:b], span
