"""Give memory back to the operating system after bursts of work.

Long-running Arcade processes (the server, the agent) have bursts: a fleet-wide rollout,
installing plugins (reading wheels, hashing, unpacking, importing). CPython and glibc keep
what such a burst freed in their free lists, so a process would carry its peak forever. Two
helpers, glibc only (elsewhere, musl or macOS, they do what they can and say so):

* :func:`tune_malloc`, once at process start: a fixed mmap threshold, so glibc stops moving
  large blocks from ``mmap`` (returned on ``free``) onto its heaps (kept) after the first
  large block is freed;
* :func:`release_memory`, after a burst: collect garbage and ``malloc_trim``, as Dask
  workers do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from functools import cache
from typing import Any

__all__ = ["MMAP_THRESHOLD", "release_memory", "tune_malloc"]

log = logging.getLogger(__name__)

#: Blocks of this size and larger get their own mapping, given back to the OS when freed.
#: glibc's default starts here too but rises (up to 32 MiB) each time such a block is freed,
#: after which large short-lived buffers (gRPC calls and messages, SQLite statements) land on
#: the heaps and fragment them: ~20 MB held after a rollout to 1,000 agents
#: (``benchmarks/fleet.py``).
MMAP_THRESHOLD = 128 * 1024
_M_TRIM_THRESHOLD = -1   # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):  # not glibc
        return None
    return libc


def tune_malloc() -> bool:
    """Fix glibc's mmap and trim thresholds at :data:`MMAP_THRESHOLD`; ``True`` if applied.

    Call it once, early, in a process that serves for a long time (not in a library)."""
    libc = _libc()
    if libc is None:
        return False
    ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return bool(libc.mallopt(_M_TRIM_THRESHOLD, MMAP_THRESHOLD)) and ok


def release_memory() -> bool:
    """Collect garbage and return free heap memory to the OS; ``True`` if trimmed.

    Blocking (a full collection takes a few ms): call it in a thread from async code.
    """
    gc.collect()
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))
