"""espeak-ng: every English voice that synthesizes here, times every variant that changes the voice.

Formant synthesis: fast and varied (800 voice ids), but far from natural
speech, which is why it is one engine among several.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from audioconv.corpus.engines.base import Item, SynthesisError, Synthesized, Voice, assemble, pick, wav_bytes_to_16k
from audioconv.corpus.texts import integer

log = logging.getLogger(__name__)
NAME = "espeak"
# Listing and probing voices: a few milliseconds each; the limit only catches a hung engine.
_PROBE_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Settings:
    utterances: dict
    language: str
    voices: tuple[str, ...] | None
    variants: tuple[str, ...] | None
    plain: bool
    speed: tuple[int, int]
    pitch: tuple[int, int]
    word_gap: tuple[int, int]


def unavailable() -> str | None:
    return None if shutil.which("espeak-ng") else "espeak-ng is not installed (apt-get install espeak-ng)"


def run(spec: str, text: str, args: Sequence[str] = (), timeout: float = _PROBE_TIMEOUT_SECONDS) -> bytes:
    """espeak-ng's wav bytes for ``text`` (fed on stdin, so text is never taken for an option)."""
    done = subprocess.run(
        ["espeak-ng", "-v", spec, *args, "--stdout"], input=text.encode(), capture_output=True, timeout=timeout
    )
    if done.returncode != 0 or len(done.stdout) <= 44:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise SynthesisError(f"espeak:{spec}: {text!r}: {reason[0] if reason else f'exit {done.returncode}, no audio'}")
    return done.stdout


def ipa(text: str, spec: str = "en-us") -> str:
    """espeak-ng's IPA transcription of ``text`` (tie bars as ``^``), used to drive Kokoro in English."""
    done = subprocess.run(
        ["espeak-ng", "-q", "--ipa", "--tie=^", "-v", spec], input=text.encode(), capture_output=True,
        timeout=_PROBE_TIMEOUT_SECONDS,
    )
    if done.returncode != 0:
        raise SynthesisError(f"espeak:{spec}: {text!r}: no phonemes ({done.stderr.decode(errors='replace').strip()})")
    return " ".join(done.stdout.decode().split())


def _parse_list(listing: str) -> list[tuple[str, str]]:
    """(language, file) per line of ``espeak-ng --voices=...``; file names may contain spaces."""
    pattern = re.compile(r"^\s*\d+\s+(\S+)\s+\S+\s+\S+\s+(.+?)\s*(\(.*\))?\s*$")
    rows = []
    for line in listing.splitlines()[1:]:
        match = pattern.match(line)
        if match:
            rows.append((match.group(1), match.group(2)))
    return rows


@lru_cache(maxsize=None)
def base_voices(language: str) -> tuple[tuple[str, str], ...]:
    """(name, -v spec) of every ``language`` voice that actually synthesizes here.

    The name is the language code ("en-us"), or the file name when that code
    is already taken by a higher-priority voice; mbrola voices ("mb/...") fail
    without mbrola installed and are skipped with a log line.
    """
    listing = subprocess.run(["espeak-ng", f"--voices={language}"], capture_output=True, text=True, check=True).stdout
    voices: list[tuple[str, str]] = []
    taken: set[str] = set()
    skipped: list[str] = []
    for code, file in _parse_list(listing):
        if code == "variant":
            continue
        name = code.lower() if code.lower() not in taken else Path(file).name.lower()
        try:
            run(file, "test")
        except (SynthesisError, subprocess.TimeoutExpired):
            skipped.append(file)
            continue
        taken.add(name)
        voices.append((name, file))
    if skipped:
        log.info("espeak: %d voices do not synthesize here, skipped: %s", len(skipped), " ".join(skipped))
    return tuple(voices)


@lru_cache(maxsize=None)
def variants(probe_spec: str) -> tuple[str, ...]:
    """Names of the variants that change the voice (espeak-ng silently ignores an unknown variant)."""
    listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    plain = run(probe_spec, "test")
    names, skipped = set(), []
    for _, file in _parse_list(listing):
        name = file.split("/", 1)[-1]
        try:
            if re.search(r"\s", name) or run(f"{probe_spec}+{name}", "test") == plain:
                skipped.append(name)
            else:
                names.add(name)
        except (SynthesisError, subprocess.TimeoutExpired):
            skipped.append(name)
    if skipped:
        log.info("espeak: %d variants skipped (no effect or unusable): %s", len(skipped), " ".join(skipped))
    return tuple(sorted(names))


def voices(settings: Settings) -> list[Voice]:
    """Every espeak voice id the settings allow: base voice x (variants, plus the plain voice)."""
    bases = base_voices(settings.language)
    if not bases:
        raise SynthesisError(f"no espeak-ng voice for language {settings.language!r} synthesizes on this machine")
    spec_of = dict(bases)
    names = pick([name for name, _ in bases], settings.voices, "espeak voices")
    chosen = pick(variants(bases[0][1]), settings.variants, "espeak variants")
    out = []
    for name in names:
        if settings.plain:
            out.append(Voice(f"espeak:{name}", NAME, spec_of[name]))
        out += [Voice(f"espeak:{name}+{v}", NAME, f"{spec_of[name]}+{v}") for v in chosen]
    return out


def params(settings: Settings, voice: Voice, rng: np.random.Generator) -> dict:
    return {
        "speed": integer(rng, settings.speed),
        "pitch": integer(rng, settings.pitch),
        "word_gap": integer(rng, settings.word_gap),
    }


def synthesize(items: Sequence[Item], settings: Settings, shared, workdir: Path) -> Iterator[Synthesized]:
    for item in items:
        p = item.params
        args = ["-s", str(p["speed"]), "-p", str(p["pitch"]), "-g", str(p["word_gap"])]

        def say(text: str) -> np.ndarray:
            try:
                return wav_bytes_to_16k(run(item.spec, text, args, shared.timeout_seconds))
            except subprocess.TimeoutExpired as error:
                raise SynthesisError(str(error)) from None

        yield assemble(item, say, shared.trim_db, shared.trim_pad_seconds)
