"""The per-process registry of open agent streams, and the waits on agent reports.

Each open stream is an :class:`~arcade_server.rpc.streams.AgentStream` (its queue, and the
markers that end it: replaced, revoked, overflow).

The hub is the server's :class:`~arcade_server.services.notifier.Notifier`: services announce
changes through it and it turns them into messages on the open streams of this process.
When an assignment changes, the REST handler calls :meth:`Hub.desired_changed` (alias
:meth:`Hub.push`) with the agents whose revision moved; the hub builds their desired states
in a few queries and hands each one to the agent's open stream at once (a queue: no polling
in the hot path). A stream never sends a revision older than one it already sent, so
concurrent pushes cannot reorder states. Jobs (:meth:`Hub.jobs_dispatched`) and cancels
(:meth:`Hub.job_cancelled`) are queued on the stream the same way.

Several replicas: a change made on another replica reaches this one's streams through
:meth:`Hub.sweep`, a cheap periodic comparison of the revisions in the database with the ones
sent (one query for all connected agents).

Reads of a plugin's logs are relayed to its agent and wait for the answer
(:attr:`Hub.logs`, :mod:`arcade_server.rpc.log_reads`).

``?wait=`` requests register a :class:`Waiter` for their agents with :meth:`Hub.waiter`;
status reports received on this process wake it and say which agents reported (so a wait
over a whole fleet re-reads only those), and the waiter re-reads, on a short interval, the
agents not connected here (their report may arrive at another replica).

At fleet scale three reads are answered without a query per agent: the desired state a new
stream starts with (:meth:`Hub.desired`: agents connecting together share the few queries of
one :func:`~arcade_server.services.desired_reads.desired_states` call), ``DownloadWheel``'s
permission check (:meth:`Hub.allows_download`: a wheel of the desired state this process last
queued for the agent's open stream; anything else is still checked in the database), and its
identity check (:meth:`Hub.trusts`: the certificate the agent's open stream was opened and
checked with; :meth:`Hub.sweep` applies revocations made on other replicas to open streams).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..db.batcher import Batcher
from ..db.engine import Database
from ..errors import NotFound
from ..services import desired as desired_reads
from ..services import enrollment
from ..services.desired import DesiredState
from ..services.dispatch import Dispatch
from .convert import cancel_to_pb, job_to_pb
from .log_reads import LogReads
from .streams import REPLACED, REVOKED, AgentStream

__all__ = ["Hub", "Waiter"]

log = logging.getLogger("arcade.server.hub")


class Waiter:
    """Woken by status reports of the agents it waits for; remembers which ones reported."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._reported: set[str] = set()

    def notify(self, agent_id: str) -> None:
        self._reported.add(agent_id)
        self._event.set()

    def take(self) -> set[str]:
        """The agents that reported since the last call (and re-arm the wake-up)."""
        reported, self._reported = self._reported, set()
        self._event.clear()
        return reported

    async def wait(self) -> None:
        """Return once an agent reported since the last :meth:`take`."""
        await self._event.wait()


