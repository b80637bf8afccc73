"""One agent's open ``Connect`` stream, as the hub holds it: what is queued for it to send.

The newest desired state wins (a stream that does not read holds one desired state, never a
backlog of outdated ones); jobs and cancels queue up to :data:`MAX_PENDING`, after which the
stream is closed with :data:`OVERFLOW` (``RESOURCE_EXHAUSTED``) rather than growing without
bound. :data:`REPLACED` and :data:`REVOKED` end a stream whose agent connected again or whose
identity was revoked.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..services.desired import DesiredState

__all__ = ["MAX_PENDING", "OVERFLOW", "REPLACED", "REVOKED", "AgentStream", "Overflow",
           "Replaced", "Revoked"]

log = logging.getLogger("arcade.server.hub")


class Replaced:
    """Queue marker: this stream was replaced by a newer connection of the same agent."""


REPLACED = Replaced()


class Revoked:
    """Queue marker: the agent's identity was revoked; its stream ends at once."""


REVOKED = Revoked()


class Overflow:
    """Queue marker: the agent did not read its stream and too many messages were queued."""


OVERFLOW = Overflow()

#: Unsent jobs and cancels a stream may hold before it is closed as not reading.
MAX_PENDING = 1000


class AgentStream:
    """One open ``Connect`` stream: a queue of things to send, newest desired state wins.

    The queue is bounded: one desired state at most (a newer one replaces it) and at most
    :data:`MAX_PENDING` jobs and cancels (see :meth:`send`). The queue is a plain list (it
    holds one or two items, briefly) plus a future that exists
    only while the sender waits: a server holds one of these per connected agent, and an
    :class:`asyncio.Queue` (three deques and an event) cost ~3.5 KB more per agent
    (tracemalloc, 1,000 agents).
    """

    __slots__ = (
        "_items",
        "_waiter",
        "agent_id",
        "closed",
        "offered_revision",
        "sent_revision",
        "serial",
        "wheels",
    )

    def __init__(self, agent_id: str, serial: str = "") -> None:
        self.agent_id = agent_id
        #: Serial of the certificate the stream was opened with, verified then (see
        #: :meth:`Hub.trusts`); emptied when the identity stops holding it.
        self.serial = serial
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None
        self.offered_revision = -1
        self.sent_revision = -1
        self.closed = False
        #: sha256 of every wheel in the newest desired state queued for this stream.
        self.wheels: frozenset[str] = frozenset()

    @property
    def pending(self) -> int:
        """Items queued and not yet taken by the sender (at most one desired state, and at
        most :data:`MAX_PENDING` other messages)."""
        return len(self._items)

    def offer(self, state: DesiredState) -> bool:
        """Queue ``state`` unless an equal or newer revision was already queued. A desired
        state still waiting in the queue is replaced in place (it would be skipped anyway):
        a stream that does not read holds one desired state, never a backlog of them."""
        if self.closed or state.revision <= self.offered_revision:
            return False
        self.offered_revision = state.revision
        self.wheels = frozenset(w.sha256 for p in state.plugins for w in p.wheels)
        for i, item in enumerate(self._items):
            if isinstance(item, DesiredState):
                self._items[i] = state
                return True
        self._put(state)
        return True

    def send(self, message: Any) -> None:
        """Queue any other server message (a job, a cancel). Past :data:`MAX_PENDING`
        unsent messages the agent is not reading: the stream is closed with
        :data:`OVERFLOW` (the handler ends the call with ``RESOURCE_EXHAUSTED``); its queued
        jobs stay in the database and are sent again when it reconnects."""
        if self.closed:
            return
        if len(self._items) >= MAX_PENDING:
            log.warning("agent %s is not reading its stream (%d messages queued): closing it",
                        self.agent_id, len(self._items))
            self._items.clear()
            self.close(OVERFLOW)
            return
        self._put(message)

    def close(self, marker: Any = None) -> None:
        if not self.closed:
            self.closed = True
            self._put(marker)

    def _put(self, item: Any) -> None:
        self._items.append(item)
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    async def next(self) -> Any:
        """The next item to send; stale desired states (superseded in the queue) are skipped.
        ``None`` when the stream is closed; :data:`REPLACED` when a newer connection took over."""
        while True:
            item = await self._get()
            if isinstance(item, DesiredState):
                if item.revision < self.offered_revision or item.revision <= self.sent_revision:
                    continue
                self.sent_revision = item.revision
            return item
