"""Pushed metrics: the handle a Python plugin pushes through, and the check of a pushed
``metric`` message's data (stdlib only: the subprocess child imports it too).

Why: ``collect`` is pull-style (the agent asks on the plugin's interval); a log tailer or an
event watcher has data when *it* has it. A plugin class whose constructor takes a keyword
parameter named ``metrics`` gets a :class:`MetricPush` there::

    class Plugin:
        def __init__(self, config, metrics):
            self.metrics = metrics          # keep it; push from any thread, any time
            ...
            self.metrics.push(Metric("lines.matched", 1.0))

In-process, :meth:`MetricPush.push` hands the metrics to the host's metric sinks
(:meth:`PluginHost.add_metric_sink <arcade_core.PluginHost.add_metric_sink>`) on the
pushing thread; in a process child it writes one ``metric`` line to the host. Either way the
agent buffers and batches them with the collected ones. Once the plugin is unloaded (or
replaced by a config change), its handle is closed and pushes are dropped quietly.
``interval`` is the plugin's interval in seconds (the assignment's, else the manifest's, else
the host default), kept current when it changes.

Not named ``emit``: :meth:`PluginHost.emit <arcade_core.PluginHost.emit>` fires ``notify``
events.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ._types import Metric

__all__ = [
    "LOG_LEVELS",
    "MetricPush",
    "metric_from_data",
    "parse_log",
    "parse_metrics",
    "wants_metrics",
]

#: The levels of a ``log`` message, and the ring's level for each.
LOG_LEVELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARNING", "error": "ERROR"}


class MetricPush:
    """Push metrics from a plugin whenever it has them (thread-safe; see the module doc).

    ``push`` takes one :class:`~arcade_core.Metric`, a dict shaped like one (``name``,
    ``value``, optional ``labels``, ``unit``, ``timestamp``), or an iterable of either;
    a value that is not a metric raises :class:`TypeError`/:class:`ValueError` at once, in
    the plugin's own thread, so its author sees the mistake where it is made.
    """

    __slots__ = ("_closed", "_lock", "_sink", "interval", "pushed")

    def __init__(self, sink: Callable[[list[Metric]], None], interval: float = 0.0) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._closed = False
        #: The plugin's interval in seconds (kept current by the host).
        self.interval = interval
        #: Metrics pushed through this handle so far (dropped ones after close excluded).
        self.pushed = 0

    def push(self, metrics: Metric | dict[str, Any] | Iterable[Metric | dict[str, Any]]
             ) -> None:
        """Send ``metrics`` to the agent (buffered and batched like collected ones)."""
        items = [metrics] if isinstance(metrics, Metric | dict) else list(metrics)
        batch = [_as_metric(item) for item in items]
        if not batch:
            return
        with self._lock:
            if self._closed:
                return
            self.pushed += len(batch)
        self._sink(batch)

    def close(self) -> None:
        """The plugin is gone: drop whatever it pushes from now on."""
        with self._lock:
            self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed


def _as_metric(item: object) -> Metric:
    if isinstance(item, Metric):
        return item
    if isinstance(item, dict):
        return metric_from_data(item)
    raise TypeError(f"push() takes Metric objects or dicts, not {type(item).__name__}")


def metric_from_data(data: dict[str, Any]) -> Metric:
    """One metric from its JSON shape; :class:`ValueError` saying what is wrong."""
    name = data.get("name")
    value = data.get("value")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a metric needs a non-empty string 'name', got {name!r}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"metric {name!r}: 'value' must be a finite number, got {value!r}")
    stamp = data.get("timestamp")
    if stamp is None:
        stamp = time.time()
    elif isinstance(stamp, bool) or not isinstance(stamp, int | float) \
            or not math.isfinite(stamp):
        raise ValueError(f"metric {name!r}: 'timestamp' must be seconds since the epoch, "
                         f"got {stamp!r}")
    unit = data.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise ValueError(f"metric {name!r}: 'unit' must be a string, got {unit!r}")
    labels = data.get("labels")
    if labels is None:
        labels = {}
    elif not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise ValueError(f"metric {name!r}: 'labels' must map strings to strings, "
                         f"got {labels!r}")
    return Metric(name=name, value=float(value), labels=dict(labels), unit=unit or "",
                  timestamp=float(stamp))


def parse_metrics(data: Any) -> tuple[list[Metric], list[str]]:
    """The metrics of a ``metric`` message's ``data`` (one object or a list of them) and
    the problems of the items left out."""
    items = data if isinstance(data, list) else [data]
    metrics: list[Metric] = []
    problems: list[str] = []
    for item in items:
        if isinstance(item, Metric):  # a "$type"-tagged one, rebuilt by the decoder
            metrics.append(item)
            continue
        if not isinstance(item, dict):
            problems.append(f"a metric must be an object, got {type(item).__name__}")
            continue
        try:
            metrics.append(metric_from_data(item))
        except ValueError as exc:
            problems.append(str(exc))
    if not items:
        problems.append("an empty batch")
    return metrics, problems


def parse_log(message: dict[str, Any]) -> tuple[str, str]:
    """``(ring level, text)`` of a ``log`` message; :class:`ValueError` when it is not one."""
    level = message.get("level", "info")
    text = message.get("message")
    if not isinstance(level, str) or level.lower() not in LOG_LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    if not isinstance(text, str):
        raise ValueError(f"a log message needs a string 'message', got {text!r}")
    return LOG_LEVELS[level.lower()], text


def wants_metrics(target: Any) -> bool:
    """Whether the plugin class ``target`` takes a ``metrics`` keyword in its constructor
    (read from its code object: no :mod:`inspect` import in the child)."""
    if not isinstance(target, type):
        return False
    code = getattr(getattr(target, "__init__", None), "__code__", None)
    if code is None:
        return False
    names = code.co_varnames[1:code.co_argcount + code.co_kwonlyargcount]
    return "metrics" in names
