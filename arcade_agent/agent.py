"""The :class:`Agent`: a plugin host kept in line with the server's desired state.

Embedding::

    from arcade_agent import Agent, AgentSettings

    async with Agent(AgentSettings(server="127.0.0.1:9090", home=Path("/var/lib/arcade"))) as a:
        await a.wait_connected()
        ...                          # the agent runs in the background of this event loop
        print(a.status())

or ``await Agent(settings).run()`` to run until :meth:`Agent.request_stop` (the CLI wires
SIGTERM/SIGINT to it). Start-up order matters: the plugins of the persisted state are loaded
from disk *before* the first connection, so the first ``Register`` already says what runs and
no wheel is downloaded again after a restart.

Identity: before anything connects, the agent loads its certificate from ``<home>/tls`` or
enrolls to get one (:mod:`arcade_agent.identity`), and renews it over its authenticated
channel at two thirds of its lifetime.

Everything lives under ``settings.home``: ``agent-id``, ``tls/``, ``state.json``, ``envs/``
(the plugin environments, owned by the :class:`~arcade_core.PluginHost`), ``cache/wheels/``,
``jobs/`` (jobs' default working directories; see :mod:`arcade_agent.jobs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from arcade_core import __version__ as arcade_version
from arcade_core.rpc.v1 import pb

from .agent_status import AgentStatus
from .cache import WheelCache
from .collector import Collector, MetricBuffer
from .connection import Connection
from .downloader import Downloader
from .drift_watch import DriftWatch, watch_for
from .errors import AgentNotStarted
from .facts import host_facts
from .identity import Credentials, CsrError, ensure_credentials, renew, renew_due, store_credentials
from .jobs import JobRunner
from .local import LocalPlugins
from .logs import plugin_logs
from .reconciler import Reconciler
from .settings import AgentSettings
from .state import StateStore

if TYPE_CHECKING:
    from arcade_core import PluginHost

__all__ = ["Agent", "AgentStatus"]

log = logging.getLogger(__name__)


class Agent:
    """An Arcade agent running inside the current asyncio event loop.

    ``host`` lets an application hand in its own :class:`~arcade_core.PluginHost` (the agent
    then does not close it); by default the agent creates one under ``settings.home``.
    """

    def __init__(self, settings: AgentSettings, *, host: PluginHost | None = None) -> None:
        self.settings = settings
        self._own_host = host is None
        self._host = host
        self._tasks: list[asyncio.Task[None]] = []
        self._stop_requested: asyncio.Event | None = None
        self._started = False
        self._connection: Connection | None = None
        self._reconciler: Reconciler | None = None
        self._collector: Collector | None = None
        self._downloader: Downloader | None = None
        self._cache: WheelCache | None = None
        self._jobs: JobRunner | None = None
        self.drift: DriftWatch | None = None  # the drift watch, once started
        self.local: LocalPlugins | None = None  # the config's plugins:, once started
        self._facts: dict[str, str] = {}
        self._credentials: Credentials | None = None
        self._standalone = False  # decided at start (settings.standalone)
        #: Certificates renewed since start (tests, status).
        self.renewals = 0

    # ------------------------------------------------------------------ parts

    @property
    def host(self) -> PluginHost:
        if self._host is None:
            raise AgentNotStarted("the agent is not started")
        return self._host

    @property
    def id(self) -> str:
        return self.settings.id

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise AgentNotStarted("the agent is not started")
        return self._connection

    @property
    def reconciler(self) -> Reconciler:
        if self._reconciler is None:
            raise AgentNotStarted("the agent is not started")
        return self._reconciler

    @property
    def collector(self) -> Collector:
        if self._collector is None:
            raise AgentNotStarted("the agent is not started")
        return self._collector

    @property
    def downloader(self) -> Downloader:
        if self._downloader is None:
            raise AgentNotStarted("the agent is not started")
        return self._downloader

    @property
    def cache(self) -> WheelCache:
        if self._cache is None:
            raise AgentNotStarted("the agent is not started")
        return self._cache

    @property
    def jobs(self) -> JobRunner:
        if self._jobs is None:
            raise AgentNotStarted("the agent is not started")
        return self._jobs

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Restore plugins from disk, then connect in the background. Returns at once after
        that; the connection is retried forever (see :meth:`wait_connected`)."""
        if self._started:
            return
        self._started = True
        self._stop_requested = asyncio.Event()
        self.settings = await asyncio.to_thread(self.settings.resolved)
        s = self.settings
        await asyncio.to_thread(s.home.mkdir, parents=True, exist_ok=True)
        self._standalone = s.standalone
        try:  # a standalone agent (no server, local plugins) has no identity to prove
            self._credentials = None if s.standalone else await ensure_credentials(
                s.home, s.server_address, s.id, token=s.enroll_token, ca_file=s.ca_file,
                ca_hash=s.ca_hash, retry_max=s.reconnect_max)
        except BaseException:
            self._started = False
            raise
        if self._host is None:
            from arcade_core import PluginHost

            # The server checked every plugin's schema at publish and validates every config
            # before it sends it (DesiredPlugin.config_json: validated, defaults applied).
            self._host = await asyncio.to_thread(
                PluginHost, s.home, call_timeout=s.call_timeout, max_restarts=s.max_restarts,
                healthy_period=s.healthy_period, restart_backoff=s.restart_backoff,
                check_config_schemas=False, hang_timeout=s.hang_timeout,
                default_interval=s.collect_interval,
                interval_override=s.collect_interval_override,
                default_resources={"memory": s.plugin_memory_limit},
            )
        self._facts = await asyncio.to_thread(host_facts)
        self._cache = await asyncio.to_thread(WheelCache, s.home / "cache" / "wheels",
                                              s.cache_max_bytes)
        store = StateStore(s.home / "state.json")
        state = await asyncio.to_thread(store.load)
        self._connection = Connection(
            s.server_address,
            register=self._register,
            on_message=self._on_message,
            heartbeat=self._heartbeat,
            heartbeat_interval=s.heartbeat_interval,
            backoff_initial=s.reconnect_initial,
            backoff_max=s.reconnect_max,
            on_connected=self._on_connected,
            credentials=self._credentials.channel() if self._credentials else None,
        )
        if not s.standalone:
            self._connection.open()
        self._downloader = Downloader(
            self._connection.stub, s.id, self._cache, concurrency=s.download_concurrency,
            timeout=s.download_timeout, retries=s.download_retries,
        )
        self._collector = Collector(
            self.host, default_interval=s.collect_interval, call_timeout=s.call_timeout,
            buffer=MetricBuffer(s.metric_buffer), batch_size=s.metric_batch_size,
            interval_override=s.collect_interval_override,
        )
        self._reconciler = Reconciler(
            self.host, self._downloader, self._cache, store, state,
            report=self._connection.send, on_plugins=self._collector.set_plugins,
            degraded_after=s.degraded_after, collected_at=self._collector.last_collect,
            trust=s.trust)
        self._collector.on_collected = self._reconciler.watch_health
        self.host.add_listener(self._reconciler.on_host_event)
        self._jobs = JobRunner(
            self.host, self._reconciler.ensure_environment, self._connection.send,
            home=s.home / "jobs", agent_id=s.id, concurrency=s.job_concurrency,
            call_timeout=s.call_timeout, policy=s.job_policy,
        )
        self.local = LocalPlugins(self._reconciler, s.plugins, home=s.home)
        await self._reconciler.restore()
        await self.local.apply()  # before connecting: the first Register lists them
        self.drift = watch_for(self._reconciler, s.drift)
        self._spawn(self.drift.run(), "drift-watch")  # hashes everything first
        self._spawn(self._reconciler.run(), "reconciler")
        self._spawn(self._collector.run(), "collector")
        if s.standalone:  # no server: metrics go to the log (collector.log_forever)
            self._spawn(self._collector.log_forever(), "metric-log")
            log.info("agent %s started standalone (home %s, %d local plugin(s), no server)",
                     s.id, s.home, len(s.plugins))
            return
        self._spawn(self._collector.flush_forever(self._connection.send,
                                                  self._connection.connected), "metric-flush")
        self._spawn(self._connection.run(), "connection")
        self._spawn(self._renew_forever(), "certificate-renewal")
        self._spawn(self._reconciler.watch_health_forever(self._connection), "plugin-health")
        log.info("agent %s started (home %s, server %s)", s.id, s.home, s.server_address)

    async def stop(self) -> None:
        """Disconnect, stop the loops and unload every plugin (their state stays on disk so
        the next start brings them back)."""
        if not self._started:
            return
        self._started = False
        if self._stop_requested is not None:
            self._stop_requested.set()
        if self._jobs is not None:
            # First, while the stream is up: running jobs are cancelled and report it.
            await self._jobs.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._downloader is not None:
            await self._downloader.close()
        if self._connection is not None:
            await self._connection.close()
        if self._host is not None and self._own_host:
            await asyncio.to_thread(self._host.close)
        log.info("agent %s stopped", self.settings.agent_id)

    def request_stop(self) -> None:
        """Ask :meth:`run` to return (safe from signal handlers)."""
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def run(self) -> None:
        """Start (if needed), run until :meth:`request_stop`, then stop."""
        await self.start()
        assert self._stop_requested is not None
        try:
            await self._stop_requested.wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> Agent:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the stream is up (raises :class:`TimeoutError`)."""
        async with asyncio.timeout(timeout):
            await self.connection.connected.wait()

    # ------------------------------------------------------------------ status

    def status(self) -> AgentStatus:
        """What the agent runs, its connection, cache, download and metric counters."""
        connection = self._connection
        reconciler = self._reconciler
        collector = self._collector
        return AgentStatus(
            agent_id=self.settings.agent_id or "",
            server="" if self._standalone else self.settings.server_address,
            connected=bool(connection and connection.connected.is_set()),
            sessions=connection.sessions if connection else 0,
            last_error=connection.last_error if connection else "",
            applied_revision=reconciler.applied_revision if reconciler else 0,
            plugins=[r.to_dict() for r in reconciler.statuses()] if reconciler else [],
            cache=self._cache.stats() if self._cache else None,
            downloads=self._downloader.stats() if self._downloader else None,
            metrics_buffered=len(collector.buffer) if collector else 0,
            metrics_sent=collector.sent_total if collector else 0,
            metrics_dropped=collector.buffer.dropped_total if collector else 0,
            collect_errors=dict(collector.collect_errors) if collector else {},
            jobs=self._jobs.jobs() if self._jobs else [],
        )

    # ------------------------------------------------------------------ stream callbacks

    async def _register(self) -> pb.Register:
        reconciler = self.reconciler
        return pb.Register(
            agent_id=self.id, hostname=self._facts.get("hostname", ""),
            ip=self._facts.get("ip", ""), os=self._facts.get("os", ""),
            arch=self._facts.get("arch", ""), agent_version=arcade_version,
            python_version=platform.python_version(), labels=self.settings.labels,
            plugins=[r.to_pb() for r in reconciler.running()],
            applied_revision=reconciler.applied_revision, jobs=self.jobs.known(),
            jobs_enabled=self.settings.jobs_enabled, jobs_allow=list(self.settings.jobs_allow),
        )

    def _heartbeat(self) -> pb.Heartbeat:
        return pb.Heartbeat(applied_revision=self.reconciler.applied_revision, sent_at=time.time())

    async def _on_connected(self) -> None:
        # Statuses that changed while we were away (a failed install, a crash) go out now.
        if self.reconciler.statuses():
            self.reconciler.report_now()
        self.jobs.resend()

    async def _on_message(self, message: pb.ServerMessage) -> None:
        kind = message.WhichOneof("body")
        if kind == "desired":
            log.info("desired state revision %d (%d plugins)", message.desired.revision,
                     len(message.desired.plugins))
            self.reconciler.submit(message.desired)
        elif kind == "job":
            log.info("job %s received (%d command(s))", message.job.job_id,
                     len(message.job.commands))
            self.jobs.submit(message.job)
        elif kind == "cancel_job":
            self.jobs.cancel(message.cancel_job.job_id, "cancelled on request")
        elif kind == "logs_request":
            await self.connection.send(pb.AgentMessage(logs=plugin_logs(self.host, message)))
        else:
            log.warning("ignoring an unexpected %s message from the server", kind)

    async def _renew_forever(self) -> None:
        """Renew the agent's certificate at two thirds of its lifetime, over the
        authenticated channel; on failure retry (sooner as the end nears)."""
        import datetime as dt

        import grpc

        while True:
            assert self._credentials is not None
            due = renew_due(self._credentials.cert_pem)
            wait = (due - dt.datetime.now(dt.UTC)).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            await self.connection.connected.wait()
            try:
                renewed = await renew(self.connection.stub(), self.id, self._credentials)
            except (grpc.aio.AioRpcError, CsrError, TimeoutError) as exc:
                ends = self._credentials.certificate.not_valid_after_utc
                left = (ends - dt.datetime.now(dt.UTC)).total_seconds()
                why = (f"{exc.code().name}: {exc.details()}"
                       if isinstance(exc, grpc.aio.AioRpcError) else str(exc) or "timeout")
                log.warning("renewing the certificate failed (%s); %.0fs left, retrying",
                            why, left)
                await asyncio.sleep(min(60.0, max(1.0, left / 10)))
                continue
            await asyncio.to_thread(store_credentials, self.settings.home, renewed)
            self._credentials = renewed
            self.renewals += 1
            self.connection.set_credentials(renewed.channel())
            log.info("certificate renewed; valid until %s",
                     renewed.certificate.not_valid_after_utc.isoformat())

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=f"agent-{name}")
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.critical("agent task %s died: %r; stopping the agent", task.get_name(), exc,
                         exc_info=exc)
            self.request_stop()

