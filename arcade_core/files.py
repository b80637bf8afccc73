"""Writing a private file atomically: keys, certificates, tokens, credentials.

The server (its CA and keys, the first admin token), the agent (its key and certificate) and
the ``arcade login`` command all keep secrets in files. Each is written to a temporary file
created with its final mode in the same directory (never briefly readable by others; a
symbolic link planted at the temporary name is not followed), flushed to disk, then renamed
over the target: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: Path, data: bytes | str, *, mode: int = 0o600,
                  dir_mode: int = 0o700) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8), with ``mode``; missing parent
    directories are made with ``dir_mode`` (less the umask)."""
    content = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
