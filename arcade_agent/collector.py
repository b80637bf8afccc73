"""The collect loop: call each plugin's ``collect`` on its interval and ship the metrics.

One scheduler task keeps, per plugin, when its next collection is due (the plugin's own
interval from the desired state or its manifest, else the agent's default), sleeps until the
earliest one, and calls ``collect`` on every due plugin in one :meth:`PluginHost.call`
(isolated and bounded per plugin; run in a worker thread so the event loop never blocks).
Metrics go into a :class:`MetricBuffer` with the plugin's name and their timestamp; a flush
task sends them in batches on the stream as soon as the agent is connected. While it is
not, the buffer keeps at most ``metric_buffer`` metrics, dropping the oldest and counting
them; the count travels in the next batch's ``dropped`` field.

Metrics a plugin pushes on its own schedule (an exec plugin's ``metric`` lines, a Python
plugin's ``metrics.push``) arrive through the host's metric sink (from the collector's making
in the event loop until :meth:`Collector.run` ends), on the pushing thread: they are queued
there and handed to the event loop with one ``call_soon_threadsafe`` per burst (never
blocking the pushing thread), then go into the same buffer with the plugin's name, batched
and sent like collected ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from arcade_core import Metric, PluginNotFound
from arcade_core.rpc.v1 import pb

if TYPE_CHECKING:
    from arcade_core import PluginHost

__all__ = ["Collector", "MetricBuffer"]

log = logging.getLogger(__name__)


class MetricBuffer:
    """A bounded FIFO of metrics waiting to be sent; the oldest go first when it is full."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[pb.Metric] = deque()
        self.dropped_total = 0
        self._dropped_unreported = 0
        self.added_total = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, metrics: Iterable[pb.Metric]) -> None:
        for metric in metrics:
            self._items.append(metric)
            self.added_total += 1
        self._trim()

    def take(self, limit: int) -> tuple[list[pb.Metric], int]:
        """Up to ``limit`` oldest metrics and the number dropped since the last take."""
        n = min(limit, len(self._items))
        batch = [self._items.popleft() for _ in range(n)]
        dropped, self._dropped_unreported = self._dropped_unreported, 0
        return batch, dropped

    def put_back(self, batch: list[pb.Metric], dropped: int) -> None:
        """Return a batch that could not be sent to the front (it is the oldest data)."""
        self._items.extendleft(reversed(batch))
        self._dropped_unreported += dropped
        self._trim()

    def _trim(self) -> None:
        excess = len(self._items) - self.capacity
        if excess > 0:
            for _ in range(excess):
                self._items.popleft()
            self.dropped_total += excess
            self._dropped_unreported += excess


