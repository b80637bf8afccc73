"""The ``arcade.v1.AgentService`` gRPC servicer: ``Connect``, ``DownloadWheel``, ``Enroll``
and ``Renew``.

Identity: every call but ``Enroll`` needs the agent's own certificate (mutual TLS); the
agent id comes from that certificate (:mod:`arcade_server.rpc.identity`), never from a
message. A ``Register`` naming another id, or setting a label that collides with one bound
at enrollment, is refused; ``DownloadWheel`` serves only wheels of the calling agent.

Thin: it converts protobuf messages to service calls (run in the database thread pool) and
service results back to protobuf. ``Connect`` registers the agent, answers ``Welcome`` and the
current ``DesiredState`` at once (then its queued jobs), then forwards whatever the hub queues
for the agent while a reader task handles heartbeats (memory only), status reports, metric
batches and job events.

At fleet scale the per-agent messages are coalesced: registrations, status reports and
metric batches go through the server's group-commit batchers (one transaction for all that
arrive together), the first desired state and the open-jobs check are batched reads, and
``DownloadWheel`` answers small wheels from the shared in-memory read path, checks the
permission against the state the hub last queued for the agent before asking the database,
and trusts the certificate of the agent's open stream (checked when it opened; see
:meth:`~arcade_server.rpc.hub.Hub.trusts`) instead of looking its identity up again. Chunks
are encoded by :mod:`arcade_server.rpc.chunks`, without protobuf objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc

from arcade_core import __version__
from arcade_core.rpc.v1 import pb, pb_grpc

from ..errors import ServiceError
from ..services import desired, job_runs, metrics, status_reports
from ..services.desired import DesiredState
from ..services.enrollment import Identity
from ..state import ServerState
from ..storage import BlobNotFound, BlobStore
from . import enrollment_calls, registration
from .chunks import encode_chunk, read_chunk
from .convert import (
    cancel_to_pb,
    desired_to_pb,
    event_from_pb,
    job_to_pb,
    reported_from_pb,
)
from .identity import PeerCertificate, peer_certificate
from .status import status_code
from .streams import MAX_PENDING, OVERFLOW, REPLACED, REVOKED, AgentStream

__all__ = ["AgentService", "desired_to_pb"]

log = logging.getLogger("arcade.server.rpc")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class AgentService(pb_grpc.AgentServiceServicer):
    """Serves agents; all state is in :class:`ServerState` (so it is shared with REST)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    # ---------------------------------------------------------------- Connect

    async def Connect(
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        # Requests are read with context.read(), never through request_iterator: grpc.aio's
        # iterator is an async generator that keeps the last message it yielded alive until
        # the next one arrives. On a stream that lives as long as the agent, that held every
        # agent's Register, then its last status report or metric batch (~5 KB of protobuf
        # each) for good: ~5 MB per 1,000 agents (benchmarks/fleet.py).
        state = self.state
        # The first message is read before the caller is judged (see registration.py).
        first = await registration.first_message(context, state.settings.register_timeout)
        peer, _identity = await self._authenticate(context)
        if first is grpc.aio.EOF:
            return
        registered = await registration.register(state, context, peer, _identity, first)
        del first  # the stream lives as long as the agent; its Register need not
        agent_id, known_jobs = registered
        stream = state.hub.attach(agent_id, peer.serial)
        state.presence.touch(agent_id)  # newer than a departure of the stream it replaced
        reader: asyncio.Task[None] | None = None
        log.info("agent %s connected (%s)", agent_id, context.peer())
        try:
            yield pb.ServerMessage(welcome=pb.Welcome(
                agent_id=agent_id, server_version=__version__,
                heartbeat_interval=state.settings.heartbeat_interval,
            ))
            stream.offer(await state.hub.desired(agent_id))
            # Jobs: fail the ones it came back without, (re)send queued ones and cancels —
            # for agents that have jobs (most of a reconnecting fleet has none: one batched
            # read tells, instead of a write transaction per agent).
            if known_jobs or await state.open_jobs.submit(agent_id):
                for job_message in await self._job_messages(agent_id, known_jobs):
                    stream.send(job_message)
            reader = asyncio.create_task(self._read(agent_id, context, stream))
            while True:
                item = await stream.next()
                if item is None:
                    break
                if item is REPLACED:
                    await context.abort(
                        grpc.StatusCode.ABORTED,
                        f"agent {agent_id} connected again; this older stream is closed",
                    )
                if item is REVOKED:
                    await context.abort(
                        grpc.StatusCode.UNAUTHENTICATED,
                        f"agent {agent_id} was revoked; enroll it again with a new token",
                    )
                if item is OVERFLOW:
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"agent {agent_id} did not read its stream ({MAX_PENDING} messages "
                        "queued); reconnect to receive the current state and queued jobs",
                    )
                if isinstance(item, DesiredState):
                    yield desired_to_pb(item)
                else:
                    yield item
        finally:
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
            state.hub.detach(stream)
            if not state.hub.connected(agent_id):  # not replaced by a newer stream
                state.presence.left(agent_id)
            log.info("agent %s disconnected", agent_id)

    async def _job_messages(self, agent_id: str, known: list[str]) -> list[pb.ServerMessage]:
        """Settle an agent's jobs as it registers; return the jobs and cancels to send it."""
        result = await self.state.db.run(job_runs.agent_connected, agent_id, known)
        for job_id in result.failed:
            log.warning("job %s failed: agent %s came back without it", job_id, agent_id)
        messages = [job_to_pb(d) for d in result.dispatches]
        messages.extend(cancel_to_pb(job_id) for job_id in result.cancels)
        return messages

    async def _authenticate(
        self, context: grpc.aio.ServicerContext, peer: PeerCertificate | None = None
    ) -> tuple[PeerCertificate, Identity]:
        """The calling agent's certificate (``peer`` if already read) and live identity;
        aborts ``UNAUTHENTICATED``."""
        if peer is None:
            peer = peer_certificate(context, self.state.tls.ca)
        try:
            identity = await self.state.identities.check(peer)
        except ServiceError as exc:
            await context.abort(status_code(exc), exc.message)
        assert peer is not None
        return peer, identity

    async def _read(
        self, agent_id: str, context: grpc.aio.ServicerContext, stream: AgentStream
    ) -> None:
        try:
            while await self._read_one(agent_id, context):
                pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the stream broke (client went away): end the response too
            log.debug("agent %s stream read ended: %s", agent_id, exc)
        finally:
            stream.close()

    async def _read_one(self, agent_id: str, context: grpc.aio.ServicerContext) -> bool:
        """Read one message and act on it; False once the agent closed its side. (A function
        of its own so the message is released before the wait for the next one.)"""
        message = await context.read()
        if message is grpc.aio.EOF:
            return False
        await self._handle(agent_id, message)
        return True

    async def _handle(self, agent_id: str, message: Any) -> None:
        """Act on one message from an agent's open stream."""
        state = self.state
        kind = message.WhichOneof("body")
        try:
            if kind == "heartbeat":
                state.presence.touch(agent_id, message.heartbeat.applied_revision)
            elif kind == "status":
                report = message.status
                await state.status_reports.submit(status_reports.status_update(
                    agent_id, report.revision,
                    [reported_from_pb(p) for p in report.plugins], complete=report.complete,
                ))
                state.presence.touch(agent_id, report.revision)
                state.hub.status_reported(agent_id)
            elif kind == "metrics":
                await self._metrics(agent_id, message.metrics)
            elif kind == "logs":
                if not state.hub.logs.answered(agent_id, message.logs):
                    log.debug("agent %s answered a log read nobody waits for", agent_id)
            elif kind == "register":
                log.warning("agent %s sent Register on an open stream; ignored", agent_id)
            elif kind == "job_event":
                event = event_from_pb(message.job_event)
                outcome = await state.db.run(job_runs.record_event, agent_id, event)
                if outcome.cancel:  # a running report for a job that already ended
                    state.hub.job_cancelled(agent_id, event.job_id)
        except ServiceError as exc:
            log.warning("agent %s sent a bad %s message: %s", agent_id, kind, exc)

    async def _metrics(self, agent_id: str, batch: Any) -> None:
        """Store a metric batch within the limits: at most ``metric_batch_max`` metrics of
        one message, and what the agent's rate allows (``metric_rate``/``metric_burst``).
        The rest is dropped and counted in the agent's ``metrics_dropped``; the agent is
        not told (its stream stays open), a warning is logged at most once per
        ``metric_warn_interval``."""
        state = self.state
        settings = state.settings
        received = batch.metrics
        allowed = state.metric_limiter.take(
            agent_id, min(len(received), settings.metric_batch_max))
        over = len(received) - allowed
        if over and state.metric_limiter.should_warn(agent_id):
            log.warning(
                "agent %s sent more metrics than allowed (%d in one batch; limits: "
                "metric_batch_max %d, metric_rate %g/s, metric_burst %g): %d dropped",
                agent_id, len(received), settings.metric_batch_max, settings.metric_rate,
                settings.metric_burst, over)
        await state.metric_batches.submit(metrics.MetricBatch(
            agent_id,
            [metrics.MetricData(
                plugin=m.plugin, name=m.name, value=m.value,
                labels=dict(m.labels), unit=m.unit, timestamp=m.timestamp,
            ) for m in received[:allowed]],
            dropped=min(batch.dropped, 2**62) + over,
        ))

    # ---------------------------------------------------------------- DownloadWheel

    async def DownloadWheel(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        state = self.state
        # The certificate of the agent's open stream was checked when the stream opened
        # (and is re-checked against revocations made elsewhere by the hub's sweep): a
        # rollout's thousand downloads then cost no identity lookups.
        peer = peer_certificate(context, state.tls.ca)
        if peer is None or not state.hub.trusts(peer.agent_id, peer.serial):
            peer, _identity = await self._authenticate(context, peer)
        if request.agent_id and request.agent_id != peer.agent_id:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"DownloadWheel for agent {request.agent_id!r} with the certificate of "
                f"{peer.agent_id!r}: an agent downloads only its own wheels",
            )
        agent_id = peer.agent_id
        sha256 = request.sha256.strip().lower()
        if not _SHA256.match(sha256):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"sha256 {request.sha256!r} is not a hex digest (64 hex digits)",
            )
        if request.offset < 0:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"offset {request.offset} is negative; resume from 0 to the blob size",
            )
        try:
            # Small wheels come from the shared in-memory read path (one disk read for a
            # fleet-wide rollout); larger ones are streamed from the store below.
            whole = await state.blobs.get(sha256)
            size = len(whole) if whole is not None else await asyncio.to_thread(
                state.store.size, sha256)
        except BlobNotFound:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no wheel with sha256 {sha256}")
        # The wheels of the state just pushed to the agent's stream are known here; anything
        # else (a job's wheel, a stream on another replica) is checked in the database.
        allowed = state.hub.allows_download(agent_id, sha256) or await state.db.read(
            desired.may_download, agent_id, sha256)
        if not allowed:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"wheel {sha256} is not in the desired state of agent {agent_id!r}",
            )
        offset = request.offset
        if offset > size:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"offset {offset} is past the end of the {size}-byte wheel",
            )
        chunk_size = state.settings.chunk_size
        if whole is not None:
            view = memoryview(whole)
            while True:
                yield encode_chunk(view[offset:offset + chunk_size], offset, size)
                offset += chunk_size
                if offset >= size:
                    return
        if offset == size:
            yield encode_chunk(b"", offset, size)
            return
        read = functools.partial(_read_chunk, state.store, sha256, chunk_size, size)
        # Read ahead: the next chunk is read (and encoded) while this one is sent.
        pending: asyncio.Future[tuple[bytes, int]] | None = asyncio.ensure_future(
            asyncio.to_thread(read, offset))
        try:
            while pending is not None:
                message, length = await pending
                pending = None
                if not length:   # the file shrank under us (a broken store): stop short
                    break
                next_offset = offset + length
                if next_offset < size:
                    pending = asyncio.ensure_future(asyncio.to_thread(read, next_offset))
                yield message
                offset = next_offset
        except BlobNotFound:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"wheel {sha256} was deleted")
        finally:
            if pending is not None:
                pending.cancel()

    # ---------------------------------------------------------------- Enroll, Renew

    async def Enroll(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """Token + CSR → certificate. No agent certificate needed (the one call allowed with
        the anonymous certificate); the token is the credential."""
        return await enrollment_calls.enroll(self.state, request, context)

    async def Renew(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """A new certificate for the calling agent (authenticated by its current one)."""
        peer, _identity = await self._authenticate(context)
        return await enrollment_calls.renew(self.state, peer, request, context)


def _read_chunk(store: BlobStore, sha256: str, chunk_size: int, size: int,
                position: int) -> tuple[bytes, int]:
    """The encoded chunk of a stored blob at ``position`` and the number of blob bytes in
    it (a worker thread). The file is
    opened per chunk: no handle is held across a yield, so a client that goes away
    mid-stream (the handler is cancelled and never resumed) leaks nothing."""
    path = store.path(sha256)
    try:
        if path is not None:
            return read_chunk(path, position, chunk_size, size)
        with store.open(sha256) as handle:
            handle.seek(position)
            data = handle.read(chunk_size)
        return encode_chunk(data, position, size), len(data)
    except FileNotFoundError:
        raise BlobNotFound(sha256) from None
