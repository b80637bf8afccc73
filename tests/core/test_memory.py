"""release_memory hands freed heap back to the OS after a burst of work."""

from __future__ import annotations

import ctypes.util
import platform

import psutil
import pytest

from arcade_core.memory import release_memory


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


_BURST = """
import sys, psutil
from arcade_core.memory import tune_malloc
if sys.argv[1] == "tuned":
    assert tune_malloc() is True
big = bytearray(8 * 2**20)   # freed at once: glibc's own threshold rises past 256 KiB
del big
proc = psutil.Process()
burst = [bytearray(256 * 1024) for _ in range(200)]
kept = burst[1::2]
del burst
before = proc.memory_info().rss
print(before)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_tune_malloc_keeps_large_blocks_off_the_heap_so_free_returns_them() -> None:
    import subprocess
    import sys

    def rss_after_burst(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _BURST, mode], capture_output=True,
                             text=True, check=True, timeout=60).stdout
        return int(out.split()[-1])

    # 100 of the 200 blocks (25 MiB) were freed. Tuned, each was its own mapping and went
    # back to the OS on free(); untuned, they sit in holes on the heap.
    assert rss_after_burst("default") - rss_after_burst("tuned") > 15 * 2**20