class Collector:
    """Schedules ``collect`` per plugin and feeds the metric buffer and the stream.

    ``intervals`` (from :meth:`set_plugins`) maps a plugin key to its interval in seconds
    (0 = ``default_interval``; ``interval_override`` > 0 replaces them all). Only keys whose
    plugin implements ``collect`` are called. ``on_collected`` is called after each round
    (the agent looks whether a plugin's health changed).
    """

    def __init__(
        self,
        host: PluginHost,
        *,
        default_interval: float,
        call_timeout: float,
        buffer: MetricBuffer,
        batch_size: int = 1000,
        interval_override: float = 0.0,
        on_collected: Callable[[], object] | None = None,
    ) -> None:
        self.host = host
        self.on_collected = on_collected
        #: Epoch time of each plugin's last ``collect`` that returned (it did not raise).
        self.collected_at: dict[str, float] = {}
        self.default_interval = default_interval
        self.interval_override = interval_override
        self.call_timeout = call_timeout
        self.buffer = buffer
        self.batch_size = batch_size
        self._intervals: dict[str, float] = {}
        self._next_due: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._has_data = asyncio.Event()
        self.collections = 0
        self.collect_errors: dict[str, int] = {}
        self.last_error: dict[str, str] = {}
        self.sent_total = 0
        self.batches_sent = 0
        #: Pushed metrics taken into the buffer so far.
        self.pushed_total = 0
        self._pushed: list[tuple[str, list[Metric]]] = []
        self._push_lock = threading.Lock()
        self._push_loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):  # made in the agent's loop: listen at once,
            self._listen(asyncio.get_running_loop())  # before restored plugins push

    # ------------------------------------------------------------------ configuration

    def set_plugins(self, intervals: Mapping[str, float]) -> None:
        """Replace the set of plugins to collect from; new ones are collected at once."""
        now = time.monotonic()
        old = self._intervals
        self._intervals = {k: self._interval(v) for k, v in intervals.items()}
        for key in list(self._next_due):
            if key not in self._intervals:
                del self._next_due[key]
                self.collected_at.pop(key, None)
        for key, interval in self._intervals.items():
            if key not in self._next_due:
                self._next_due[key] = now
            elif old.get(key) != interval:
                self._next_due[key] = min(self._next_due[key], now + interval)
        self._changed.set()

    def _interval(self, wanted: float) -> float:
        if self.interval_override > 0:
            return self.interval_override
        return wanted if wanted > 0 else self.default_interval

    def last_collect(self, key: str) -> float:
        """When ``key``'s last ``collect`` returned (epoch seconds; 0.0: never)."""
        return self.collected_at.get(key, 0.0)

    @property
    def intervals(self) -> dict[str, float]:
        return dict(self._intervals)

    # ------------------------------------------------------------------ loops

    async def run(self) -> None:
        """Collect forever (until cancelled), and take pushed metrics meanwhile."""
        self._listen(asyncio.get_running_loop())
        try:
            await self._collect_forever()
        finally:
            self.host.remove_metric_sink(self.take_pushed)
            self._push_loop = None

    def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._push_loop is None:
            self._push_loop = loop
            self.host.add_metric_sink(self.take_pushed)

    def take_pushed(self, key: str, metrics: list[Metric]) -> None:
        """The host's metric sink (any thread): queue ``metrics``, wake the loop once."""
        loop = self._push_loop
        if loop is None:
            return
        with self._push_lock:
            first = not self._pushed
            self._pushed.append((key, metrics))
        if first:
            with contextlib.suppress(RuntimeError):  # a closed loop: the agent is stopping
                loop.call_soon_threadsafe(self._drain_pushed)

    def _drain_pushed(self) -> None:
        with self._push_lock:
            pushed, self._pushed = self._pushed, []
        converted: list[pb.Metric] = []
        for key, metrics in pushed:
            converted.extend(self._convert(key, metrics))
        if converted:
            self.pushed_total += len(converted)
            self.buffer.add(converted)
            self._has_data.set()

    async def _collect_forever(self) -> None:
        while True:
            now = time.monotonic()
            due = [k for k, t in self._next_due.items() if t <= now]
            if due:
                for key in due:
                    interval = self._intervals[key]
                    nxt = self._next_due[key] + interval
                    self._next_due[key] = nxt if nxt > now else now + interval
                try:
                    await self.collect(due)
                except Exception:  # the host is closing, or a bug: never stop collecting
                    log.exception("collecting from %s failed", ", ".join(due))
                continue
            self._changed.clear()
            timeout = min(self._next_due.values()) - now if self._next_due else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    async def collect(self, keys: list[str]) -> int:
        """Call ``collect`` on ``keys`` now; buffer their metrics. Returns how many."""
        implementing = {impl.plugin_name for impl in self.host.hook.collect.get_hookimpls()}
        keys = [k for k in keys if k in implementing]
        if not keys:
            return 0
        try:
            outcome = await asyncio.to_thread(
                self.host.call, "collect", keys=keys, timeout=self.call_timeout
            )
        except PluginNotFound as exc:
            # A plugin was unloaded between scheduling and the call; the reconciler is
            # about to tell us the new set.
            log.debug("collect skipped: %s", exc)
            return 0
        self.collections += 1
        metrics: list[pb.Metric] = []
        now = time.time()
        for key, result in outcome.results.items():
            self.collected_at[key] = now
            metrics.extend(self._convert(key, result))
        for key, error in outcome.errors.items():
            self.collect_errors[key] = self.collect_errors.get(key, 0) + 1
            self.last_error[key] = error
            log.warning("collect from %s failed: %s", key, error)
        if metrics:
            self.buffer.add(metrics)
            self._has_data.set()
        if self.on_collected is not None:
            self.on_collected()
        return len(metrics)

    async def flush_forever(
        self,
        send: Callable[[pb.AgentMessage], Awaitable[bool]],
        connected: asyncio.Event,
    ) -> None:
        """Send buffered metrics in batches whenever there are some and the stream is up."""
        while True:
            await self._has_data.wait()
            await connected.wait()
            while len(self.buffer):
                batch, dropped = self.buffer.take(self.batch_size)
                message = pb.AgentMessage(metrics=pb.MetricBatch(metrics=batch, dropped=dropped))
                if not await send(message):
                    self.buffer.put_back(batch, dropped)
                    await asyncio.sleep(0.05)  # the connection notices and clears `connected`
                    break
                self.sent_total += len(batch)
                self.batches_sent += 1
            else:
                self._has_data.clear()

    # ------------------------------------------------------------------ conversion

    def _convert(self, key: str, result: Any) -> list[pb.Metric]:
        if result is None:
            return []
        if not isinstance(result, list | tuple):
            self._bad(key, f"collect returned {type(result).__name__}, expected a list of Metric")
            return []
        out: list[pb.Metric] = []
        for item in result:
            try:
                metric = item if isinstance(item, Metric) else Metric.from_dict(item)
                out.append(pb.Metric(
                    plugin=key,
                    name=metric.name,
                    value=float(metric.value),
                    labels=metric.labels,
                    unit=metric.unit,
                    timestamp=metric.timestamp,
                ))
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                self._bad(key, f"invalid metric {item!r}: {exc}")
        return out

    def _bad(self, key: str, error: str) -> None:
        self.collect_errors[key] = self.collect_errors.get(key, 0) + 1
        self.last_error[key] = error
        log.warning("plugin %s: %s", key, error)
