"""The floor of ``benchmarks/fleet.py``: a bare grpc.aio ``arcade.v1.AgentService``, nothing else.

Why: the fleet benchmark's absolute figures depend on the machine (a busy shared 2-core box
takes twice as long as a quiet one). This process is what ANY server of the same protocol must
at least do for the same simulated agents, measured in the same run on the same machine: the
real server's figure divided by the floor's is the overhead of Arcade's server.

What it does, and nothing more: the same TLS as ``arcade server`` (its CA and server
certificate made by :func:`arcade_server.tls.load_tls` in ``--home``, a client certificate
required: an agent's or the well-known anonymous one for ``Enroll``), the same gRPC options;
``Enroll`` signs the agent's CSR with that CA when the token (``ARCADE_FLOOR_TOKEN``) matches;
``Connect`` reads the agent id from the verified certificate, checks ``Register`` names it,
answers ``Welcome`` and the current ``DesiredState`` (the message the real server builds for
the same plugin and wheel: default isolation, ``{}`` config, the manifest's interval), then
forwards pushes; heartbeats and metric batches are read and dropped; status reports are
counted. ``DownloadWheel`` serves the wheels of the current desired state from memory in the
real server's chunk size. No database, no REST, no services, no audit.

Control: one JSON object a line on stdin, one answer a line on stdout (the first line says
where it listens)::

    {"cmd": "status"}                                  -> {"connected": 1000}
    {"cmd": "rollout", "plugin": "p", "version": "1.0.0" | null, "expect": N, "timeout": s}
        -> {"revision": 3, "converged": true, "seconds": 0.41}

``rollout`` pushes a new revision to every open stream (``version`` null removes the plugin)
and answers once ``expect`` agents sent a complete report for it with the plugin running (or,
for a removal, gone). ``--revision`` and ``--desired`` start it with a state already rolled out
(the restart of the reconnect storm). SIGTERM closes every stream, then stops.

    python benchmarks/_floor_server.py --home DIR --wheels DIR [--grpc-port 0]
        [--heartbeat 10] [--chunk-size 524288] [--revision 0] [--desired name@version]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from arcade_core import Manifest, __version__
from arcade_core.rpc.v1 import pb, pb_grpc
from arcade_core.rpc.v1.anonymous import ANONYMOUS_CERT_PEM
from arcade_core.rpc.v1.convert import to_pb
from arcade_core.states import Isolation, PluginState
from arcade_server.tls import CertificateAuthority, InvalidCSR, ServerTLS, agent_id_of, load_tls

__all__ = ["GRPC_OPTIONS", "FloorService", "Wheel", "main"]

log = logging.getLogger("arcade.floor")

#: The same transport options as ``arcade_server.runner.grpc_options`` gives a server with
#: default settings (copied, so this process does not import the server's web stack;
#: ``fleet.py`` checks they are equal).
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.server.max_pending_requests", 20_000),
    ("grpc.server.max_pending_requests_hard_limit", 40_000),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_RUNNING = to_pb(PluginState.RUNNING)
_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-")


@dataclass(frozen=True)
class Wheel:
    """One wheel held in memory, as the real server's blob cache holds a small one."""

    name: str
    version: str
    filename: str
    sha256: str
    data: bytes


def load_wheels(directory: Path) -> dict[tuple[str, str], Wheel]:
    """Every ``*.whl`` of ``directory`` by (distribution name with dashes, version)."""
    out: dict[tuple[str, str], Wheel] = {}
    for path in sorted(directory.glob("*.whl")):
        match = _WHEEL_NAME.match(path.name)
        if match is None:
            continue
        data = path.read_bytes()
        name = match["name"].replace("_", "-")
        out[(name, match["version"])] = Wheel(name, match["version"], path.name,
                                              hashlib.sha256(data).hexdigest(), data)
    return out


class _Rollout:
    """The agents that confirmed one revision."""

    def __init__(self, revision: int, plugin: str, version: str | None, expect: int) -> None:
        self.revision, self.plugin, self.version, self.expect = revision, plugin, version, expect
        self.done: set[str] = set()
        self.converged = asyncio.Event()

    def report(self, agent_id: str, report: Any) -> None:
        if report.revision != self.revision or not report.complete:
            return
        mine = [p for p in report.plugins if p.name == self.plugin]
        if self.version is None:
            ok = all(p.state != _RUNNING for p in mine)
        else:
            ok = any(p.state == _RUNNING and p.version == self.version for p in mine)
        if ok:
            self.done.add(agent_id)
            if len(self.done) >= self.expect:
                self.converged.set()


