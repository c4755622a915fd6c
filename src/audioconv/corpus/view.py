"""A corpus **view**: the parts a run uses, joined into one manifest, with every voice given a split.

Splits are voice-disjoint and decided here, after synthesis, so moving a
voice or a whole engine between splits costs one small CSV, not a rebuild.
For each voice, in order:

1. an engine in ``heldout_engines`` -> ``heldout`` (the cross-engine check: an engine never heard);
2. a voice in ``heldout_voices`` -> ``heldout``; an engine in ``val_engines`` -> ``val``
   (validation on an engine left out of training); ``val_voices`` -> ``val``; ``test_voices`` -> ``test``;
3. an engine with at least ``min_voices`` voices: its other voices, ordered by a seeded hash of the
   voice id, give the first ``val_fraction`` (at least one) to ``val``, the next ``test_fraction`` to
   ``test``, the rest to ``train``;
4. an engine with fewer voices: ``train`` (one or two voices cannot fill three splits).

Noise files get ``val``/``test``/``train`` per file by the same kind of hash.

An engine's extra utterances (``<engine>+keyword``, ``<engine>+speech``, ``<engine>+confusable``) follow
its voices' splits. They are not joined for a held-out engine (``settings.extra_parts``)
nor kept for a held-out voice: the held-out split is the same with or without them.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from audioconv.corpus.manifest import read_raw, write_manifest
from audioconv.corpus.settings import extra_kind, from_plain, plain, view_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitSettings:
    heldout_engines: tuple[str, ...]
    heldout_voices: tuple[str, ...]
    val_engines: tuple[str, ...]
    val_voices: tuple[str, ...]
    test_voices: tuple[str, ...]
    val_fraction: float
    test_fraction: float
    min_voices: int


def hash_fraction(seed: int, name: str) -> float:
    """A stable number in [0, 1) from (seed, name): the same voice always lands in the same split."""
    digest = hashlib.sha1(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _by_fraction(seed: int, name: str, s: SplitSettings) -> str:
    u = hash_fraction(seed, name)
    return "val" if u < s.val_fraction else "test" if u < s.val_fraction + s.test_fraction else "train"


def _fraction_splits(voices: Sequence[str], settings: SplitSettings, seed: int) -> dict[str, str]:
    """val / test / train for the free voices of one engine, in seeded-hash order (at least one each)."""
    order = sorted(voices, key=lambda v: hash_fraction(seed, v))
    n_val = max(1, round(len(order) * settings.val_fraction)) if settings.val_fraction > 0 else 0
    n_test = max(1, round(len(order) * settings.test_fraction)) if settings.test_fraction > 0 else 0
    if len(order) - n_val - n_test < 1:
        raise ValueError(f"{len(order)} voices cannot fill train, val and test: raise the utterance counts")
    return {v: "val" if i < n_val else "test" if i < n_val + n_test else "train" for i, v in enumerate(order)}


def _fixed_split(engine: str, voice: str, settings: SplitSettings) -> str | None:
    if engine in settings.heldout_engines or voice in settings.heldout_voices:
        return "heldout"
    if engine in settings.val_engines or voice in settings.val_voices:
        return "val"
    return "test" if voice in settings.test_voices else None


def assign_splits(rows: Sequence[Mapping[str, Any]], settings: SplitSettings, seed: int) -> list[str]:
    """The split of each row (see the module docstring for the rules)."""
    listed = [*settings.heldout_voices, *settings.val_voices, *settings.test_voices]
    known = {r["voice"] for r in rows}
    absent = sorted(set(listed) - known)
    if absent:  # e.g. a held-out voice of an engine this view does not use
        log.warning("corpus.splits names voices this view does not have (ignored): %s", absent)
    if len(set(listed)) != len(listed):
        raise ValueError(f"a voice is listed for two splits: {sorted(v for v in listed if listed.count(v) > 1)}")
    split_of: dict[str, str] = {}
    free: dict[str, list[str]] = {}
    for engine, voice in sorted({(r["engine"], r["voice"]) for r in rows if r["engine"] != "noise"}):
        fixed = _fixed_split(engine, voice, settings)
        if fixed:
            split_of[voice] = fixed
        else:
            free.setdefault(engine, []).append(voice)
    for engine, voices in free.items():
        all_voices = {v for e, v in ((r["engine"], r["voice"]) for r in rows) if e == engine}
        if len(all_voices) >= settings.min_voices:
            split_of.update(_fraction_splits(voices, settings, seed))
        else:
            split_of.update({v: "train" for v in voices})
    return [_by_fraction(seed, r["path"], settings) if r["engine"] == "noise" else split_of[r["voice"]] for r in rows]


def view_dir(cfg: Mapping[str, Any], root: str | os.PathLike) -> Path:
    return Path(root) / f"view-{view_key(cfg)}"


def write_view(cfg: Mapping[str, Any], part_manifests: Mapping[str, Path], root: str | os.PathLike) -> Path:
    """Join the parts' manifests (paths made relative to the view folder) and assign splits."""
    values = plain(cfg)
    settings = from_plain(SplitSettings, values["splits"], "corpus.splits")
    unknown = sorted((set(settings.heldout_engines) | set(settings.val_engines)) - set(part_manifests))
    if unknown:
        log.warning("corpus.splits names engines this view does not use: %s", unknown)
    folder = view_dir(values, root)
    rows = []
    for part, manifest in part_manifests.items():
        extra = extra_kind(part) is not None
        for row in read_raw(manifest):
            if extra and row["voice"] in settings.heldout_voices:
                continue  # a held-out voice's split (what streams of it are composed from) stays as without it
            rows.append({**row, "path": os.path.relpath(manifest.parent / row["path"], folder)})
    for row, split in zip(rows, assign_splits(rows, settings, int(values["seed"]))):
        row["split"] = split
    return write_manifest(folder / "manifest.csv", rows)
