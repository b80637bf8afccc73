"""The shared read path for small wheels: one disk read for many concurrent downloads."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import threading
from pathlib import Path

import pytest

from arcade_server.blobcache import BlobCache
from arcade_server.storage import BlobNotFound, LocalBlobStore
from tests.waiting import DEADLINE, until


class CountingStore(LocalBlobStore):
    """A real local store that counts opens and can hold a read until told to go on."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opens = 0
        self.gate = threading.Event()
        self.gate.set()

    def open(self, sha256: str):  # type: ignore[no-untyped-def]
        self.opens += 1
        self.gate.wait(DEADLINE)
        return super().open(sha256)


def _put(store: LocalBlobStore, data: bytes) -> str:
    sha, _size = store.put(io.BytesIO(data))
    return sha


async def test_concurrent_downloads_of_one_wheel_read_it_once(tmp_path: Path) -> None:
    store = CountingStore(tmp_path)
    data = os.urandom(5000)
    sha = _put(store, data)
    cache = BlobCache(store)
    store.gate.clear()                        # the first read is slow: everyone piles up
    readers = [asyncio.create_task(cache.get(sha)) for _ in range(200)]
    await until(lambda: store.opens == 1, what="the first read to start")
    store.gate.set()
    assert all(blob == data for blob in await asyncio.gather(*readers))
    assert await cache.get(sha) == data
    assert store.opens == 1 and cache.reads == 1 and cache.hits == 200
    assert hashlib.sha256(data).hexdigest() == sha


async def test_large_wheels_are_not_cached_and_missing_ones_raise(tmp_path: Path) -> None:
    store = CountingStore(tmp_path)
    big = _put(store, os.urandom(3000))
    cache = BlobCache(store, max_blob=2048)
    assert await cache.get(big) is None       # stream it from the store instead
    assert await cache.get(big) is None
    with pytest.raises(BlobNotFound):
        await cache.get("0" * 64)
    assert store.opens == 0                   # sizes only: nothing was read into memory


async def test_least_recently_used_wheels_leave_first(tmp_path: Path) -> None:
    store = CountingStore(tmp_path)
    shas = [_put(store, bytes([i]) * 1000) for i in range(4)]
    cache = BlobCache(store, max_blob=1000, max_total=3000)
    for sha in shas[:3]:
        await cache.get(sha)
    await cache.get(shas[0])                  # used again: now the most recent
    await cache.get(shas[3])                  # over 3000 bytes: shas[1] goes
    opens = store.opens
    assert await cache.get(shas[0]) == bytes([0]) * 1000
    assert store.opens == opens
    assert await cache.get(shas[1]) == bytes([1]) * 1000
    assert store.opens == opens + 1
    cache.discard(shas[1])
    await cache.get(shas[1])
    assert store.opens == opens + 2
