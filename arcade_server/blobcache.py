"""The shared read path for small wheels: one read from disk, however many agents download.

A fleet-wide rollout makes every agent ask for the same few wheels at the same moment. Read
from the store per request, each download costs a thread hop for the size, another per chunk,
and a file open; a thousand agents cost a thousand of each for the same bytes. Blobs are
content-addressed (a name never changes its content), so the small ones can be kept in
memory: :meth:`BlobCache.get` returns the whole blob, reading it once (requests that arrive
while it is being read wait for that one read), and keeps the most recently used ones up to
``max_total`` bytes. Larger blobs are not cached (``None``: stream them from the store).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from .storage import BlobStore

__all__ = ["BlobCache"]

#: Wheels up to this size are served from memory (most plugin wheels are a few KiB).
MAX_BLOB = 1024 * 1024
#: Memory held by cached wheels at most.
MAX_TOTAL = 16 * 1024 * 1024


class BlobCache:
    """Small blobs of ``store`` in memory, least recently used evicted first (one event loop)."""

    def __init__(self, store: BlobStore, *, max_blob: int = MAX_BLOB,
                 max_total: int = MAX_TOTAL) -> None:
        self.store = store
        self.max_blob = max_blob
        self.max_total = max_total
        self._blobs: OrderedDict[str, bytes] = OrderedDict()
        self._total = 0
        self._reading: dict[str, asyncio.Future[bytes | None]] = {}
        #: Counters: served from memory, read from the store.
        self.hits = 0
        self.reads = 0

    def _read(self, sha256: str) -> bytes | None:
        if self.store.size(sha256) > self.max_blob:
            return None
        with self.store.open(sha256) as handle:
            data = handle.read(self.max_blob + 1)
        # Content-addressed, so it cannot have changed; a blob past the limit means a store
        # that misreports sizes: stream it instead of trusting this read.
        return data if len(data) <= self.max_blob else None

    def _done(self, sha256: str, future: asyncio.Future[bytes | None]) -> None:
        # Runs as the read completes, before any waiter resumes: a request arriving in
        # between finds the blob cached instead of starting a second read.
        self._reading.pop(sha256, None)
        if future.cancelled() or future.exception() is not None:
            return
        data = future.result()
        if data is not None and sha256 not in self._blobs and len(data) <= self.max_total:
            self._blobs[sha256] = data
            self._total += len(data)
            while self._total > self.max_total:
                _sha, evicted = self._blobs.popitem(last=False)
                self._total -= len(evicted)

    async def get(self, sha256: str) -> bytes | None:
        """The whole blob when it is at most ``max_blob`` bytes, else ``None``. Raises
        :class:`~arcade_server.storage.BlobNotFound` when the store has no such blob."""
        data = self._blobs.get(sha256)
        if data is not None:
            self._blobs.move_to_end(sha256)
            self.hits += 1
            return data
        reading = self._reading.get(sha256)
        if reading is None:
            reading = asyncio.ensure_future(asyncio.to_thread(self._read, sha256))
            self._reading[sha256] = reading
            reading.add_done_callback(lambda future: self._done(sha256, future))
            self.reads += 1
        else:
            self.hits += 1
        # Shielded: one waiter going away must not cancel the read the others wait for.
        return await asyncio.shield(reading)

    def discard(self, sha256: str) -> None:
        """Forget a blob (it was deleted from the store)."""
        data = self._blobs.pop(sha256, None)
        if data is not None:
            self._total -= len(data)

