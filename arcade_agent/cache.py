"""The agent's wheel cache: verified wheels keyed by sha256, LRU-evicted under a size cap.

Layout under the cache root::

    <sha256>/<wheel filename>    a verified wheel (the filename is kept: installers parse it)
    .partial/<sha256>.part       a download in progress (never read as a cache entry)

Only :meth:`WheelCache.add` puts a file in place, by an atomic rename of a file whose hash
the downloader has checked, so an interrupted download can never look cached. The last use
of an entry is its file's mtime (touched on every hit), so the LRU order survives restarts.
Wheels that an installed plugin needs are *pinned* and never evicted: after an agent
restart the plugin's environment is already on disk, but a rollback or re-install must not
depend on the server being reachable.

All methods are synchronous, thread-safe and cheap except :meth:`add` and :meth:`evict`
(file renames and deletes); async callers run those in a thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidWheelRef

__all__ = ["CacheStats", "WheelCache"]

log = logging.getLogger(__name__)

PARTIAL_DIR = ".partial"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of the cache's counters and size."""

    entries: int
    bytes: int
    max_bytes: int
    pinned: int
    hits: int
    misses: int
    evictions: int
    evicted_bytes: int


@dataclass(slots=True)
class _Entry:
    path: Path
    size: int
    last_used: float


class WheelCache:
    """Verified wheel files keyed by sha256 under ``root``, at most ``max_bytes`` unpinned.

    ``max_bytes`` is a soft cap: pinned wheels count towards it but are never evicted, so a
    cache full of pinned wheels may exceed it (logged once per eviction pass).
    """

    def __init__(self, root: str | os.PathLike[str], max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._pinned: frozenset[str] = frozenset()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.evicted_bytes = 0
        (self.root / PARTIAL_DIR).mkdir(parents=True, exist_ok=True)
        self._scan()

    # ------------------------------------------------------------------ lookups

    def get(self, sha256: str) -> Path | None:
        """The cached wheel for ``sha256`` (counted as a hit, and marked used), or ``None``
        (counted as a miss)."""
        with self._lock:
            entry = self._entries.get(sha256)
            if entry is not None and not entry.path.is_file():
                # Removed behind our back (an operator cleaning the disk): forget it.
                del self._entries[sha256]
                entry = None
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
            entry.last_used = time.time()
            path = entry.path
        with contextlib.suppress(OSError):
            os.utime(path, (entry.last_used, entry.last_used))
        return path

    def __contains__(self, sha256: object) -> bool:
        with self._lock:
            return sha256 in self._entries

    def partial_path(self, sha256: str) -> Path:
        """Where a download of ``sha256`` in progress is written (and resumed from)."""
        _check_sha256(sha256)
        return self.root / PARTIAL_DIR / f"{sha256}.part"

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                entries=len(self._entries),
                bytes=sum(e.size for e in self._entries.values()),
                max_bytes=self.max_bytes,
                pinned=len(self._pinned & self._entries.keys()),
                hits=self.hits,
                misses=self.misses,
                evictions=self.evictions,
                evicted_bytes=self.evicted_bytes,
            )

    # ------------------------------------------------------------------ changes

    def add(self, sha256: str, filename: str, source: Path) -> Path:
        """Move the verified file ``source`` into the cache as ``sha256``; return its path.

        The caller has checked that ``source`` hashes to ``sha256``. ``source`` must be on
        the same file system (the downloader's partial file is). Evicts least recently used
        unpinned wheels afterwards if the cache is over its cap.
        """
        _check_sha256(sha256)
        if "/" in filename or "\\" in filename or filename in ("", ".", ".."):
            raise InvalidWheelRef(f"invalid wheel filename {filename!r}")
        directory = self.root / sha256
        directory.mkdir(exist_ok=True)
        target = directory / filename
        os.replace(source, target)
        size = target.stat().st_size
        now = time.time()
        with self._lock:
            old = self._entries.get(sha256)
            if old is not None and old.path != target:
                old.path.unlink(missing_ok=True)
            self._entries[sha256] = _Entry(target, size, now)
        self.evict()
        return target

    def remove(self, sha256: str) -> bool:
        """Delete the entry for ``sha256`` (even if pinned); True if there was one."""
        with self._lock:
            entry = self._entries.pop(sha256, None)
        if entry is None:
            return False
        shutil.rmtree(entry.path.parent, ignore_errors=True)
        return True

    def set_pinned(self, sha256s: Iterable[str]) -> None:
        """Replace the set of wheels that must not be evicted (those installed plugins need)."""
        with self._lock:
            self._pinned = frozenset(sha256s)

    @property
    def pinned(self) -> frozenset[str]:
        return self._pinned

    def evict(self) -> list[str]:
        """Delete least recently used unpinned wheels until the cache fits its cap.

        Returns the evicted sha256s, oldest first.
        """
        victims: list[_Entry] = []
        evicted: list[str] = []
        with self._lock:
            total = sum(e.size for e in self._entries.values())
            if total <= self.max_bytes:
                return []
            for sha, entry in sorted(self._entries.items(), key=lambda kv: kv[1].last_used):
                if total <= self.max_bytes:
                    break
                if sha in self._pinned:
                    continue
                del self._entries[sha]
                total -= entry.size
                victims.append(entry)
                evicted.append(sha)
                self.evictions += 1
                self.evicted_bytes += entry.size
            over = total > self.max_bytes
        for entry in victims:
            shutil.rmtree(entry.path.parent, ignore_errors=True)
        if over:
            log.warning(
                "wheel cache %s holds %d bytes, over its cap of %d, but the rest is pinned by "
                "installed plugins", self.root, total, self.max_bytes,
            )
        return evicted

    # ------------------------------------------------------------------ startup

    def _scan(self) -> None:
        """Index the entries on disk; drop empty or malformed entry directories."""
        for directory in self.root.iterdir():
            name = directory.name
            if name == PARTIAL_DIR or not directory.is_dir():
                continue
            if not _SHA256.match(name):
                continue  # not ours: leave it alone
            files = [p for p in directory.iterdir() if p.is_file() and p.suffix == ".whl"]
            if len(files) != 1:
                # A crash between mkdir and rename left an empty entry directory.
                shutil.rmtree(directory, ignore_errors=True)
                continue
            st = files[0].stat()
            self._entries[name] = _Entry(files[0], st.st_size, st.st_mtime)


def _check_sha256(sha256: str) -> None:
    if not _SHA256.match(sha256):
        raise InvalidWheelRef(f"invalid sha256 {sha256!r}: expected 64 lower-case hex digits")
