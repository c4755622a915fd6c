"""The synthetic corpus: spoken "welcome" and everything that is not it, from several speech engines.

Layout of the package, one job per module:

* ``settings`` — the ``data.corpus`` config, and the keys that cache parts and views;
* ``texts`` — what is said (keyword utterances, other speech, confusables);
* ``engines/`` — how it is said: espeak-ng, festival, SVOX Pico, Piper, Kokoro, one module each;
* ``noise`` — noise-only files; ``plan`` — every file decided up front from the seed;
* ``build`` — one part synthesized (an engine's own, its extra utterances, or noise), resumable and parallel; ``view`` — parts joined, splits assigned;
* ``manifest`` — the CSV everything else reads; ``users`` — a user's own recordings as rows.

``build_corpus(cfg, root)`` is the door: it builds every part the config uses
that is missing (each cached under ``root/<part>-<key>/``: an engine, its extra
utterances ``<engine>+keyword`` / ``<engine>+speech`` / ``<engine>+confusable``, the noise), writes the
view and returns its ``manifest.csv``. ``data``, ``streams`` and ``mining`` need
only that manifest (``read_manifest``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from audioconv.corpus.build import build_part, part_dir
from audioconv.corpus.engines import ENGINES, SynthesisError
from audioconv.corpus.manifest import KINDS, MANIFEST_COLUMNS, SPLITS, audio_digests, complete, read_manifest, summarize
from audioconv.corpus.settings import EXTRA_KINDS, CorpusConfig, extra_parts, plain, view_key
from audioconv.corpus.users import USER_ENGINE, USER_SUBFOLDERS, user_corpus_rows
from audioconv.corpus.view import view_dir, write_view

log = logging.getLogger(__name__)

__all__ = [
    "ENGINES", "KINDS", "MANIFEST_COLUMNS", "SPLITS", "CorpusConfig", "SynthesisError", "USER_ENGINE", "USER_SUBFOLDERS",
    "audio_digests", "build_corpus", "corpus_dir", "part_dir", "read_manifest", "summarize", "user_corpus_rows", "view_key",
]


def corpus_dir(cfg: Mapping[str, Any], root: str | os.PathLike) -> Path:
    """The folder of the view that ``cfg`` describes (its ``manifest.csv`` is what training reads)."""
    return view_dir(cfg, root)


def used_parts(cfg: Mapping[str, Any]) -> list[str]:
    """The engines the config uses, their extra parts (``extra_keyword``, ``extra_speech``, ``extra_confusable``), then the noise."""
    values = plain(cfg)
    sections = {name: values.get(name) or {} for name in EXTRA_KINDS.values()}
    for what, names in (("use", values["use"]), *sections.items()):
        unknown = sorted(set(names) - set(ENGINES))
        if unknown:
            raise ValueError(f"corpus.{what}: unknown engines {unknown}; known: {sorted(ENGINES)}")
    parts = extra_parts(values)  # checks the counts
    for name, extra in sections.items():
        unused = sorted(engine for engine, count in extra.items() if count > 0 and engine not in values["use"])
        if unused:
            log.info("corpus.%s: %s not in corpus.use, nothing extra from them", name, unused)
    return [*values["use"], *parts, "noise"]


def build_corpus(cfg: Mapping[str, Any], root: str | os.PathLike, workers: int | None = None) -> Path:
    """Build the parts ``cfg`` uses that are missing, write its view, return the view's manifest path.

    A part that exists is never rebuilt; ``workers`` changes only the speed.
    Workers are spawned processes, so a script calling this needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    values = plain(cfg)
    CorpusConfig.from_mapping(values)  # fail on a misspelt setting before any synthesis
    parts = used_parts(values)
    manifest = view_dir(values, root) / "manifest.csv"
    if complete(manifest):
        return manifest
    return write_view(values, {part: build_part(values, part, root, workers) for part in parts}, root)
