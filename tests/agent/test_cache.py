"""WheelCache on real files: LRU eviction under the cap, pinning, counters, restart."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from arcade_agent.cache import WheelCache


def _put(cache: WheelCache, name: str, size: int) -> str:
    data = name.encode() * (size // len(name))
    sha = hashlib.sha256(data).hexdigest()
    part = cache.partial_path(sha)
    part.write_bytes(data)
    cache.add(sha, f"{name}-1.0-py3-none-any.whl", part)
    return sha


def _age(cache: WheelCache, sha: str, seconds_ago: float) -> None:
    """Make an entry look used ``seconds_ago`` (mtime is the LRU clock)."""
    path = cache.get(sha)
    assert path is not None
    when = time.time() - seconds_ago
    os.utime(path, (when, when))
    cache._entries[sha].last_used = when


def test_add_moves_the_file_into_place_and_get_hits(tmp_path: Path) -> None:
    cache = WheelCache(tmp_path, max_bytes=10_000)
    sha = _put(cache, "alpha", 100)
    path = cache.get(sha)
    assert path is not None and path.name == "alpha-1.0-py3-none-any.whl"
    assert path.parent.name == sha
    assert not cache.partial_path(sha).exists()
    assert cache.get("0" * 64) is None
    stats = cache.stats()
    assert (stats.entries, stats.hits, stats.misses) == (1, 1, 1)


def test_least_recently_used_is_evicted_first(tmp_path: Path) -> None:
    cache = WheelCache(tmp_path, max_bytes=250)
    a = _put(cache, "aaaa", 100)
    b = _put(cache, "bbbb", 100)
    _age(cache, a, 30)
    _age(cache, b, 60)          # b is now the least recently used
    c = _put(cache, "cccc", 100)
    assert b not in cache and a in cache and c in cache
    assert not (tmp_path / b).exists()
    stats = cache.stats()
    assert (stats.evictions, stats.evicted_bytes, stats.bytes) == (1, 100, 200)


def test_pinned_wheels_are_never_evicted(tmp_path: Path) -> None:
    cache = WheelCache(tmp_path, max_bytes=150)
    a = _put(cache, "aaaa", 100)
    _age(cache, a, 100)
    cache.set_pinned({a})
    b = _put(cache, "bbbb", 100)  # over the cap: b is the only unpinned one
    assert a in cache and b not in cache
    cache.set_pinned({a})
    c = _put(cache, "cccc", 40)
    assert c in cache and cache.stats().bytes == 140


def test_cache_over_cap_with_only_pinned_wheels_keeps_them(tmp_path: Path) -> None:
    cache = WheelCache(tmp_path, max_bytes=50)
    cache.set_pinned({hashlib.sha256(b"pppp" * 25).hexdigest()})
    p = _put(cache, "pppp", 100)
    assert p in cache and cache.stats().evictions == 0


def test_restart_rebuilds_index_and_lru_order_from_disk(tmp_path: Path) -> None:
    cache = WheelCache(tmp_path, max_bytes=1000)
    a = _put(cache, "aaaa", 100)
    b = _put(cache, "bbbb", 100)
    _age(cache, b, 100)
    (tmp_path / ("f" * 64)).mkdir()            # a crash between mkdir and rename
    (tmp_path / "notes").mkdir()               # not ours: left alone
    cache.partial_path("e" * 64).write_bytes(b"half")  # a partial is never an entry
    again = WheelCache(tmp_path, max_bytes=150)
    assert again.stats().entries == 2          # scanning indexes; evicting waits for evict()
    assert a in again and b in again
    assert not (tmp_path / ("f" * 64)).exists()
    assert (tmp_path / "notes").exists()
    assert "e" * 64 not in again
    again.evict()
    assert a in again and b not in again       # b was older


def test_invalid_keys_are_refused(tmp_path: Path) -> None:
    cache = WheelCache(tmp_path, max_bytes=10)
    with pytest.raises(ValueError, match="invalid sha256"):
        cache.partial_path("../../etc")
    with pytest.raises(ValueError, match="invalid wheel filename"):
        cache.add("a" * 64, "../x.whl", tmp_path / "x")
