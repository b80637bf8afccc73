"""A per-plugin rate limit on what a plugin's output puts into the host's own log.

A process (or exec) plugin's stderr lines, and the ``log`` messages of the protocol, are
logged through the logger ``arcade.plugin.<key>``. A plugin printing a million lines a second
must not grow the agent's log file by megabytes per second, nor make the pump that drains
its pipe slow (the child would block on a full pipe, its calls time out): each such logger
gets a :class:`LineRateLimit`, a token bucket (``rate`` lines a second, bursts of ``burst``)
that drops the excess cheaply and counts it. The first line let through after a drop is
preceded by one summary record: ``plugin KEY: suppressed 12345 lines (over 20 lines/s)``.

The plugin's own log ring (:mod:`arcade_core._logs`, ``host.logs(key)``) is not limited: it
keeps the latest lines whatever the rate. :func:`set_plugin_log_rate` changes the rate of
every plugin of this process (the agent's ``[log]`` settings): public for that reason.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["DEFAULT_BURST", "DEFAULT_RATE", "LineRateLimit", "limit_plugin_log",
           "set_plugin_log_rate"]

#: Lines a second a plugin may put into the host's log, and the burst above that.
DEFAULT_RATE = 20.0
DEFAULT_BURST = 200

_settings = {"rate": DEFAULT_RATE, "burst": float(DEFAULT_BURST)}
_filters: dict[str, LineRateLimit] = {}
_lock = threading.Lock()


class LineRateLimit(logging.Filter):
    """The token bucket of one logger (see the module docstring)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.tokens = _settings["burst"]
        self.stamp = time.monotonic()
        #: Lines dropped since the last one let through, and in all.
        self.suppressed = 0
        self.suppressed_total = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "arcade_summary", False):
            return True
        now = time.monotonic()
        with self._lock:
            rate, burst = _settings["rate"], _settings["burst"]
            self.tokens = min(burst, self.tokens + (now - self.stamp) * rate)
            self.stamp = now
            if self.tokens < 1.0:
                self.suppressed += 1
                self.suppressed_total += 1
                return False
            self.tokens -= 1.0
            dropped, self.suppressed = self.suppressed, 0
        if dropped:
            summary = logging.LogRecord(
                record.name, logging.WARNING, __file__, 0,
                "plugin %s: suppressed %d lines (over %g lines/s)",
                (self.key, dropped, rate), None)
            summary.arcade_summary = True
            logging.getLogger(record.name).handle(summary)
        return True


def limit_plugin_log(key: str) -> LineRateLimit:
    """Put (once) the rate limit on the logger ``arcade.plugin.<key>``; return it."""
    name = f"arcade.plugin.{key}"
    with _lock:
        limit = _filters.get(name)
        if limit is None:
            limit = _filters[name] = LineRateLimit(key)
            logging.getLogger(name).addFilter(limit)
        return limit


def set_plugin_log_rate(rate: float, burst: int) -> None:
    """Let each plugin put ``rate`` lines a second (bursts of ``burst``) into the log."""
    if not rate > 0 or burst < 1:
        raise ValueError("the plugin log rate must be > 0 lines/s with a burst of at least 1")
    with _lock:
        _settings["rate"] = float(rate)
        _settings["burst"] = float(burst)
