"""Simulated agents for ``benchmarks/fleet.py``: many protocol-true agents in one process.

Each :class:`SimAgent` does what ``arcade agent`` does on the wire, and nothing less:

* opens ``Connect`` (write mode, like :class:`arcade_agent.connection.Connection`), sends
  ``Register`` with what it really runs and the revision it applied, waits for ``Welcome``;
* sends ``Heartbeat`` on the interval the server's ``Welcome`` names (first one after a random
  part of the interval, as agents that started at different times would);
* reconciles every ``DesiredState`` like the real reconciler: removes what is gone (reports
  ``removed``), and for a new or changed plugin reports ``downloading``, fetches every wheel
  through the real ``DownloadWheel`` (resuming from the offset reached on a transient error),
  checks size and sha256, reports ``installing``, does honest install work (opens the wheel,
  checks every RECORD hash; optionally unpacks it into a temp dir; then sleeps
  ``install_delay``, the measured cost of building an env and loading the plugin), and
  closes the revision with a ``complete`` report where the plugin is ``running``;
* sends ``MetricBatch`` messages (the cpu + memory plugins' metrics) while metrics are on;
* reconnects with jittered exponential backoff when the stream breaks, re-registering.

A worker process (:func:`worker_main`) runs a share of the fleet on a few grpc.aio channels and
answers commands from the benchmark over a pipe (:class:`Command` names); each answer is a
plain dict. Nothing here measures the server: the benchmark does, from outside.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import hashlib
import io
import os
import random
import resource
import shutil
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from arcade_core.states import PluginState

__all__ = ["FleetConfig", "SimAgent", "worker_main"]

_TRANSIENT = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN", "CANCELLED",
              "ABORTED", "RESOURCE_EXHAUSTED"}


@dataclass(frozen=True)
class FleetConfig:
    """What every simulated agent of one worker process is told (picklable)."""

    target: str
    agent_ids: tuple[str, ...]
    agents_per_channel: int = 50
    install_delay: float = 0.004
    unpack: bool = False
    metrics_per_batch: int = 6
    metric_interval: float = 10.0
    labels: dict[str, str] = field(default_factory=dict)
    #: The server's CA and a multi-use enrollment token: every agent enrolls once, then
    #: connects over mutual TLS on a channel (TCP connection) of its own, as its identity is
    #: the connection's client certificate (``agents_per_channel`` does not apply).
    ca_pem: bytes = b""
    token: str = ""


class InstallError(Exception):
    """A wheel failed verification (size, sha256 or a RECORD hash): the plugin is failed."""


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify_wheel(data: bytes, unpack_to: Path | None = None) -> int:
    """Check every RECORD hash of the wheel in ``data`` (and unpack it when asked); return the
    number of files checked. Raises :class:`InstallError` on any mismatch."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        records = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
        if len(records) != 1:
            raise InstallError("the wheel has no single .dist-info/RECORD")
        rows = list(csv.reader(io.StringIO(archive.read(records[0]).decode())))
        checked = 0
        for row in rows:
            if not row or not row[0] or row[0] == records[0]:
                continue
            path, hash_, _size = row[0], row[1], row[2] if len(row) > 2 else ""
            content = archive.read(path)
            if hash_ and _record_hash(content) != hash_:
                raise InstallError(f"RECORD hash mismatch for {path}")
            if unpack_to is not None:
                target = unpack_to / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            checked += 1
        return checked


