"""Arcade built-in plugin ``arcade-notify-stdout``: events as JSON lines.

Every event the plugin hears of (a job finished, a plugin failed, ...) is written as one
line of compact JSON — ``{"data": {...}, "kind": "job.finished", "timestamp": ...}`` — to
standard output or standard error, optionally behind a prefix, and flushed at once so that
log shippers see it immediately. In process isolation the child's standard output is
reserved for the host protocol, so there the lines end up in the host's log.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from arcade_core import Event, hookimpl

__all__ = ["NotifyStdout"]
__version__ = "1.0.0"

STREAMS = ("stdout", "stderr")


class NotifyStdout:
    """Prints each ``notify`` event as one JSON line.

    Config (validated and defaulted by the host against ``arcade-plugin.json``):
    ``stream`` — ``"stdout"`` (default) or ``"stderr"``; ``prefix`` — text put before
    every line (default ``""``), e.g. ``"arcade-event: "`` to make the lines easy to grep.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        stream = config.get("stream", "stdout")
        if stream not in STREAMS:
            raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
        self.stream: str = stream
        self.prefix = str(config.get("prefix", ""))

    def _target(self) -> TextIO:
        # Looked up on every call, not kept from __init__: whoever redirects sys.stdout or
        # sys.stderr later (the process host, a test's capture) gets the lines.
        return sys.stdout if self.stream == "stdout" else sys.stderr

    @hookimpl
    def notify(self, event: Event | Mapping[str, Any]) -> None:
        """Write ``event`` as one flushed JSON line (non-JSON values as their ``str``).

        An event that arrives as a plain mapping (already serialised) is written as is.
        """
        payload = event.to_dict() if isinstance(event, Event) else dict(event)
        line = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        target = self._target()
        target.write(f"{self.prefix}{line}\n")
        target.flush()
