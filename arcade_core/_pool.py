"""Worker threads for bounded hook calls: the caller waits on a :class:`Pending` and may
give up on it (the call is then *abandoned*, and keeps its thread until it returns)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from ._exceptions import HostClosed

__all__ = ["Pending", "WorkerPool"]

logger = logging.getLogger("arcade.hooks")


class Pending:
    """One call handed to a :class:`WorkerPool` thread; the caller waits on it."""

    __slots__ = ("_done", "_lock", "abandoned", "error", "finished_at", "value")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._lock = threading.Lock()
        self.value: Any = None
        self.error: BaseException | None = None
        self.abandoned = False
        self.finished_at = 0.0

    def wait(self, timeout: float | None, on_abandon: Callable[[], None] | None = None) -> bool:
        """Wait for the call; on timeout mark it abandoned and return ``False``.

        ``on_abandon`` runs under the same lock the worker takes to finish, so the
        worker's late-finish callback always sees what it did.
        """
        if self._done.wait(timeout):
            return True
        with self._lock:
            if self._done.is_set():
                return True
            self.abandoned = True
            if on_abandon is not None:
                on_abandon()
            return False

    def _finish(self, value: Any, error: BaseException | None) -> bool:
        """Store the outcome; return whether the caller had already given up."""
        with self._lock:
            self.value = value
            self.error = error
            self.finished_at = time.perf_counter()
            self._done.set()
            return self.abandoned


_Task = tuple[Callable[..., Any], tuple[Any, ...], Pending, Callable[[Pending], None] | None]


class WorkerPool:
    """Daemon threads that run plugin calls so the caller can stop waiting.

    A thread is added whenever no idle one is available, so a stuck plugin holds one
    thread and never starves the others; threads are daemons, so a call that never
    returns cannot keep the interpreter alive.
    """

    def __init__(self, name: str = "arcade-call") -> None:
        self._name = name
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0
        self._closed = False

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...] = (),
        on_abandoned_finish: Callable[[Pending], None] | None = None,
    ) -> Pending:
        """Run ``fn(*args)`` on a worker; ``on_abandoned_finish`` runs if it ends late."""
        pending = Pending()
        with self._lock:
            if self._closed:
                raise HostClosed("the worker pool is shut down (its host was closed)")
            if self._idle:
                self._idle -= 1
            else:
                self._threads += 1
                threading.Thread(target=self._work, name=f"{self._name}-{self._threads}",
                                 daemon=True).start()
        self._tasks.put((fn, args, pending, on_abandoned_finish))
        return pending

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            fn, args, pending, on_late = task
            try:
                value, error = fn(*args), None
            except BaseException as exc:  # delivered to the waiting caller
                value, error = None, exc
            if pending._finish(value, error) and on_late is not None:
                try:
                    on_late(pending)
                except Exception:  # pragma: no cover - bookkeeping only
                    logger.exception("late-call bookkeeping failed")
            del task, fn, args, pending, on_late, value, error
            with self._lock:
                if self._closed:
                    return
                self._idle += 1

    def shutdown(self) -> None:
        """Stop idle threads; busy ones exit when their call returns."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle = self._idle
            self._idle = 0
        for _ in range(idle):
            self._tasks.put(None)
