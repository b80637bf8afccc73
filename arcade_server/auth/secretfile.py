"""Write a secret to a file atomically, readable by its owner only.

Used for ``<home>/admin-token`` (the server) and ``~/.config/arcade/credentials`` (``arcade
login``). The text goes to a temporary file created with mode 0600 in the same directory,
is flushed to disk, and is renamed over the target: a reader sees the old file or the new
one, never a half-written or briefly world-readable one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["write_secret"]


def write_secret(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (mode 0600; the directory is made 0700 if new)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
