"""Where pushed metrics go: the host's metric sinks.

A plugin pushes metrics on its own schedule (an exec plugin's ``metric`` lines, a Python
plugin's :class:`~arcade_core._push.MetricPush`); the host hands each batch, with the key
of the plugin that pushed it, to every sink added with
:meth:`PluginHost.add_metric_sink <arcade_core.PluginHost.add_metric_sink>` (the agent's
collector is one). Sinks run on the pushing thread — a child's reader thread or a plugin's
own — so they must return quickly (hand the batch to a queue or an event loop); a sink's
exception is logged and the others still hear the batch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ._types import Metric

__all__ = ["MetricSink", "MetricSinks"]

logger = logging.getLogger("arcade.host")

#: ``sink(key, metrics)``: one batch pushed by the plugin loaded as ``key``.
MetricSink = Callable[[str, list[Metric]], None]


class MetricSinks:
    """The metric sinks of one host (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sinks: tuple[MetricSink, ...] = ()
        #: Metrics pushed and delivered (to no sink or more), per key.
        self.pushed: dict[str, int] = {}

    def add(self, sink: MetricSink) -> None:
        with self._lock:
            self._sinks = (*self._sinks, sink)

    def remove(self, sink: MetricSink) -> None:
        with self._lock:
            self._sinks = tuple(s for s in self._sinks if s is not sink)

    def deliver(self, key: str, metrics: list[Metric]) -> None:
        """Hand ``metrics`` pushed by ``key`` to every sink."""
        with self._lock:
            self.pushed[key] = self.pushed.get(key, 0) + len(metrics)
            sinks = self._sinks
        for sink in sinks:
            try:
                sink(key, metrics)
            except Exception:
                logger.exception("metric sink %r failed on %d metrics from %s", sink,
                                 len(metrics), key)