class FloorService(pb_grpc.AgentServiceServicer):
    """The least an ``AgentService`` does for the fleet benchmark's agents (module docstring)."""

    def __init__(self, tls: ServerTLS, token: str, wheels: dict[tuple[str, str], Wheel],
                 heartbeat: float, chunk_size: int) -> None:
        self.tls, self.token, self.wheels = tls, token, wheels
        self.heartbeat, self.chunk_size = heartbeat, chunk_size
        self.revision = 0
        self.desired: list[Wheel] = []
        self.desired_message = self._build()
        self.streams: dict[str, asyncio.Queue[Any]] = {}
        self.rollout: _Rollout | None = None
        self._peers: dict[bytes, str | None] = {}

    # ---------------------------------------------------------------- state

    def _build(self) -> Any:
        manifest = Manifest()   # the wheels carry no arcade-plugin.json: its defaults
        return pb.ServerMessage(desired=pb.DesiredState(
            revision=self.revision,
            plugins=[pb.DesiredPlugin(
                name=w.name, version=w.version, isolation=to_pb(Isolation(manifest.isolation)),
                config_json=json.dumps({}, sort_keys=True, separators=(",", ":")),
                interval=float(manifest.interval or 0.0),
                wheels=[pb.WheelRef(filename=w.filename, sha256=w.sha256, size=len(w.data))],
            ) for w in self.desired],
        ))

    def set_desired(self, revision: int, plugin: str, version: str | None) -> None:
        """Make ``plugin`` at ``version`` (None: no plugin) the state at ``revision``."""
        self.revision = revision
        self.desired = [self.wheels[(plugin, version)]] if version is not None else []
        self.desired_message = self._build()

    async def roll_out(self, plugin: str, version: str | None, expect: int,
                       timeout: float) -> dict[str, Any]:
        started = time.perf_counter()
        self.set_desired(self.revision + 1, plugin, version)
        rollout = self.rollout = _Rollout(self.revision, plugin, version, expect)
        message = self.desired_message
        for queue in self.streams.values():
            queue.put_nowait(message)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rollout.converged.wait(), timeout)
        return {"revision": self.revision, "converged": rollout.converged.is_set(),
                "confirmed": len(rollout.done), "seconds": time.perf_counter() - started}

    # ---------------------------------------------------------------- identity

    def _agent_id(self, context: grpc.aio.ServicerContext) -> str | None:
        """The agent id bound by the call's verified client certificate (None: anonymous)."""
        values = context.auth_context().get("x509_pem_cert")
        if not values:
            return None
        pem: bytes = values[0]
        if pem not in self._peers:
            from cryptography import x509

            cert = x509.load_pem_x509_certificate(pem)
            self._peers[pem] = agent_id_of(cert) if self.tls.ca.signed(cert) else None
        return self._peers[pem]

    # ---------------------------------------------------------------- RPCs

    async def Enroll(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if not hmac.compare_digest(request.token.encode(), self.token.encode()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown enrollment token")
        ca: CertificateAuthority = self.tls.ca
        try:
            issued = await asyncio.to_thread(ca.sign_agent, request.csr_pem.encode(),
                                             request.agent_id, dt.timedelta(days=1))
        except InvalidCSR as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return pb.EnrollResponse(certificate_pem=issued.pem.decode(), ca_pem=ca.pem.decode(),
                                 not_after=issued.not_after.timestamp())

    async def Connect(self, request_iterator: AsyncIterator[Any],
                      context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        agent_id = self._agent_id(context)
        if agent_id is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "needs an agent certificate")
        assert agent_id is not None
        first = await context.read()
        if first is grpc.aio.EOF:
            return
        if first.WhichOneof("body") != "register" or first.register.agent_id != agent_id:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                "the first message must be Register with the certificate's id")
        queue: asyncio.Queue[Any] = asyncio.Queue()
        old = self.streams.get(agent_id)
        if old is not None:
            old.put_nowait(None)
        self.streams[agent_id] = queue
        reader = asyncio.create_task(self._read(agent_id, context, queue))
        try:
            yield pb.ServerMessage(welcome=pb.Welcome(
                agent_id=agent_id, server_version=__version__,
                heartbeat_interval=self.heartbeat))
            yield self.desired_message
            while (item := await queue.get()) is not None:
                yield item
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            if self.streams.get(agent_id) is queue:
                del self.streams[agent_id]

    async def _read(self, agent_id: str, context: grpc.aio.ServicerContext,
                    queue: asyncio.Queue[Any]) -> None:
        try:
            while (message := await context.read()) is not grpc.aio.EOF:
                if message.WhichOneof("body") == "status" and self.rollout is not None:
                    self.rollout.report(agent_id, message.status)
        except Exception as exc:  # the stream broke: end the response too
            log.debug("agent %s stream read ended: %s", agent_id, exc)
        finally:
            queue.put_nowait(None)

    async def DownloadWheel(self, request: Any,
                            context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        agent_id = self._agent_id(context)
        if agent_id is None or (request.agent_id and request.agent_id != agent_id):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not this agent's download")
        sha256 = request.sha256.strip().lower()
        if not _SHA256.match(sha256):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "sha256 is not a hex digest")
        wheel = next((w for w in self.desired if w.sha256 == sha256), None)
        if wheel is None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not in the desired state")
        assert wheel is not None
        size, offset, chunk = len(wheel.data), request.offset, self.chunk_size
        if not 0 <= offset <= size:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "offset out of range")
        if offset == 0 and size <= chunk:
            yield pb.WheelChunk(data=wheel.data, offset=0, total_size=size)
            return
        view = memoryview(wheel.data)
        while True:
            yield pb.WheelChunk(data=bytes(view[offset:offset + chunk]), offset=offset,
                                total_size=size)
            offset += chunk
            if offset >= size:
                return


