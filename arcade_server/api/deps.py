"""FastAPI dependencies: the shared :class:`~arcade_server.state.ServerState`."""

from __future__ import annotations

from fastapi import Request

from ..state import ServerState

__all__ = ["get_state"]


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.arcade
    return state
