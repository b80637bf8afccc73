"""Every mutating REST call goes into the audit log, once, here.

:class:`AuditMiddleware` wraps the whole app (plain ASGI, so a GET pays one comparison).
For a POST, PUT, PATCH or DELETE it writes one row just before the response starts (so a
client that got its answer finds the row), or when the call failed with an exception: the
caller (the token's name and role from :data:`~arcade_server.api.auth.PRINCIPAL_KEY`, else
``anonymous``), its address, the action (``POST /api/v1/agents/{agent_id}/plugins``: the
route's template), the target (the concrete path below ``/api/v1``, or what the route named
with :func:`set_target`) and the status. Refused calls (401, 403, 404, 422, ...) are recorded
too. Request bodies, query strings and headers are never recorded.

Rows of calls answered together are written in one transaction
(:attr:`ServerState.audit <arcade_server.state.ServerState.audit>`, a group-commit batcher).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth.roles import ActorKind, Principal
from ..services.audit import AuditEntry
from ..state import ServerState
from .auth import PRINCIPAL_KEY

__all__ = ["MUTATING", "TARGET_KEY", "AuditMiddleware", "set_target"]

log = logging.getLogger("arcade.server.audit")

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TARGET_KEY = "arcade.audit_target"
_PREFIX = "/api/v1/"


def set_target(request: Request, target: str) -> None:
    """Name what the call acted on when the path does not (``jobs/<id>``, ``tokens/<name>``);
    never a secret."""
    request.scope[TARGET_KEY] = target


def _template(scope: Scope) -> str:
    """The matched route's template with the prefix it was included under (the route in
    the scope knows only its own part: ``/plugins/{name}`` of ``/api/v1/plugins/x``)."""
    path: str = scope["path"]
    own: Any = getattr(scope.get("route"), "path", None)
    if not isinstance(own, str):
        return path  # no route matched (404, 405)
    parts = path.split("/")
    prefix = "/".join(parts[: max(0, len(parts) - len(own.split("/")) + 1)])
    return prefix + own


def _entry(scope: Scope, status: int) -> AuditEntry:
    principal: Principal | None = scope.get(PRINCIPAL_KEY)
    template = _template(scope)
    path: str = scope["path"]
    target = scope.get(TARGET_KEY) or (path[len(_PREFIX):] if path.startswith(_PREFIX)
                                       else path)
    client = scope.get("client")
    return AuditEntry(
        actor=principal.name if principal else "anonymous",
        actor_kind=principal.kind if principal else ActorKind.ANONYMOUS,
        role=principal.role.value if principal else "",
        remote=client[0] if client else "",
        action=f"{scope['method']} {template}",
        target=target,
        outcome=str(status),
    )


class AuditMiddleware:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def _record(self, scope: Scope, status: int) -> None:
        try:
            await self.state.audit.submit(_entry(scope, status))
        except Exception:
            log.exception("could not write the audit row of %s %s", scope["method"],
                          scope["path"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        recorded = False

        async def send_and_record(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                await self._record(scope, int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except Exception:
            if not recorded:
                recorded = True
                await self._record(scope, 500)
            raise
