"""release_memory hands freed heap back to the OS after a burst of work."""

from __future__ import annotations

import ctypes.util
import platform

import psutil
import pytest

from arcade_agent._memory import release_memory


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="malloc_trim is glibc's")
def test_release_memory_returns_freed_heap_to_the_os() -> None:
    assert ctypes.util.find_library("c")
    proc = psutil.Process()
    # Blocks below the mmap threshold live on the heap; freeing every other one leaves holes
    # that free() alone never returns (the top of the heap is still in use).
    burst = [bytearray(64 * 1024) for _ in range(800)]
    kept = burst[1::2]
    del burst
    freed_only = proc.memory_info().rss
    assert release_memory() is True
    trimmed = proc.memory_info().rss
    assert freed_only - trimmed > 10 * 2**20, (freed_only, trimmed)
    assert len(kept) == 400
