"""Everything one server process shares between REST and gRPC, and its background loops.

:class:`ServerState` owns the database, the blob store, the stream hub and the presence
table, and wires them together: services announce changes through
:attr:`ServerState.notifier` (a :class:`~arcade_server.services.notifier.Notifier`; today the
hub, :class:`~arcade_server.rpc.hub.Hub`, which holds this process's agent streams), so the
services never know about streams.

:meth:`ServerState.start` applies migrations (in a thread, or in a child process for
``arcade server``: :func:`migrate_database`) and starts five small loops: flush last-seen
times, sweep revisions changed by other replicas, expire old metrics, sweep jobs (send queued
ones created elsewhere, fail those whose agent is gone), and release memory after bursts
(:meth:`ServerState.release_memory`).
:meth:`ServerState.close` stops them and flushes what is left.

Registrations, status reports and metric batches from agents go through
:class:`~arcade_server.db.batcher.Batcher` objects (:attr:`ServerState.registrations`,
:attr:`ServerState.status_reports`, :attr:`ServerState.metric_batches`): whatever arrives
while one transaction is being written is written together in the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from arcade_core.files import write_private
from arcade_core.memory import release_memory

from .auth.roles import ActorKind, Role
from .blobcache import BlobCache
from .db.batcher import Batcher
from .db.engine import Database
from .errors import MigrationError
from .limits import RateLimiter
from .presence import Presence
from .rpc.hub import Hub
from .rpc.identity import Identities
from .services import (
    agents,
    audit,
    job_runs,
    job_sweep,
    jobs,
    metrics,
    status_reports,
    tokens,
)
from .services.notifier import Notifier
from .settings import Settings
from .storage import LocalBlobStore
from .tls import ServerTLS, load_tls

__all__ = ["ServerState", "migrate_database", "sweep_uploads"]

log = logging.getLogger("arcade.server")


async def migrate_database(url: str) -> None:
    """Apply the migrations to ``url`` in a child process (``python -m
    arcade_server.db.migrate``, the URL on its stdin); raise
    :class:`~arcade_server.errors.MigrationError` with its message (``arcade server`` reports
    it and exits).

    A serving process that migrates itself keeps Alembic, Mako and Pygments imported for
    its whole life (~13 MB of RSS, a tenth of a 1,000-agent server); a child frees them."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "arcade_server.db.migrate",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(url.encode() + b"\n")
    if proc.returncode != 0:
        text = (err or out).decode(errors="replace").strip().splitlines()
        raise MigrationError(
            "database migration failed: " + (text[-1] if text else f"exit {proc.returncode}"))


def sweep_uploads(upload_dir: Path) -> int:
    """Empty ``upload_dir`` of what a crash left (partial uploads; blocking: called in a
    thread at start, before any request is served); return how many entries were removed."""
    removed = 0
    if upload_dir.is_dir():
        for entry in upload_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    upload_dir.mkdir(parents=True, exist_ok=True)
    return removed


