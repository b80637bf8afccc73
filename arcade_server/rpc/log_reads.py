"""Reads of a plugin's logs, relayed to its agent: ask on the stream, wait for the answer.

The agent keeps the last lines each plugin logged (``arcade_core``'s log rings); the server
keeps none. ``GET /api/v1/agents/{id}/plugins/{name}/logs`` calls :meth:`LogReads.read`,
which queues a ``LogsRequest`` with a fresh request id on the agent's open stream here and
waits for the ``PluginLogs`` answer carrying that id (:meth:`LogReads.answered`, called by
the servicer's reader). Everything is bounded: the wait (the ``logs_timeout`` setting, then
504), the reads in flight per agent (:data:`MAX_IN_FLIGHT`, then 409), and the answer (the
agent sends at most 500 lines of at most 1,000 characters). An agent not connected to this
process answers 409; its stream closing mid-wait ends the wait at once with 409. An answer
nobody waits for (late, or with an id of another agent) is dropped.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

from ..errors import AgentTimeout, Conflict, NotFound
from .convert import logs_from_pb, logs_request_to_pb

__all__ = ["MAX_IN_FLIGHT", "LogReads"]

#: Log reads one agent may have waiting at once.
MAX_IN_FLIGHT = 8


class LogReads:
    """The log reads waiting for their agents' answers (event-loop thread only).

    ``send(agent_id, message)`` queues a message on the agent's open stream here and returns
    False when there is none.
    """

    def __init__(self, send: Callable[[str, Any], bool]) -> None:
        self._send = send
        self._waiting: dict[str, tuple[str, asyncio.Future[Any]]] = {}
        self._by_agent: dict[str, set[str]] = {}

    @property
    def waiting(self) -> int:
        """Reads waiting for an answer now."""
        return len(self._waiting)

    async def read(self, agent_id: str, plugin: str, *, after: int, limit: int,
                   timeout: float) -> dict[str, Any]:
        """``{"last_seq", "lines"}`` of ``plugin`` on ``agent_id`` (see the module)."""
        mine = self._by_agent.setdefault(agent_id, set())
        if len(mine) >= MAX_IN_FLIGHT:
            raise Conflict(f"agent {agent_id!r} already has {MAX_IN_FLIGHT} log reads waiting "
                           "for an answer; try again in a moment")
        request_id = secrets.token_hex(8)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = (agent_id, future)
        mine.add(request_id)
        try:
            if not self._send(agent_id, logs_request_to_pb(request_id, plugin, after, limit)):
                raise _offline(agent_id)
            try:
                answer = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise AgentTimeout(
                    f"agent {agent_id!r} did not send the logs of {plugin!r} within "
                    f"{timeout:g}s (the server's logs_timeout); it may be busy, or run an "
                    "Arcade version without log reads: try again, or upgrade the agent"
                ) from None
        finally:
            self._waiting.pop(request_id, None)
            mine.discard(request_id)
            if not mine:
                self._by_agent.pop(agent_id, None)
        if answer.error:
            raise NotFound(f"agent {agent_id!r}: {answer.error}; see its plugins with "
                           f"arcade status --agent {agent_id}")
        return logs_from_pb(answer)

    def answered(self, agent_id: str, message: Any) -> bool:
        """An agent's ``PluginLogs``: hand it to the read waiting for it (True), or drop it."""
        waiting = self._waiting.get(message.request_id)
        if waiting is None or waiting[0] != agent_id or waiting[1].done():
            return False
        waiting[1].set_result(message)
        return True

    def agent_gone(self, agent_id: str) -> None:
        """The agent's stream here closed: its waiting reads end now (409)."""
        for request_id in list(self._by_agent.get(agent_id, ())):
            waiting = self._waiting.get(request_id)
            if waiting is not None and not waiting[1].done():
                waiting[1].set_exception(_offline(agent_id))


def _offline(agent_id: str) -> Conflict:
    return Conflict(f"agent {agent_id!r} is not connected to this server; a plugin's logs are "
                    f"read from its running agent: check it with arcade agents and try again "
                    "once it is online")
