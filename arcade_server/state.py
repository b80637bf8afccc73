"""Everything one server process shares between REST and gRPC, and its background loops.

:class:`ServerState` owns the database, the blob store, the stream hub and the presence
table. :meth:`ServerState.start` applies migrations (in a thread) and starts three small
loops: flush last-seen times, sweep revisions changed by other replicas, and expire old
metrics. :meth:`ServerState.close` stops them and flushes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from .db import migrate
from .db.engine import Database
from .presence import Presence
from .rpc.hub import Hub
from .services import agents, metrics
from .settings import Settings
from .storage import LocalBlobStore

__all__ = ["ServerState"]

log = logging.getLogger("arcade.server")


class ServerState:
    """The server's shared state; create with settings, then ``await start()``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url, threads=settings.db_threads)
        self.store = LocalBlobStore(settings.blob_dir)
        self.presence = Presence()
        self.hub = Hub(self.db)
        self._tasks: list[asyncio.Task[None]] = []
        self.started = False

    async def start(self) -> None:
        if self.started:
            return
        settings = self.settings
        settings.upload_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.store.clear_temp)
        await asyncio.to_thread(migrate.upgrade, self.db.engine)
        self._tasks = [
            self._every(settings.presence_flush_interval, self.flush_presence, "presence flush"),
            self._every(settings.revision_poll_interval, self._sweep, "revision sweep"),
            self._every(settings.retention_interval, self.expire_metrics, "metric retention"),
        ]
        self.started = True

    def _every(self, interval: float, fn: Callable[[], Awaitable[object]], what: str
               ) -> asyncio.Task[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await fn()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s failed; retrying in %.0fs", what, interval)

        return asyncio.create_task(loop(), name=f"arcade {what}")

    async def _sweep(self) -> None:
        await self.hub.sweep()

    async def flush_presence(self) -> None:
        dirty = self.presence.take_dirty()
        if not dirty:
            return
        try:
            await self.db.run(agents.flush_presence, dirty)
        except Exception:
            self.presence.restore_dirty(dirty)
            raise

    async def expire_metrics(self) -> int:
        cutoff = time.time() - self.settings.metric_retention
        deleted = await self.db.run(metrics.purge, cutoff)
        if deleted:
            log.info("deleted %d metric rows older than the retention period", deleted)
        return deleted

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self.hub.close_all()
        if self.started:
            try:
                await self.flush_presence()
            except Exception:
                log.exception("could not write last-seen times at shutdown")
        await asyncio.to_thread(self.db.close)
        self.started = False
