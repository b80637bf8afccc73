"""The host's events (``plugin.loaded``, ``plugin.unloaded``, ``plugin.crashed``,
``plugin.restarted``, ``plugin.failed``) and who hears them.

Management calls dispatch their events on the caller's thread. Supervisor events come from
a process plugin's supervisor thread and are queued for one delivery thread of their own
(started on the first such event), so a slow listener or ``notify`` plugin never holds up a
restart, or a stop waiting for one.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from ._types import Event

__all__ = ["HostEvents"]

logger = logging.getLogger("arcade.host")


class HostEvents:
    """The listeners of one host and the thread that delivers supervisor events.

    ``after_delivery(event)`` runs on the delivery thread after the listeners heard a
    supervisor event (the host tells its ``notify`` plugins about failures there).
    """

    def __init__(self, after_delivery: Callable[[Event], None]) -> None:
        self._after_delivery = after_delivery
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Event], None]] = []
        self._queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def add_listener(self, fn: Callable[[Event], None]) -> None:
        """Tell ``fn`` of every event from now on."""
        with self._lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[Event], None]) -> None:
        """Stop telling ``fn`` (no error if it was not listening)."""
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def dispatch(self, event: Event) -> None:
        """Tell every listener, on this thread; a listener's exception is logged only."""
        with self._lock:
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(event)
            except Exception:
                logger.exception("host event listener %r failed on %s", fn, event.kind)

    def post(self, kind: str, data: dict[str, Any]) -> None:
        """From a supervisor thread: queue the event for the delivery thread."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._deliver, name="arcade-host-events", daemon=True
                )
                self._thread.start()
        self._queue.put(Event(kind, dict(data)))

    def close(self, timeout: float) -> None:
        """Deliver what is queued, then stop the delivery thread (waiting up to ``timeout``)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=timeout)

    def _deliver(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            self.dispatch(event)
            try:
                self._after_delivery(event)
            except Exception:
                logger.exception("handling %s after its delivery failed", event.kind)
