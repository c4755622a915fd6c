"""``manifest.csv``: one row per file, the only thing training, streams and mining read.

Columns: ``path`` (relative to the manifest's folder), ``label`` (1 = holds
the keyword once), ``kind`` (keyword | speech | confusable | noise), ``text``,
``kw_start``/``kw_end`` (seconds, positives only), ``engine``, ``voice``,
``split`` (empty in a part's manifest, assigned by the view), ``duration``
(seconds) and ``params`` (the engine's synthesis settings for that file, JSON).
A manifest is written in one rename, so it only ever describes a whole corpus.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from audioconv.files import write_text_atomically

MANIFEST_COLUMNS = ("path", "label", "kind", "text", "kw_start", "kw_end", "engine", "voice", "split", "duration",
                    "params")
KINDS = ("keyword", "speech", "confusable", "noise")
SPLITS = ("train", "val", "test", "heldout")


def write_manifest(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Rows (manifest columns, as strings or values) to ``path``, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: row.get(k, "") for k in MANIFEST_COLUMNS} for row in rows)
    write_text_atomically(path, buffer.getvalue())
    return path


def read_raw(path: Path) -> list[dict[str, str]]:
    """Rows as written (strings, paths relative to the manifest's folder)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames}, expected {list(MANIFEST_COLUMNS)}")
        return list(reader)


def _typed(row: Mapping[str, str], base: Path) -> dict[str, Any]:
    """Manifest strings to Python values: path absolute, label int, times float (None when empty)."""
    out: dict[str, Any] = dict(row)
    out["path"] = os.path.normpath(base / row["path"])
    out["label"] = int(row["label"])
    for key in ("kw_start", "kw_end"):
        out[key] = float(row[key]) if row[key] not in ("", None) else None
    out["duration"] = float(row["duration"])
    return out


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Rows of a manifest.csv with typed fields; ``path`` is made absolute (relative to the manifest's folder)."""
    path = Path(path)
    base = path.parent.resolve()
    return [_typed(row, base) for row in read_raw(path)]


def complete(manifest: Path) -> bool:
    """A manifest whose every file is present: nothing to build."""
    if not manifest.exists():
        return False
    base = manifest.parent
    return all((base / row["path"]).exists() for row in read_raw(manifest))


def audio_digests(rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Per engine, a digest of the audio its rows name (file names and bytes, in name order; 12 hex digits).

    Why: the corpus is synthesized on each machine, and a speech engine of
    another build can say the same text differently. The same config and seed
    gave different cross-engine figures on two fresh machines; equal digests
    rule the corpus out, unequal ones name the engine whose audio differs.
    """
    paths: dict[str, list[Path]] = {}
    for row in rows:
        paths.setdefault(str(row["engine"]), []).append(Path(row["path"]))
    digests = {}
    for engine, files in sorted(paths.items()):
        digest = hashlib.sha1()
        for path in sorted(files, key=lambda p: p.name):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        digests[engine] = digest.hexdigest()[:12]
    return digests


def summarize(rows: Sequence[Mapping[str, Any]]) -> str:
    """A small table of counts per split x label and per split x engine, for people."""
    rows = list(rows)
    lines = [f"{len(rows)} files, {sum(float(r['duration']) for r in rows) / 3600:.2f} h"]
    splits = [s for s in SPLITS if any(r["split"] == s for r in rows)]
    engines = sorted({r["engine"] for r in rows})
    header = ["split", "keyword", "other", *engines, "voices"]
    lines.append("".join(f"{h:>10}" for h in header))
    for split in splits:
        mine = [r for r in rows if r["split"] == split]
        counts = [sum(int(r["label"]) == 1 for r in mine), sum(int(r["label"]) == 0 for r in mine)]
        counts += [sum(r["engine"] == e for r in mine) for e in engines]
        voices = len({r["voice"] for r in mine if r["engine"] != "noise"})
        lines.append("".join(f"{v:>10}" for v in [split, *counts, voices]))
    return "\n".join(lines)
