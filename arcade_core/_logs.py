"""The last lines each plugin logged, kept in memory per plugin key: :class:`PluginLogs`.

Why: a plugin that fails says why in its own output, and the operator should not need a
shell on the agent's machine to read it. The host feeds one bounded ring per key
(:class:`LogRing`, 500 lines of at most 1,000 characters by default) from:

* a process plugin's child: every line of its stderr (level ``stderr``);
* an in-process plugin: the records of its own loggers (the top-level package of its entry
  point and everything below it), through a :class:`logging.Handler` attached to that logger
  while the plugin is loaded — so only what the logging configuration lets through;
* the host itself: a failed hook call, a crash, a restart, a load that failed (level
  ``ERROR``/``WARNING``), so the reason sits beside the plugin's own words.

Each line gets a sequence number (from 1, increasing per key for the host's life, across
reloads), so a reader can follow with "after N". A ring outlives its plugin's unload (the
last words of a plugin that failed to start are what matters most); at most ``max_keys``
rings are kept, the least recently written one dropped first. Thread-safe: lines come from
stderr pump threads, worker threads and the caller's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from ._exceptions import PluginNotFound

__all__ = ["LogLine", "LogRing", "PluginLogs"]

#: Lines kept per plugin, characters kept per line, plugins with a ring.
DEFAULT_LINES = 500
DEFAULT_LINE_CHARS = 1000
DEFAULT_KEYS = 256


@dataclass(frozen=True, slots=True)
class LogLine:
    """One kept line: ``seq`` (per key, from 1), ``time`` (epoch seconds), ``level``
    (``stderr`` or a logging level name) and ``text`` (cut to the ring's line length)."""

    seq: int
    time: float
    level: str
    text: str

    def to_dict(self) -> dict[str, object]:
        """The line as plain JSON-ready data."""
        return {"seq": self.seq, "time": self.time, "level": self.level, "text": self.text}


class LogRing:
    """The last ``capacity`` lines of one plugin, each cut to ``line_chars`` characters."""

    def __init__(self, capacity: int = DEFAULT_LINES, line_chars: int = DEFAULT_LINE_CHARS
                 ) -> None:
        self.line_chars = line_chars
        self._lines: deque[LogLine] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.last_seq = 0

    def add(self, level: str, text: str, at: float | None = None) -> None:
        """Keep ``text`` (one entry per line of it; blank lines are dropped)."""
        when = time.time() if at is None else at
        with self._lock:
            for line in text.splitlines() or [""]:
                if not line.strip():
                    continue
                if len(line) > self.line_chars:
                    line = line[:self.line_chars - 1] + "…"
                self.last_seq += 1
                self._lines.append(LogLine(self.last_seq, when, level, line))

    def read(self, after: int = 0, limit: int = DEFAULT_LINES) -> list[LogLine]:
        """The newest ``limit`` kept lines with ``seq > after``, oldest first."""
        with self._lock:
            lines = [line for line in self._lines if line.seq > after]
        return lines[-limit:] if limit > 0 else []


class _RingHandler(logging.Handler):
    """Copies the records of one plugin's loggers into its ring."""

    def __init__(self, ring: LogRing) -> None:
        super().__init__(logging.NOTSET)
        self.ring = ring

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                text = f"{text}\n{type(exc).__name__}: {exc}"
            self.ring.add(record.levelname, text, record.created)
        except Exception:  # a bad format string in a plugin must not break its caller
            self.handleError(record)


class PluginLogs:
    """The rings of one host's plugins, by key (see the module docstring)."""

    def __init__(self, *, lines: int = DEFAULT_LINES, line_chars: int = DEFAULT_LINE_CHARS,
                 max_keys: int = DEFAULT_KEYS) -> None:
        self.lines = lines
        self.line_chars = line_chars
        self.max_keys = max_keys
        self._rings: OrderedDict[str, LogRing] = OrderedDict()
        self._handlers: dict[str, tuple[logging.Logger, _RingHandler]] = {}
        self._lock = threading.Lock()

    def ring(self, key: str) -> LogRing:
        """The ring of ``key``, made on first use (dropping the least recently used one past
        ``max_keys``)."""
        with self._lock:
            ring = self._rings.get(key)
            if ring is None:
                ring = self._rings[key] = LogRing(self.lines, self.line_chars)
                while len(self._rings) > self.max_keys:
                    self._rings.popitem(last=False)
            else:
                self._rings.move_to_end(key)
            return ring

    def add(self, key: str, level: str, text: str) -> None:
        """Keep ``text`` as logged by ``key`` at ``level``."""
        self.ring(key).add(level, text)

    def read(self, key: str, after: int = 0, limit: int = DEFAULT_LINES
             ) -> tuple[list[LogLine], int]:
        """``(lines, last_seq)`` of ``key`` (see :meth:`LogRing.read`); raises
        :class:`~arcade_core.PluginNotFound` when nothing was ever kept for it."""
        with self._lock:
            ring = self._rings.get(key)
        if ring is None:
            raise PluginNotFound(f"no logs are kept for {key!r}: it has not been loaded here")
        return ring.read(after, limit), ring.last_seq

    def capture(self, key: str, logger_name: str) -> None:
        """Copy the records of logger ``logger_name`` (and its children) into ``key``'s ring
        until :meth:`release`."""
        self.release(key)
        handler = _RingHandler(self.ring(key))
        target = logging.getLogger(logger_name)
        target.addHandler(handler)
        with self._lock:
            self._handlers[key] = (target, handler)

    def release(self, key: str) -> None:
        """Stop copying the records of ``key``'s loggers (its ring stays)."""
        with self._lock:
            attached = self._handlers.pop(key, None)
        if attached is not None:
            attached[0].removeHandler(attached[1])

    def close(self) -> None:
        """Detach every handler (the host is closing)."""
        with self._lock:
            keys = list(self._handlers)
        for key in keys:
            self.release(key)