def _answer(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _control(service: FloorService) -> None:
    """Answer the benchmark's commands on stdin until it closes."""
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command = json.loads(line)
        if command["cmd"] == "status":
            _answer({"connected": len(service.streams)})
        elif command["cmd"] == "rollout":
            _answer(await service.roll_out(command["plugin"], command["version"],
                                           int(command["expect"]), float(command["timeout"])))
        else:
            _answer({"error": f"unknown command {command['cmd']!r}"})


async def serve(args: argparse.Namespace) -> None:
    tls = await asyncio.to_thread(load_tls, Path(args.home))
    service = FloorService(tls, os.environ.get("ARCADE_FLOOR_TOKEN", ""),
                           load_wheels(Path(args.wheels)), args.heartbeat, args.chunk_size)
    name, _, version = args.desired.partition("@")
    service.set_desired(args.revision, name, version or None)
    server = grpc.aio.server(options=GRPC_OPTIONS)
    pb_grpc.add_AgentServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    chain = tls.cert_pem if tls.ca.pem in tls.cert_pem else tls.cert_pem + tls.ca.pem
    credentials = grpc.ssl_server_credentials(
        [(tls.key_pem, chain)], root_certificates=tls.ca.pem + ANONYMOUS_CERT_PEM,
        require_client_auth=True)
    port = server.add_secure_port(f"127.0.0.1:{args.grpc_port}", credentials)
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    _answer({"grpc_target": f"127.0.0.1:{port}", "ca": str(Path(args.home) / "tls" / "ca.pem")})
    control = asyncio.create_task(_control(service))
    await asyncio.wait([control, asyncio.create_task(stopping.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    for queue in service.streams.values():   # as the real server: streams end at once
        queue.put_nowait(None)
    await server.stop(5)
    os._exit(0)   # the control thread may still block on stdin


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", required=True, help="where tls/ (CA, server cert) lives")
    parser.add_argument("--wheels", required=True, help="directory of the wheels to serve")
    parser.add_argument("--grpc-port", type=int, default=0)
    parser.add_argument("--heartbeat", type=float, default=10.0)
    parser.add_argument("--chunk-size", type=int, default=512 * 1024)
    parser.add_argument("--revision", type=int, default=0)
    parser.add_argument("--desired", default="", help="name@version already rolled out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
