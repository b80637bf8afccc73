"""Waiting for events in tests: poll a condition until it holds, with a generous deadline.

Tests wait for what they expect to happen, never for a length of time: a sleep that is
long enough on an idle laptop is too short on a loaded CI machine, and one that is long
enough everywhere wastes time everywhere. :func:`until` (async) and :func:`until_sync`
return as soon as the condition holds, so a generous deadline costs nothing when things
work; when they don't, the test fails with what it was waiting for instead of hanging.

``DEADLINE`` is the default for every wait in the suite (60 s): use it for anything that
involves a real process, server, network round trip or thread hop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["DEADLINE", "until", "until_sync"]

T = TypeVar("T")

#: Seconds a test waits for an event before failing.
DEADLINE = 60.0

_INTERVAL = 0.02


def _timed_out(what: str, timeout: float, last: object) -> AssertionError:
    return AssertionError(f"timed out after {timeout:g}s waiting for {what} (last value: "
                          f"{last!r})")


async def until(predicate: Callable[[], T], *, timeout: float = DEADLINE,
                what: str = "the condition", blocking: bool = False,
                interval: float = _INTERVAL) -> T:
    """Poll ``predicate`` until it returns something truthy and return that.

    ``blocking=True`` runs the predicate in a thread (an HTTP call, a database query) so the
    event loop (and whatever runs on it: an agent, a server) goes on meanwhile. Raises
    :class:`AssertionError` naming ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(predicate) if blocking else predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, value)
        await asyncio.sleep(interval)


def until_sync(predicate: Callable[[], T], *, timeout: float = DEADLINE,
               what: str = "the condition", interval: float = _INTERVAL) -> T:
    """:func:`until` for synchronous tests: poll ``predicate`` in this thread."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, value)
        time.sleep(interval)
