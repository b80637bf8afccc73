"""A throwaway ``arcade server`` with data in it, for fuzzing the REST API against its schema.

:class:`LiveServer` starts the real ``arcade server`` process (``tests.e2e.harness.Server``:
loopback ports chosen by the OS, a temp home, SQLite), publishes two real plugin wheels (one
with a dependency wheel and a config schema), registers an agent over gRPC and keeps its
stream open (so it is online and connected), installs a plugin on it and creates a job: every
route has something real to answer about. ``scripts/fuzz-api`` and the bounded e2e test in
``test_fuzz.py`` both use it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from arcade_agent.identity import Credentials, make_csr
from arcade_core.rpc.v1 import pb, pb_grpc
from arcade_core.rpc.v1.anonymous import ANONYMOUS_CERT_PEM, ANONYMOUS_KEY_PEM
from tests.e2e.harness import Server, wait_until
from tests.server.helpers import SCHEMA_MANIFEST, dependency_wheel, plugin_wheel
from tests.server.package_index import LocalIndex
from tests.waiting import DEADLINE
from tests.wheelmaker import make_wheel

__all__ = ["AGENT_ID", "PLUGINS", "LiveServer"]

AGENT_ID = "fuzz-agent"
PLUGINS = ("fuzz-collector", "fuzz-notifier")
#: Short limits so a fuzzer's ``?wait=`` and uploads stay quick (the schema states them).
FUZZ_ENV = {
    "ARCADE_SERVER_MAX_WAIT": "1",
    "ARCADE_SERVER_MAX_UPLOAD_BYTES": "1MiB",
    "ARCADE_SERVER_METRIC_QUERY_LIMIT": "500",
}


class _Agent:
    """The agent side of ``Connect`` over a sync channel: registers, then heartbeats until
    closed; the server's messages are read (and dropped) by a thread."""

    def __init__(self, target: str, agent_id: str, ca_pem: bytes, token: str) -> None:
        key, csr = make_csr(agent_id)
        anonymous = grpc.ssl_channel_credentials(ca_pem, ANONYMOUS_KEY_PEM, ANONYMOUS_CERT_PEM)
        with grpc.secure_channel(target, anonymous) as channel:
            answer = pb_grpc.AgentServiceStub(channel).Enroll(  # type: ignore[no-untyped-call]
                pb.EnrollRequest(token=token, agent_id=agent_id, csr_pem=csr.decode()),
                timeout=DEADLINE)
        credentials = Credentials(key, answer.certificate_pem.encode(), ca_pem)
        self.channel = grpc.secure_channel(target, credentials.channel())
        self.outbox: queue.Queue[Any] = queue.Queue()
        self.outbox.put(pb.AgentMessage(register=pb.Register(
            agent_id=agent_id, hostname="fuzz-host", ip="127.0.0.1", os="linux",
            arch="x86_64", agent_version="0.1.0", python_version="3.11",
            labels={"role": "fuzz"}, jobs_enabled=True,  # the seed creates a job on it
        )))
        stub = pb_grpc.AgentServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.call = stub.Connect(self._messages())
        self.reader = threading.Thread(target=self._read, name="fuzz-agent", daemon=True)
        self.reader.start()

    def _messages(self) -> Iterator[Any]:
        while True:
            try:
                message = self.outbox.get(timeout=2.0)
            except queue.Empty:
                message = pb.AgentMessage(heartbeat=pb.Heartbeat(sent_at=time.time()))
            if message is None:
                return
            yield message

    def _read(self) -> None:
        try:
            for _message in self.call:
                pass
        except grpc.RpcError:
            pass

    def close(self) -> None:
        self.outbox.put(None)
        self.call.cancel()
        self.reader.join(10)
        self.channel.close()


class LiveServer:
    """``with LiveServer(tmp) as live: live.url`` — a seeded real server on loopback."""

    def __init__(self, directory: Path, *, token: str | None = None) -> None:
        """``token``: the server's admin token (``ARCADE_SERVER_ADMIN_TOKEN``; default: the
        harness's random one), sent as ``Authorization: Bearer`` on every call."""
        self.directory = directory
        self.token = token
        self.server = Server(directory / "home", directory / "server.log")
        self.server.env.update(FUZZ_ENV)
        if token is not None:  # instead of the harness's random one
            self.server.admin_token = token
            self.server.env["ARCADE_SERVER_ADMIN_TOKEN"] = token
            self.server.http.headers.update(self.server.auth_headers)
        self.agent: _Agent | None = None
        self.index: LocalIndex | None = None

    @property
    def url(self) -> str:
        """The server's origin (``http://127.0.0.1:PORT``); the API is under ``/api/v1``."""
        return self.server.url

    def __enter__(self) -> LiveServer:
        # Imports read this empty local index only (index_allow): no generated request makes
        # the server fetch from anywhere else, so none waits on the network.
        self.index = LocalIndex(self.directory / "index")
        self.server.env.update(ARCADE_SERVER_INDEX_URL=self.index.url,
                               ARCADE_SERVER_INDEX_ALLOW=self.index.url)
        self.server.start()
        try:
            self._seed()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.agent is not None:
            self.agent.close()
            self.agent = None
        self.server.stop()
        self.server.http.close()
        if self.index is not None:
            self.index.close()
            self.index = None

    def _publish(self, *wheels: Path) -> None:
        files = [("wheels", (w.name, w.read_bytes(), "application/octet-stream"))
                 for w in wheels]
        response = self.server.http.post("/plugins", files=files)
        assert response.status_code in (200, 201), response.text

    def _seed(self) -> None:
        http = self.server.http
        wheels = self.directory / "wheels"
        collector, notifier = PLUGINS
        self._publish(plugin_wheel(wheels, collector, "1.0.0", requires=["fuzz-dep"]),
                      dependency_wheel(wheels, "fuzz-dep", "1.0.0"))
        self._publish(plugin_wheel(wheels, collector, "1.1.0", requires=["fuzz-dep"]),
                      dependency_wheel(wheels, "fuzz-dep", "1.0.0"))
        self._publish(make_wheel(wheels, notifier, "0.1.0", manifest={
            **SCHEMA_MANIFEST, "type": "notifier", "isolation": "process"}))
        token = self.server.enrollment_env()["ARCADE_AGENT_ENROLL_TOKEN"]
        ca_pem = (self.server.home / "tls" / "ca.pem").read_bytes()
        self.agent = _Agent(f"127.0.0.1:{self.server.grpc_port}", AGENT_ID, ca_pem, token)
        wait_until(lambda: http.get(f"/agents/{AGENT_ID}").status_code == 200,
                   what="the fuzz agent to register")
        installed = http.post(f"/agents/{AGENT_ID}/plugins",
                              json={"plugin": f"{collector}@1.0.0"})
        assert installed.status_code == 202, installed.text
        job = http.post("/jobs", json={"agent": AGENT_ID, "commands": ["true"], "plugins": [
            {"plugin": notifier, "stage": "notify"}]})
        assert job.status_code == 201, job.text