class SimAgent:
    """One simulated agent; :meth:`run` keeps it connected until cancelled."""

    def __init__(self, agent_id: str, stub: Any, config: FleetConfig) -> None:
        self.agent_id = agent_id
        self.stub = stub
        self.config = config
        self.installed: dict[str, tuple[str, str]] = {}   # name -> (version, sha256)
        self.statuses: dict[str, Any] = {}                # name -> pb.PluginStatus
        self.applied_revision = 0
        self.welcomed = asyncio.Event()
        self.welcomed_at = 0.0
        self.first_desired_at = 0.0
        self.final_at: dict[int, float] = {}              # revision -> complete report sent
        self.desired_at: dict[int, float] = {}            # revision -> desired state received
        self.fetched_at: dict[int, float] = {}            # revision -> its wheels downloaded
        self.heartbeat_interval = 10.0
        self.sessions = 0
        self.reconnects = 0
        self.errors: list[str] = []
        self.downloads = 0
        self.download_bytes = 0
        self.download_retries = 0
        self.heartbeats = 0
        self.metric_batches = 0
        self.metrics_on = False
        self._call: Any = None
        self._write_lock = asyncio.Lock()
        self._latest: Any = None
        self._wake = asyncio.Event()
        self._applying = False
        self.applied_event = asyncio.Event()

    def _error(self, text: str) -> None:
        self.errors.append(f"{time.strftime('%H:%M:%S')} {self.agent_id}: {text}"[:300])

    # ------------------------------------------------------------------ wire

    async def send(self, message: Any) -> bool:
        call = self._call
        if call is None:
            return False
        async with self._write_lock:
            try:
                await call.write(message)
            except Exception as exc:  # the stream broke: the session loop reconnects
                self._error(f"write failed: {exc!r}")
                return False
        return True

    def _register(self) -> Any:
        from arcade_core.rpc.v1 import pb

        return pb.AgentMessage(register=pb.Register(
            agent_id=self.agent_id, hostname=f"host-{self.agent_id}", ip="127.0.0.1",
            os="linux", arch="x86_64", agent_version="0.1.0", python_version="3.11",
            labels=dict(self.config.labels),
            plugins=[s for s in self.statuses.values() if _state_of(s) != PluginState.REMOVED],
            applied_revision=self.applied_revision,
        ))

    async def run(self) -> None:
        """Connect, and reconnect with jittered backoff (0.5 s doubling to 5 s, the agent's
        own cap) forever."""
        import grpc

        reconcile = asyncio.create_task(self._reconcile_loop())
        attempt = 0
        try:
            while True:
                try:
                    if await self._session():
                        attempt = 0
                    self._error("the server ended the stream")
                except grpc.aio.AioRpcError as exc:
                    self._error(f"{exc.code().name}: {exc.details()}")
                except Exception as exc:
                    self._error(repr(exc))
                self._call = None
                self.reconnects += 1
                delay = min(5.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)
                attempt += 1
                await asyncio.sleep(delay)
        finally:
            reconcile.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconcile

    async def _session(self) -> bool:
        import grpc

        call = self.stub.Connect()
        self._call = call
        welcomed = False
        heartbeat: asyncio.Task[None] | None = None
        metrics: asyncio.Task[None] | None = None
        try:
            await call.write(self._register())
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    return welcomed
                kind = message.WhichOneof("body")
                if kind == "welcome":
                    welcomed = True
                    self.sessions += 1
                    if message.welcome.heartbeat_interval > 0:
                        self.heartbeat_interval = message.welcome.heartbeat_interval
                    self.welcomed_at = time.time()
                    self.welcomed.set()
                    heartbeat = asyncio.create_task(self._heartbeats())
                    metrics = asyncio.create_task(self._metrics())
                elif kind == "desired":
                    if not self.first_desired_at:
                        self.first_desired_at = time.time()
                    self._latest = message.desired
                    self.desired_at.setdefault(message.desired.revision, time.time())
                    self._wake.set()
        finally:
            self._call = None
            for task in (heartbeat, metrics):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            call.cancel()

    async def _heartbeats(self) -> None:
        from arcade_core.rpc.v1 import pb

        await asyncio.sleep(random.uniform(0, self.heartbeat_interval))
        while True:
            if await self.send(pb.AgentMessage(heartbeat=pb.Heartbeat(
                applied_revision=self.applied_revision, sent_at=time.time(),
            ))):
                self.heartbeats += 1
            await asyncio.sleep(self.heartbeat_interval)

    async def _metrics(self) -> None:
        from arcade_core.rpc.v1 import pb

        interval = self.config.metric_interval
        names = ["cpu.percent", "cpu.user", "cpu.system", "memory.rss", "memory.available",
                 "memory.percent", "load.1m", "load.5m", "disk.used", "net.bytes_sent"]
        await asyncio.sleep(random.uniform(0, interval))
        while True:
            if self.metrics_on:
                now = time.time()
                batch = pb.MetricBatch(metrics=[
                    pb.Metric(plugin="cpu" if n.startswith("cpu") else "memory", name=n,
                              value=random.random() * 100, unit="%", timestamp=now,
                              labels={"host": f"host-{self.agent_id}"})
                    for n in (names * 4)[: self.config.metrics_per_batch]
                ])
                if await self.send(pb.AgentMessage(metrics=batch)):
                    self.metric_batches += 1
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ reconcile

    def _status(self, name: str, version: str, state: PluginState, error: str = "",
                sha256: str = "") -> None:
        from arcade_core.rpc.v1 import pb
        from arcade_core.rpc.v1.convert import to_pb
        from arcade_core.states import Isolation

        self.statuses[name] = pb.PluginStatus(
            name=name, version=version, state=to_pb(state), error=error,
            isolation=to_pb(Isolation.INLINE),
            sha256=sha256,
        )

    async def _report(self, revision: int, complete: bool) -> None:
        from arcade_core.rpc.v1 import pb

        await self.send(pb.AgentMessage(status=pb.PluginStatusReport(
            revision=revision, plugins=list(self.statuses.values()), complete=complete,
        )))

    async def _reconcile_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            desired = self._latest
            if desired is None:
                continue
            try:
                await self._apply(desired)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._error(f"reconcile of revision {desired.revision}: {exc!r}")

    async def _apply(self, desired: Any) -> None:
        for name, status in list(self.statuses.items()):
            if _state_of(status) == PluginState.REMOVED:
                del self.statuses[name]
        wanted = {p.name: p for p in desired.plugins}
        changed = False
        for name in [n for n in self.installed if n not in wanted]:
            version, _sha = self.installed.pop(name)
            self._status(name, version, PluginState.REMOVED)
            changed = True
        todo = [p for p in wanted.values()
                if not p.wheels or self.installed.get(p.name) != (p.version, p.wheels[0].sha256)]
        if todo:
            for p in todo:
                self._status(p.name, p.version, PluginState.DOWNLOADING)
            await self._report(desired.revision, complete=False)
            blobs: dict[str, dict[str, bytes]] = {}
            for p in todo:
                try:
                    blobs[p.name] = {w.sha256: await self._download(w) for w in p.wheels}
                except Exception as exc:
                    self._status(p.name, p.version, PluginState.FAILED, f"download: {exc}")
            self.fetched_at[desired.revision] = time.time()
            for p in todo:
                if p.name in blobs:
                    self._status(p.name, p.version, PluginState.INSTALLING)
            await self._report(desired.revision, complete=False)
            for p in todo:
                if p.name not in blobs:
                    continue
                try:
                    await self._install(list(blobs[p.name].values()))
                except InstallError as exc:
                    self._status(p.name, p.version, PluginState.FAILED, str(exc))
                    continue
                self.installed[p.name] = (p.version, p.wheels[0].sha256)
                self._status(p.name, p.version, PluginState.RUNNING, sha256=p.wheels[0].sha256)
            changed = True
        if changed or desired.revision != self.applied_revision:
            self.applied_revision = desired.revision
            await self._report(desired.revision, complete=True)
        self.final_at[desired.revision] = time.time()
        self.applied_event.set()

    async def _download(self, wheel: Any) -> bytes:
        """Stream one wheel through ``DownloadWheel``, resuming after transient errors."""
        import grpc

        from arcade_core.rpc.v1 import pb

        data = bytearray()
        for attempt in range(5):
            try:
                call = self.stub.DownloadWheel(pb.DownloadRequest(
                    agent_id=self.agent_id, sha256=wheel.sha256, offset=len(data)))
                async for chunk in call:
                    if chunk.offset != len(data):
                        raise InstallError(f"chunk at offset {chunk.offset}, expected {len(data)}")
                    data += chunk.data
                break
            except grpc.aio.AioRpcError as exc:
                self._error(f"download attempt {attempt + 1} of {wheel.filename} at byte "
                            f"{len(data)}: {exc.code().name} {exc.details()}")
                if exc.code().name not in _TRANSIENT or attempt == 4:
                    raise
                self.download_retries += 1
                await asyncio.sleep(0.2 * 2**attempt * random.uniform(0.5, 1.0))
        blob = bytes(data)
        if len(blob) != wheel.size:
            raise InstallError(f"{wheel.filename}: got {len(blob)} bytes, expected {wheel.size}")
        if hashlib.sha256(blob).hexdigest() != wheel.sha256:
            raise InstallError(f"{wheel.filename}: sha256 mismatch")
        self.downloads += 1
        self.download_bytes += len(blob)
        return blob

    async def _install(self, wheels: Sequence[bytes]) -> None:
        if self.config.unpack:
            def unpack() -> None:
                root = Path(tempfile.mkdtemp(prefix="fleet-env-"))
                try:
                    for blob in wheels:
                        verify_wheel(blob, root)
                finally:
                    shutil.rmtree(root, ignore_errors=True)

            await asyncio.to_thread(unpack)
        else:
            for blob in wheels:
                verify_wheel(blob)
        if self.config.install_delay > 0:
            await asyncio.sleep(self.config.install_delay)


