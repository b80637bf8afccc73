"""Group commit: many small database writes from many streams, one transaction per batch.

A fleet sends a burst of small messages at once (a thousand agents registering after a
restart, each reporting ``downloading`` / ``installing`` / ``running`` during a rollout,
metric batches every few seconds). One transaction each would cost a commit and a pool round
trip per message and, on SQLite, queue every writer on the one write lock. A
:class:`Batcher` instead collects what is submitted while the previous batch is being
written and writes it as the next batch, with one call of its ``flush`` function (typically
``db.run(service_fn, items)``: one transaction, ``executemany`` statements). There is no
timer: an item waits at most for the batch in flight, so a lone message is written at once
and a burst is written in a few large transactions.

Each submitter awaits its own result, so a message is acknowledged only once it is
committed. When a batch fails, its items are retried one by one, so one bad item fails
alone with its own error and the others are still written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from ..errors import BatcherError

__all__ = ["Batcher"]

log = logging.getLogger("arcade.server.db")

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Coalesces :meth:`submit` calls into calls of ``flush(items) -> results`` (same order,
    same length). Use from one event loop; :meth:`close` writes what is pending and stops."""

    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int = 500,
        name: str = "batch",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._flush = flush
        self.max_batch = max_batch
        self.name = name
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._writing = False
        self._closed = False
        #: Counters: batches written, items written, largest batch, and the seconds spent
        #: writing (all batches; the slowest one) — for tests, logs and benchmarks.
        self.batches = 0
        self.items = 0
        self.largest = 0
        self.busy_s = 0.0
        self.slowest_s = 0.0

    async def submit(self, item: T) -> R:
        """Queue ``item`` for the next batch and return its result once the batch is written
        (or raise the error writing it alone raised)."""
        if self._closed:
            raise BatcherError(f"{self.name}: the batcher is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._task is None or self._task.done():   # first use, or the writer task died
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), name=f"arcade {self.name} batcher")
        assert self._wake is not None
        self._wake.set()
        # A submitter cancelled while waiting cancels only its wait: the item is still written.
        return await future

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._drain()

    async def _drain(self) -> None:
        # Its own function, so the last batch (up to max_batch items) is released when it
        # returns, not kept alive while _run waits for the next submit.
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            self._writing = True
            try:
                await self._write(batch)
            finally:
                self._writing = False

    async def _write(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        items = [item for item, _future in batch]
        started = time.perf_counter()
        try:
            results = await self._flush(items)
        except asyncio.CancelledError:
            for _item, future in batch:
                if not future.done():
                    future.cancel()
            raise
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            log.warning("%s: a batch of %d failed (%s); writing its items one by one",
                        self.name, len(batch), exc)
            for one in batch:
                await self._write([one])
            return
        if len(results) != len(batch):  # a flush function bug: never leave a submitter hanging
            error = BatcherError(
                f"{self.name}: flush returned {len(results)} results for {len(batch)} items")
            for _item, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        took = time.perf_counter() - started
        self.batches += 1
        self.items += len(batch)
        self.largest = max(self.largest, len(batch))
        self.busy_s += took
        self.slowest_s = max(self.slowest_s, took)
        for (_item, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def close(self) -> None:
        """Write everything already submitted, then stop; later submits raise."""
        self._closed = True
        task = self._task
        if task is None:
            return
        while (self._pending or self._writing) and not task.done():
            assert self._wake is not None
            self._wake.set()
            await asyncio.sleep(0.001)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._task = None
