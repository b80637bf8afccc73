"""The agent's ``Connect`` stream: register, heartbeat, receive, and reconnect forever.

Each session opens the bidirectional stream, sends ``Register`` built *at that moment* (so
after a restart or a reconnect the server hears what really runs), waits for ``Welcome``
(which may set the heartbeat interval), then hands every server message to ``on_message``
while a heartbeat task sends ``Heartbeat`` on the interval. When the stream ends for any
reason the session's tasks stop, :attr:`Connection.connected` is cleared, and the next
attempt starts after a jittered exponential backoff (``initial * 2**n``, capped at ``max``,
times a random factor in [0.5, 1]) so that a fleet does not reconnect in lock-step after a
server restart. The backoff resets once a session is welcomed; the cap (``backoff_max``,
5 s by default in the agent's settings) keeps a fleet's return after a restart within seconds.

The channel is mutual TLS with the agent's certificate (``credentials``; None, an insecure
channel, is for test servers only). :meth:`Connection.set_credentials` swaps in a renewed
certificate: calls from then on use a new channel; the open stream keeps the old one until
it ends (the server accepts the previous certificate until it expires).

Writes from several tasks (status reports, metric batches, heartbeats) are serialized by a
lock, as grpc allows one write in flight per stream; :meth:`Connection.send` returns
``False`` instead of raising when there is no stream, so callers decide what to keep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from arcade_core.rpc.v1 import pb, pb_grpc

from .downloader import download_stub

__all__ = ["Connection", "backoff_delay"]

log = logging.getLogger(__name__)


def backoff_delay(attempt: int, initial: float, cap: float) -> float:
    """The wait before reconnect attempt ``attempt`` (0 after a healthy session):
    ``initial * 2**attempt`` capped at ``cap``, times a random factor in [0.5, 1] so a fleet
    does not come back in lock-step."""
    return float(min(cap, initial * 2.0 ** min(attempt, 62))) * random.uniform(0.5, 1.0)


class Connection:
    """One agent's stream to ``target`` (``HOST:PORT``), kept open by :meth:`run`."""

    def __init__(
        self,
        target: str,
        *,
        register: Callable[[], Awaitable[pb.Register]],
        on_message: Callable[[pb.ServerMessage], Awaitable[None]],
        heartbeat: Callable[[], pb.Heartbeat],
        heartbeat_interval: float = 15.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        on_connected: Callable[[], Awaitable[None]] | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.target = target
        self._credentials = credentials
        self._register = register
        self._on_message = on_message
        self._heartbeat = heartbeat
        self._on_connected = on_connected
        self.heartbeat_interval = heartbeat_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.connected = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._call: Any = None
        self._channel: grpc.aio.Channel | None = None
        #: Channels replaced by set_credentials, closed once the stream on them ends.
        self._retired: list[grpc.aio.Channel] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._stub: pb_grpc.AgentServiceStub | None = None
        self.sessions = 0
        self.failures = 0
        self.last_error = ""
        self.server_version = ""

    # ------------------------------------------------------------------ channel

    def open(self) -> None:
        """Create the gRPC channel (call from the event loop that will use it)."""
        if self._channel is not None:
            return
        backoff_ms = int(self.backoff_max * 1000)
        options = [
            # grpc's own reconnect backoff must not outlast ours (its default max is 120 s)
            ("grpc.initial_reconnect_backoff_ms", int(self.backoff_initial * 1000)),
            ("grpc.min_reconnect_backoff_ms", int(self.backoff_initial * 1000)),
            ("grpc.max_reconnect_backoff_ms", backoff_ms),
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
        ]
        if self._credentials is None:
            self._channel = grpc.aio.insecure_channel(self.target, options=options)
        else:
            self._channel = grpc.aio.secure_channel(self.target, self._credentials,
                                                    options=options)
        self._stub = download_stub(self._channel)

    def stub(self) -> pb_grpc.AgentServiceStub:
        """The service stub on the agent's channel (for ``DownloadWheel``)."""
        if self._stub is None:
            self.open()
        assert self._stub is not None
        return self._stub

    def set_credentials(self, credentials: grpc.ChannelCredentials) -> None:
        """Use ``credentials`` (a renewed certificate) for every call from now on; the open
        stream's channel is closed when that stream ends."""
        self._credentials = credentials
        old = self._channel
        self._channel = None
        self._stub = None
        self.open()
        if old is not None and self._call is None:
            self._close_later(old)
        elif old is not None:
            self._retired.append(old)

    def _close_later(self, channel: grpc.aio.Channel) -> None:
        """Close a replaced channel, giving downloads in flight on it time to finish."""
        task = asyncio.get_running_loop().create_task(channel.close(grace=30.0))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """End the stream and close the channel."""
        self.connected.clear()
        if self._call is not None:
            self._call.cancel()
        if self._channel is not None:
            await self._channel.close(grace=None)
            self._channel = None
            self._stub = None
        for channel in self._retired:
            await channel.close(grace=None)
        self._retired.clear()
        for task in list(self._closing):
            task.cancel()

    # ------------------------------------------------------------------ sending

    async def send(self, message: pb.AgentMessage) -> bool:
        """Write ``message`` on the current stream; ``False`` if there is none or it broke."""
        call = self._call
        if call is None or not self.connected.is_set():
            return False
        async with self._write_lock:
            if call is not self._call:
                return False
            try:
                await call.write(message)
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
                log.debug("write on the stream failed: %s", exc)
                return False
            except Exception as exc:  # grpc raises a few internal types on a dead stream
                log.debug("write on the stream failed: %r", exc)
                return False
        return True

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Keep a session open until cancelled, reconnecting with jittered backoff."""
        attempt = 0
        while True:
            welcomed = False
            try:
                welcomed = await self._session()
                self.last_error = "the server closed the stream"
            except grpc.aio.AioRpcError as exc:
                self.last_error = f"{exc.code().name}: {exc.details()}"
            except (OSError, grpc.aio.UsageError) as exc:
                self.last_error = repr(exc)
            except Exception as exc:  # a handler bug must not end the agent's connection
                log.exception("the stream to %s failed", self.target)
                self.last_error = repr(exc)
            finally:
                self.connected.clear()
                self._call = None
                retired, self._retired = self._retired, []
                for channel in retired:
                    self._close_later(channel)
            self.failures += 1
            if welcomed:
                attempt = 0
            delay = backoff_delay(attempt, self.backoff_initial, self.backoff_max)
            attempt += 1
            log.warning("not connected to %s (%s); retrying in %.2fs",
                        self.target, self.last_error, delay)
            await asyncio.sleep(delay)

    async def _session(self) -> bool:
        """One stream from Register to its end; True if the server welcomed us."""
        stub = self.stub()
        call = stub.Connect()
        self._call = call
        welcomed = False
        heartbeat: asyncio.Task[None] | None = None
        try:
            await call.write(pb.AgentMessage(register=await self._register()))
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    return welcomed
                if message.HasField("welcome"):
                    welcomed = True
                    self.sessions += 1
                    self.server_version = message.welcome.server_version
                    if message.welcome.heartbeat_interval > 0:
                        self.heartbeat_interval = message.welcome.heartbeat_interval
                    self.connected.set()
                    log.info("connected to %s (server %s)", self.target, self.server_version)
                    if heartbeat is None:
                        heartbeat = asyncio.create_task(self._heartbeats(), name="heartbeat")
                    if self._on_connected is not None:
                        await self._on_connected()
                    continue
                await self._on_message(message)
        finally:
            self.connected.clear()
            if heartbeat is not None:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
            call.cancel()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await self.send(pb.AgentMessage(heartbeat=self._heartbeat()))