# ---------------------------------------------------------------------- worker process


class Command:
    """Names of the commands a worker answers (first item of each message on the pipe)."""

    CONNECT = "connect"      # start every agent; answer when all are welcomed (or timeout)
    WAIT = "wait"            # (expected {name: version}, timeout): until every agent has it
    METRICS = "metrics"      # (on: bool)
    STATS = "stats"          # counters and this process's CPU / RSS
    REJOIN = "rejoin"        # (since, timeout): until every agent was welcomed after `since`
    STOP = "stop"


def _check(agent: SimAgent, expected: dict[str, str]) -> bool:
    if agent._latest is None or agent.applied_revision != agent._latest.revision:
        return False
    if {n: v for n, (v, _s) in agent.installed.items()} != expected:
        return False
    states = [_state_of(s) for s in agent.statuses.values()]
    return all(state == PluginState.RUNNING for state in states if state != PluginState.REMOVED)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _worker(pipe: Pipe, config: FleetConfig) -> None:
    import grpc

    from arcade_core.rpc.v1 import pb_grpc

    loop = asyncio.get_running_loop()
    options = [
        # a channel of its own: its own TCP connection, as separate machines would have
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.initial_reconnect_backoff_ms", 500),
        ("grpc.max_reconnect_backoff_ms", 5_000),
        ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ]
    if config.token:
        credentials = await _enroll_all(config)
        n_channels = len(config.agent_ids)
        channels = [grpc.aio.secure_channel(config.target, credentials[agent_id].channel(),
                                            options=options)
                    for agent_id in config.agent_ids]
    else:
        n_channels = max(1, -(-len(config.agent_ids) // max(1, config.agents_per_channel)))
        channels = [grpc.aio.insecure_channel(config.target, options=options)
                    for _ in range(n_channels)]
    stubs = [pb_grpc.AgentServiceStub(c) for c in channels]  # type: ignore[no-untyped-call]
    agents = [SimAgent(agent_id, stubs[i * n_channels // len(config.agent_ids)], config)
              for i, agent_id in enumerate(config.agent_ids)]
    tasks: list[asyncio.Task[None]] = []
    pipe.send({"ready": True, "channels": n_channels})
    try:
        while True:
            command, args = await loop.run_in_executor(None, pipe.recv)
            if command == Command.CONNECT:
                (timeout,) = args
                started = time.time()
                tasks = [asyncio.create_task(a.run()) for a in agents]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        asyncio.gather(*(a.welcomed.wait() for a in agents)), timeout)
                ready = [a for a in agents if a.welcomed.is_set()]
                # Registered = welcomed AND the first desired state arrived.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(1.0, started + timeout - time.time())):
                        while not all(a.first_desired_at for a in ready):
                            await asyncio.sleep(0.01)
                pipe.send({
                    "started": started, "welcomed": len(ready),
                    "retries": sum(a.reconnects for a in agents),
                    "welcomed_at": [a.welcomed_at for a in ready],
                    "desired_at": [a.first_desired_at for a in ready if a.first_desired_at],
                })
            elif command == Command.WAIT:
                expected, timeout = args
                deadline = time.monotonic() + timeout
                while True:
                    behind = [a for a in agents if not _check(a, expected)]
                    if not behind or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.01)
                pipe.send({
                    "ok": len(agents) - len(behind), "behind": [a.agent_id for a in behind],
                    "all_errors": [e for a in agents for e in a.errors],
                    "final_at": [a.final_at.get(a.applied_revision, 0.0) for a in agents],
                    "desired_at": [a.desired_at.get(a.applied_revision, 0.0) for a in agents],
                    "fetched_at": [a.fetched_at.get(a.applied_revision, 0.0) for a in agents],
                    "cpu_s": _cpu(),
                    "errors": [e for a in behind for e in a.errors[-2:]][:10],
                })
            elif command == Command.METRICS:
                (on,) = args
                for a in agents:
                    a.metrics_on = on
                pipe.send({"ok": True})
            elif command == Command.STATS:
                usage = resource.getrusage(resource.RUSAGE_SELF)
                pipe.send({
                    "cpu_s": _cpu(),
                    "agents": len(agents),
                    "connected": sum(1 for a in agents if a._call is not None),
                    "reconnects": sum(a.reconnects for a in agents),
                    "errors": [e for a in agents for e in a.errors][-10:],
                    "error_count": sum(len(a.errors) for a in agents),
                    "heartbeats": sum(a.heartbeats for a in agents),
                    "metric_batches": sum(a.metric_batches for a in agents),
                    "downloads": sum(a.downloads for a in agents),
                    "download_bytes": sum(a.download_bytes for a in agents),
                    "download_retries": sum(a.download_retries for a in agents),
                    "max_rss_kb": usage.ru_maxrss,
                })
            elif command == Command.REJOIN:
                since, timeout = args
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and not all(
                        a.welcomed_at >= since and a._call is not None for a in agents):
                    await asyncio.sleep(0.01)
                back = [a.welcomed_at for a in agents if a.welcomed_at >= since]
                pipe.send({"back": len(back), "last": max(back, default=0.0)})
            elif command == Command.STOP:
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(c.close(grace=None) for c in channels), return_exceptions=True)
        with contextlib.suppress(Exception):
            pipe.send({"stopped": True})


async def _enroll_all(config: FleetConfig, concurrency: int = 32) -> dict[str, Any]:
    """Enroll every agent of this worker (a new key each) with the fleet's token."""
    import grpc

    from arcade_agent.identity import Credentials, make_csr
    from arcade_core.rpc.v1 import pb, pb_grpc
    from arcade_core.rpc.v1.anonymous import ANONYMOUS_CERT_PEM, ANONYMOUS_KEY_PEM

    anonymous = grpc.ssl_channel_credentials(config.ca_pem, ANONYMOUS_KEY_PEM,
                                             ANONYMOUS_CERT_PEM)
    gate = asyncio.Semaphore(concurrency)
    out: dict[str, Any] = {}
    async with grpc.aio.secure_channel(config.target, anonymous) as channel:
        stub = pb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]

        async def one(agent_id: str) -> None:
            async with gate:
                key, csr = make_csr(agent_id)
                answer = await stub.Enroll(pb.EnrollRequest(
                    token=config.token, agent_id=agent_id, csr_pem=csr.decode()), timeout=120)
                out[agent_id] = Credentials(key, answer.certificate_pem.encode(),
                                            answer.ca_pem.encode())

        await asyncio.gather(*(one(agent_id) for agent_id in config.agent_ids))
    return out


def worker_main(pipe: Pipe, config: FleetConfig) -> None:
    """Entry point of one worker process (multiprocessing ``spawn``)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * len(config.agent_ids) + 256))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
    asyncio.run(_worker(pipe, config))


def _state_of(status: Any) -> PluginState | None:
    """The vocabulary word of a ``PluginStatus`` message's state."""
    from arcade_core.rpc.v1.convert import from_pb

    return from_pb(PluginState, status.state)
