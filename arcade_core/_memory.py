"""Give memory back to the operating system after bursts of work.

Installing plugins (reading wheels, hashing, unpacking, importing) briefly needs a few MB that
CPython and glibc then keep in their free lists: a long-running agent would carry that peak
forever. After such a burst the agent collects garbage and asks glibc to return free heap
pages (``malloc_trim``), as Dask workers do. Elsewhere (musl, macOS) only the collection runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable
from functools import cache

__all__ = ["release_memory"]

log = logging.getLogger(__name__)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_memory() -> bool:
    """Collect garbage and return free heap memory to the OS; ``True`` if trimmed.

    Blocking (a full collection takes a few ms): call it in a thread from async code.
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    return bool(trim(0))
