"""Atomic file writes: a reader (or a crashed run) never leaves half a file under the final name.

Every file the project writes for others to read (wavs and streams, truth and
manifest CSVs, indexes, checkpoints, exports, figures, caches) goes through
``write_atomically``: the content is written to a private temporary file
beside the target, given an ordinary file's permissions (``0o666`` less the
umask), then renamed onto the target in one step. On any error the temporary
file is removed and the target is left as it was. No torch, no matplotlib.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def write_atomically(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it to ``path``; returns ``path``.

    ``write`` gets the temporary file's name and must write the whole content
    to it (any format: ``sf.write``, ``figure.savefig``, ``Path.write_bytes``...).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """``text`` as UTF-8, line endings as given, atomically (``write_atomically``)."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)

    return write_atomically(path, write)