class Hub:
    """Open streams by agent id, pushes, and status-report wake-ups (event-loop thread only)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        #: Called with an agent id when it is revoked here (the server's identity cache).
        self.on_revoked: list[Callable[[str], None]] = []
        self._streams: dict[str, AgentStream] = {}
        self._waiters: dict[str, set[Waiter]] = {}
        #: Reads of plugins' logs waiting for their agents' answers.
        self.logs = LogReads(self._send_to)
        #: Batches the reads of :meth:`desired` (its counters show how well).
        self.desired_reads: Batcher[str, DesiredState | None] = Batcher(
            self._read_desired, name="desired state reads")

    async def _read_desired(self, agent_ids: list[str]) -> list[DesiredState | None]:
        states = await self._db.read(desired_reads.desired_states, agent_ids)
        return [states.get(agent_id) for agent_id in agent_ids]

    async def desired(self, agent_id: str) -> DesiredState:
        """The agent's current desired state (reads for agents connecting together are
        batched into one :func:`~arcade_server.services.desired_reads.desired_states`)."""
        state = await self.desired_reads.submit(agent_id)
        if state is None:
            raise NotFound(f"no agent with id {agent_id!r} has registered")
        return state

    def trusts(self, agent_id: str, serial: str) -> bool:
        """True when the agent has an open stream here, opened with the certificate
        ``serial`` (its identity was checked then): a call with that certificate needs no
        identity check of its own. A revocation here closes the stream at once
        (:meth:`agent_revoked`); one on another replica, or a certificate replaced there,
        is found by :meth:`sweep`."""
        stream = self._streams.get(agent_id)
        return (stream is not None and not stream.closed and bool(serial)
                and stream.serial == serial)

    def allows_download(self, agent_id: str, sha256: str) -> bool:
        """True when the wheel is in the desired state last queued for the agent's open stream
        here (False means "ask the database": it may be a job's wheel, or another replica's)."""
        stream = self._streams.get(agent_id)
        return stream is not None and sha256 in stream.wheels

    async def close(self) -> None:
        """Close every stream and finish the reads in flight (server shutdown)."""
        self.close_all()
        await self.desired_reads.close()

    # ---------------------------------------------------------------- streams

    def attach(self, agent_id: str, serial: str = "") -> AgentStream:
        """Register a new stream for ``agent_id`` opened with the (verified) certificate
        ``serial``, closing the one it replaces."""
        old = self._streams.get(agent_id)
        if old is not None:
            log.info("agent %s connected again: closing its previous stream", agent_id)
            old.close(REPLACED)
        stream = AgentStream(agent_id, serial)
        self._streams[agent_id] = stream
        return stream

    def detach(self, stream: AgentStream) -> None:
        stream.close()
        if self._streams.get(stream.agent_id) is stream:
            del self._streams[stream.agent_id]
            self.logs.agent_gone(stream.agent_id)

    def _send_to(self, agent_id: str, message: Any) -> bool:
        """Queue ``message`` on the agent's open stream here; False when there is none."""
        stream = self._streams.get(agent_id)
        if stream is None or stream.closed:
            return False
        stream.send(message)
        return True

    def connected(self, agent_id: str) -> bool:
        return agent_id in self._streams

    def connected_ids(self) -> list[str]:
        return list(self._streams)

    def stream(self, agent_id: str) -> AgentStream | None:
        return self._streams.get(agent_id)

    def close_all(self) -> None:
        for stream in list(self._streams.values()):
            stream.close()
            self.logs.agent_gone(stream.agent_id)
        self._streams.clear()

    async def push(self, agent_ids: Iterable[str]) -> int:
        """Send the current desired state to those of ``agent_ids`` connected here; return how
        many streams got a new state."""
        local = [agent_id for agent_id in agent_ids if agent_id in self._streams]
        if not local:
            return 0
        states = await self._db.read(desired_reads.desired_states, local)
        sent = 0
        for agent_id, state in states.items():
            stream = self._streams.get(agent_id)
            if stream is not None and stream.offer(state):
                sent += 1
        return sent

    # ---------------------------------------------------------------- Notifier

    async def desired_changed(self, agent_ids: Iterable[str]) -> int:
        """:meth:`Notifier.desired_changed`: :meth:`push`."""
        return await self.push(agent_ids)

    async def jobs_dispatched(self, dispatches: Sequence[Dispatch]) -> list[str]:
        """Queue each job on its agent's stream if that agent is connected to this process;
        return the ids of the jobs queued."""
        sent: list[str] = []
        for dispatch in dispatches:
            stream = self._streams.get(dispatch.agent_id)
            if stream is not None and not stream.closed:
                stream.send(job_to_pb(dispatch))
                sent.append(dispatch.job_id)
        return sent

    def job_cancelled(self, agent_id: str, job_id: str) -> bool:
        """Queue a cancel of ``job_id`` on the agent's stream here; True if there is one."""
        stream = self._streams.get(agent_id)
        if stream is None or stream.closed:
            return False
        stream.send(cancel_to_pb(job_id))
        return True

    def agent_revoked(self, agent_id: str) -> bool:
        """:meth:`Notifier.agent_revoked`: forget the cached identity and end the agent's
        stream here at once; True if there was one."""
        for forget in self.on_revoked:
            forget(agent_id)
        stream = self._streams.get(agent_id)
        if stream is None:
            return False
        log.warning("agent %s was revoked: closing its stream", agent_id)
        stream.close(REVOKED)
        return True

    async def sweep(self) -> int:
        """Push to connected agents whose revision in the database moved past what they got
        (changes made by another replica), and apply identity changes made on another
        replica to the streams here (:meth:`check_identities`)."""
        ids = self.connected_ids()
        if not ids:
            return 0
        await self.check_identities(ids)
        ids = self.connected_ids()
        current = await self._db.read(desired_reads.revisions, ids)
        stale = [
            agent_id for agent_id, revision in current.items()
            if (stream := self._streams.get(agent_id)) is not None
            and revision > stream.offered_revision
        ]
        return await self.push(stale) if stale else 0

    async def check_identities(self, agent_ids: Sequence[str]) -> int:
        """Close the streams here of agents revoked (or whose identity was deleted) on
        another replica, and stop trusting a stream whose certificate its identity no longer
        holds (replaced twice since); return how many streams changed."""
        identities = await self._db.read(enrollment.get_identities, list(agent_ids))
        changed = 0
        for agent_id, identity in zip(agent_ids, identities, strict=True):
            stream = self._streams.get(agent_id)
            if stream is None or stream.closed:
                continue
            if identity is None or identity.revoked:
                self.agent_revoked(agent_id)
                changed += 1
            elif stream.serial and stream.serial not in identity.serials:
                stream.serial = ""
                changed += 1
        return changed

    # ---------------------------------------------------------------- status waits

    @contextmanager
    def waiter(self, agent_ids: Iterable[str]) -> Iterator[Waiter]:
        """A :class:`Waiter` notified whenever one of ``agent_ids`` sends a status report to
        this process."""
        waiter = Waiter()
        ids = list(agent_ids)
        for agent_id in ids:
            self._waiters.setdefault(agent_id, set()).add(waiter)
        try:
            yield waiter
        finally:
            for agent_id in ids:
                waiters = self._waiters.get(agent_id)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._waiters[agent_id]

    def status_reported(self, agent_id: str) -> None:
        for waiter in self._waiters.get(agent_id, ()):
            waiter.notify(agent_id)
