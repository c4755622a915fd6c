"""Speech engines, one module each behind one small interface (see ``base``)."""

from __future__ import annotations

from types import ModuleType

from audioconv.corpus.engines import espeak, festival, kokoro, pico, piper
from audioconv.corpus.engines.base import Item, SynthesisError, Synthesized, Voice

ENGINES: dict[str, ModuleType] = {m.NAME: m for m in (espeak, festival, pico, piper, kokoro)}

__all__ = ["ENGINES", "Item", "SynthesisError", "Synthesized", "Voice"]
