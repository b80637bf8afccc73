"""Test helpers: unique plugin names, real wheels published through the REST API, and a
real gRPC client that speaks the agent side of ``arcade.v1`` (register, report, download)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import grpc
import httpx
from sqlalchemy import Connection, Table, select

from arcade_core.rpc.v1 import pb, pb_grpc
from arcade_core.rpc.v1.convert import to_pb
from arcade_core.states import Isolation, PluginState
from tests.waiting import DEADLINE
from tests.wheelmaker import make_wheel

SCHEMA_MANIFEST = {
    "description": "a test plugin",
    "type": "collector",
    "interval": 5,
    "config_schema": {
        "type": "object",
        "properties": {
            "threshold": {"type": "integer", "minimum": 0, "default": 10},
            "label": {"type": "string", "default": "x"},
        },
        "additionalProperties": False,
    },
}


def unique(prefix: str = "plug") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def plugin_wheel(directory: Path, name: str, version: str = "1.0.0", **kwargs: Any) -> Path:
    kwargs.setdefault("manifest", SCHEMA_MANIFEST)
    return make_wheel(directory, name, version, **kwargs)


def dependency_wheel(directory: Path, name: str, version: str = "1.0.0") -> Path:
    module = name.replace("-", "_")
    return make_wheel(directory, name, version, entry_points=[],
                      files={f"{module}/__init__.py": "VALUE = 1\n"})


def upload(api: httpx.Client, *paths: Path, url: str = "/plugins") -> httpx.Response:
    files = [("wheels", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
    return api.post(url, files=files)


def publish(api: httpx.Client, *paths: Path) -> dict[str, Any]:
    response = upload(api, *paths)
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


class ProtocolAgent:
    """The agent end of ``Connect``/``DownloadWheel`` over a real grpc.aio channel.

    Like a real agent it runs no jobs unless it opts in: ``jobs_enabled`` (and
    ``jobs_allow`` patterns) are what its ``Register`` says."""

    def __init__(self, target: str, agent_id: str | None = None, *,
                 jobs_enabled: bool = False, jobs_allow: Iterable[str] = ()) -> None:
        self.agent_id = agent_id or unique("agent")
        self.jobs_enabled = jobs_enabled
        self.jobs_allow = list(jobs_allow)
        self.channel = grpc.aio.insecure_channel(target)
        self.stub = pb_grpc.AgentServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self._outbox: asyncio.Queue[Any] = asyncio.Queue()
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        self.call: Any = None

    async def _requests(self) -> AsyncIterator[Any]:
        while True:
            message = await self._outbox.get()
            if message is None:
                return
            yield message

    def open(self, first: Any) -> None:
        self._outbox.put_nowait(first)
        self.call = self.stub.Connect(self._requests())
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        # One reader for the stream's lifetime: timeouts in recv() never cancel a read.
        try:
            async for message in self.call:
                self._inbox.put_nowait(message)
        except BaseException as exc:  # the RPC ended with an error status: recv() raises it
            self._inbox.put_nowait(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def connect(
        self,
        labels: Mapping[str, str] | None = None,
        plugins: Iterable[Any] = (),
        applied_revision: int = 0,
    ) -> Any:
        """Register and return the Welcome message."""
        self.open(pb.AgentMessage(register=pb.Register(
            agent_id=self.agent_id, hostname="host-" + self.agent_id, ip="127.0.0.1",
            os="linux", arch="x86_64", agent_version="0.1.0", python_version="3.11",
            labels=dict(labels or {}), plugins=list(plugins), applied_revision=applied_revision,
            jobs_enabled=self.jobs_enabled, jobs_allow=self.jobs_allow,
        )))
        message = await self.recv()
        assert message.WhichOneof("body") == "welcome", message
        return message.welcome

    async def recv(self, timeout: float = DEADLINE) -> Any:
        item = await asyncio.wait_for(self._inbox.get(), timeout)
        if isinstance(item, BaseException):
            self._inbox.put_nowait(item)
            raise item
        return item

    async def desired(self, timeout: float = DEADLINE) -> Any:
        while True:
            message = await self.recv(timeout)
            if message.WhichOneof("body") == "desired":
                return message.desired

    def send(self, message: Any) -> None:
        self._outbox.put_nowait(message)

    def heartbeat(self, applied_revision: int = 0) -> None:
        self.send(pb.AgentMessage(heartbeat=pb.Heartbeat(applied_revision=applied_revision)))

    def report(self, revision: int, *statuses: Any, complete: bool = True) -> None:
        self.send(pb.AgentMessage(status=pb.PluginStatusReport(
            revision=revision, plugins=list(statuses), complete=complete,
        )))

    async def download(self, sha256: str, offset: int = 0) -> list[Any]:
        call = self.stub.DownloadWheel(
            pb.DownloadRequest(agent_id=self.agent_id, sha256=sha256, offset=offset)
        )
        return [chunk async for chunk in call]

    async def close(self) -> None:
        """End the stream and close the channel (again: nothing)."""
        if self._closed:
            return
        self._closed = True
        self._outbox.put_nowait(None)
        if self.call is not None:
            self.call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        await self.channel.close()


def status(name: str, version: str, state: str, **kwargs: Any) -> Any:
    if "isolation" in kwargs:
        kwargs["isolation"] = to_pb(Isolation(kwargs["isolation"]))
    return pb.PluginStatus(name=name, version=version, state=to_pb(PluginState(state)), **kwargs)


def db_row(conn: Connection, table: Table, *key: Any) -> Any:
    """The row of ``table`` with primary key ``key`` (in the table's key column order), or
    ``None``: what the tests check after a service call wrote it."""
    columns = list(table.primary_key.columns)
    assert len(columns) == len(key), f"{table.name} has a {len(columns)}-column primary key"
    return conn.execute(
        select(table).where(*(c == v for c, v in zip(columns, key, strict=True)))
    ).first()