class ServerState:
    """The server's shared state; create with settings, then ``await start()``."""

    def __init__(self, settings: Settings, *, migrate_in_subprocess: bool = False) -> None:
        """``migrate_in_subprocess``: apply migrations in a child process (see
        :func:`migrate_database`), so this process never imports Alembic."""
        self.settings = settings
        self.migrate_in_subprocess = migrate_in_subprocess
        settings.home.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url, threads=settings.db_threads)
        self.store = LocalBlobStore(settings.blob_dir)
        self.blobs = BlobCache(self.store)
        self.presence = Presence()
        self.hub = Hub(self.db)
        #: Where services announce changes agents must hear about (see the module docstring).
        self.notifier: Notifier = self.hub
        #: Enrolled agents' identities, cached briefly (revocation here clears the entry).
        self.identities = Identities(self.db)
        self.hub.on_revoked.append(self.identities.forget)
        self._tls: ServerTLS | None = None
        db = self.db
        self.registrations: Batcher[agents.AgentInfo, None] = Batcher(
            lambda infos: db.run(agents.register_many, infos), name="registrations")
        self.status_reports: Batcher[status_reports.StatusUpdate, None] = Batcher(
            lambda updates: db.run(status_reports.report_statuses, updates), name="status reports")
        self.metric_batches: Batcher[metrics.MetricBatch, int] = Batcher(
            lambda batches: db.run(metrics.store_batches, batches), name="metric batches")
        #: Per-agent metric rate limit (``metric_rate`` with ``metric_burst``).
        self.metric_limiter = RateLimiter(settings.metric_rate, settings.metric_burst,
                                          warn_interval=settings.metric_warn_interval)
        self.open_jobs: Batcher[str, bool] = Batcher(
            lambda ids: db.read(job_runs.with_open_jobs, ids), name="open-job checks")
        #: Audit rows of the REST calls answered together, written in one transaction.
        self.audit: Batcher[audit.AuditEntry, None] = Batcher(
            lambda entries: db.run(audit.record_many, entries), name="audit log")
        self._tasks: list[asyncio.Task[None]] = []
        self._burst_seen = self._burst_mark = 0
        #: How many times :meth:`release_memory` handed memory back (tests and benchmarks).
        self.memory_releases = 0
        self.started = False

    @property
    def tls(self) -> ServerTLS:
        """The server's certificates (loaded by :meth:`start`, or :meth:`load_tls`)."""
        if self._tls is None:
            raise RuntimeError("the server's certificates are not loaded yet")
        return self._tls

    async def load_tls(self) -> ServerTLS:
        """Load or create the CA and server certificate (see :mod:`arcade_server.tls`)."""
        if self._tls is None:
            s = self.settings
            self._tls = await asyncio.to_thread(
                load_tls, s.home, san=s.san, hosts=(s.http_host, s.grpc_host),
                ca_file=s.tls_ca_file, ca_key_file=s.tls_ca_key_file,
                cert_file=s.tls_cert_file, key_file=s.tls_key_file)
        return self._tls

    async def start(self) -> None:
        if self.started:
            return
        settings = self.settings
        swept = await asyncio.to_thread(sweep_uploads, settings.upload_dir)
        if swept:
            log.info("removed %d partial upload(s) left in %s", swept, settings.upload_dir)
        await asyncio.to_thread(self.store.clear_temp)
        await self.load_tls()
        if self.migrate_in_subprocess:
            await migrate_database(self.db.url)
        else:
            from .db import migrate

            await asyncio.to_thread(migrate.upgrade, self.db.engine)
        await self.first_admin_token()
        self._tasks = [
            self._every(settings.presence_flush_interval, self.flush_presence, "presence flush"),
            self._every(settings.revision_poll_interval, self._sweep, "revision sweep"),
            self._every(settings.retention_interval, self.expire_metrics, "metric retention"),
            self._every(settings.job_sweep_interval, self._sweep_jobs, "job sweep"),
            self._every(settings.memory_release_interval, self.release_memory,
                        "memory release"),
        ]
        self.started = True

    async def first_admin_token(self) -> bool:
        """On an empty tokens table, make the admin token (``admin_token`` setting, else
        random), write it to ``<home>/admin-token`` (0600) and say where; True if made."""
        settings = self.settings
        secret = await self.db.run(tokens.ensure_admin, secret=settings.admin_token or None)
        if secret is None:
            return False
        path = settings.admin_token_file
        await asyncio.to_thread(write_private, path, secret + "\n")
        await self.db.run(audit.record, actor="system", actor_kind=ActorKind.SYSTEM,
                          action="token.create", target=f"tokens/{tokens.ADMIN_NAME}",
                          outcome="ok", role=Role.ADMIN)
        log.warning("created the first admin API token %r; its secret is in %s (mode 0600): "
                    "export ARCADE_TOKEN=$(cat %s)", tokens.ADMIN_NAME, path, path)
        return True

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

    async def _sweep_jobs(self) -> None:
        settings = self.settings
        await job_sweep.sweep(
            self.db, self.notifier, connected=self.hub.connected_ids(),
            last_seen=self.presence.snapshot(), lost_after=settings.job_lost_after,
            grace=settings.job_timeout_grace,
        )

    def _burst_count(self) -> int:
        """Agent messages that come in bursts: registrations, status reports, small-wheel
        downloads."""
        blobs = self.blobs
        return self.registrations.items + self.status_reports.items + blobs.hits + blobs.reads

    async def release_memory(self) -> bool:
        """Called every ``memory_release_interval``: once a burst of agent traffic has gone
        quiet for a whole interval, collect garbage and trim the heap in a thread
        (:func:`~arcade_core.memory.release_memory`); ``True`` if it did.

        A rollout to 1,000 agents leaves ~5-10 MB of freed heap (gRPC calls, messages) that
        glibc would otherwise keep for the life of the process (``benchmarks/fleet.py``).
        Steady traffic (heartbeats, metrics) is not a burst and triggers nothing."""
        count = self._burst_count()
        busy = count != self._burst_seen
        self._burst_seen = count
        if busy or count == self._burst_mark:
            return False
        self._burst_mark = count
        trimmed = await asyncio.to_thread(release_memory)
        self.memory_releases += 1
        log.debug("agent traffic went quiet: memory released (heap trimmed: %s)", trimmed)
        return True

    async def flush_presence(self) -> None:
        dirty = self.presence.take_dirty()
        left = self.presence.take_departures()
        if not dirty and not left:
            return
        try:
            await self.db.run(agents.flush_presence, dirty, left)
        except Exception:
            self.presence.restore_dirty(dirty, left)
            raise

    async def expire_metrics(self) -> int:
        """The retention sweep (every ``retention_interval``): delete metric rows older than
        ``metric_retention``, then those beyond the newest ``metric_rows_per_plugin`` of each
        agent and plugin, then audit rows past ``audit_retention``/``audit_max_rows``, then
        finished jobs past ``job_retention``/``job_max_rows``; return how many rows went."""
        settings = self.settings
        cutoff = time.time() - settings.metric_retention
        deleted = await self.db.run(metrics.purge, cutoff)
        if deleted:
            log.info("deleted %d metric rows older than the retention period", deleted)
        excess = await self.db.run(metrics.purge_excess, settings.metric_rows_per_plugin)
        if excess:
            log.info("deleted %d metric rows beyond %d per agent and plugin",
                     excess, settings.metric_rows_per_plugin)
        audit_rows = await self.db.run(
            audit.purge, before=time.time() - settings.audit_retention,
            keep_rows=settings.audit_max_rows)
        if audit_rows:
            log.info("deleted %d audit rows (older than audit_retention or beyond "
                     "audit_max_rows)", audit_rows)
        job_rows = await self.db.run(
            jobs.purge, before=time.time() - settings.job_retention,
            keep_rows=settings.job_max_rows)
        if job_rows:
            log.info("deleted %d finished jobs (older than job_retention or beyond "
                     "job_max_rows)", job_rows)
        return deleted + excess + audit_rows + job_rows

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.hub.close()
        for batcher in (self.registrations, self.status_reports, self.metric_batches,
                        self.open_jobs, self.audit, self.identities.reads):
            await batcher.close()
        if self.started:
            try:
                await self.flush_presence()
            except Exception:
                log.exception("could not write last-seen times at shutdown")
        await asyncio.to_thread(self.db.close)
        self.started = False
