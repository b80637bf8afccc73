"""FastAPI dependencies: the shared :class:`~arcade_server.state.ServerState`, and what it
knows about presence for a read (:func:`liveness`)."""

from __future__ import annotations

from fastapi import Request

from ..services.agents import Liveness
from ..state import ServerState

__all__ = ["get_state", "liveness"]


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.arcade
    return state


def liveness(state: ServerState) -> Liveness:
    """This process's presence knowledge (last seen, left), for a read that says who is
    online."""
    presence = state.presence
    return Liveness(presence.snapshot(), presence.departures(), state.settings.offline_after)
