"""The one seam through which services announce changes that agents must hear about.

Services change the database and return plain values; they never touch an agent's stream.
When a change must reach agents (a new desired state, a job to run, a job to stop), the code
that made it tells a :class:`Notifier`, and the notifier gets the word to the agents'
streams. The server has one notifier, :attr:`arcade_server.state.ServerState.notifier`.

Implementations:

* :class:`arcade_server.rpc.hub.Hub` (today's only one): hands the news to the streams open
  in *this* process. Other replicas catch up by polling (the hub's revision sweep and the
  periodic job sweep), so nothing is lost, only later.
* A PostgreSQL ``LISTEN``/``NOTIFY`` notifier (planned, for scale-out) would publish each
  announcement on a channel every replica listens to and, on receipt, call its own hub; it
  wraps the hub rather than replacing it, which is why the methods speak in agent and job ids
  and plain :class:`~arcade_server.services.dispatch.Dispatch` values, never in streams or
  protobuf messages.

:class:`Wiring` is what the thin async service functions that announce need from the
server: its database and its notifier (``ServerState`` has both).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from ..db.engine import Database
from .dispatch import Dispatch

__all__ = ["Notifier", "Wiring"]


class Notifier(Protocol):
    """Tells agents about changes the services made (see the module docstring)."""

    async def desired_changed(self, agent_ids: Iterable[str]) -> int:
        """The desired state of ``agent_ids`` changed (their revision was bumped): send each
        connected one its new desired state. Returns how many streams here got one."""
        ...

    async def jobs_dispatched(self, dispatches: Sequence[Dispatch]) -> list[str]:
        """These queued jobs are ready for their agents: hand each to its agent's stream.
        Returns the ids of the jobs handed to a stream in this process (the caller marks
        those dispatched; jobs of agents connected elsewhere wait for that replica's job
        sweep, or its own notification)."""
        ...

    def job_cancelled(self, agent_id: str, job_id: str) -> bool:
        """Ask ``agent_id`` to stop ``job_id``. True if a stream in this process took the
        request. Synchronous on purpose: it is answered on the request path (``cancel_sent``)
        and must never wait; an implementation that publishes elsewhere queues the
        publication and returns what it knows locally."""
        ...


    def agent_revoked(self, agent_id: str) -> bool:
        """``agent_id``'s identity was revoked: end its stream and stop trusting what is
        cached about its certificate. True if a stream in this process was ended.
        Synchronous, like :meth:`job_cancelled`."""
        ...


class Wiring(Protocol):
    """The part of the server's state that announcing service functions use."""

    @property
    def db(self) -> Database: ...

    @property
    def notifier(self) -> Notifier: ...
