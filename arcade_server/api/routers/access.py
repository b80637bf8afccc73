"""``/api/v1/tokens``, ``/api/v1/whoami`` and ``/api/v1/audit``: operator tokens, the
caller's identity, and the audit log.

Creating a token answers its secret once (``token``); listing never shows secrets. Revoking
(``DELETE /tokens/{name or id}``) takes effect at once in this process and within a second on
every replica. The audit log is read-only here: newest first, filtered by time, actor and
target.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from ...auth.roles import Principal, Role
from ...services import audit, tokens
from ...state import ServerState
from ..audit import set_target
from ..auth import PRINCIPAL_KEY, needs
from ..deps import get_state
from ..schemas import AuditEntry, CreatedToken, Token, TokenCreateRequest, WhoAmI, errors

__all__ = ["router"]

router = APIRouter()

State = Annotated[ServerState, Depends(get_state)]


@router.post("/tokens", status_code=201, tags=["access"], summary="Create an API token "
             "(its secret is in the answer, once)", response_model=CreatedToken,
             dependencies=[needs(Role.ADMIN)],
             responses=errors(s409="a usable token of that name exists",
                              s422="bad name, role or ttl"))
async def create_token(body: TokenCreateRequest, request: Request, state: State
                       ) -> dict[str, Any]:
    set_target(request, f"tokens/{body.name}")
    created = await state.db.run(tokens.create, name=body.name, role=body.role, ttl=body.ttl)
    return {**created.token, "token": created.secret}


@router.get("/tokens", tags=["access"], summary="List API tokens (never their secrets)",
            response_model=list[Token], dependencies=[needs(Role.ADMIN)], responses=errors())
async def list_tokens(state: State) -> list[dict[str, Any]]:
    return await state.db.read(tokens.list_tokens)


@router.delete("/tokens/{ref}", tags=["access"], summary="Revoke an API token (by name or id)",
               response_model=Token, dependencies=[needs(Role.ADMIN)],
               responses=errors(s404="no token of that name or id",
                                s409="the last usable admin token"))
async def revoke_token(ref: str, request: Request, state: State) -> dict[str, Any]:
    revoked = await state.db.run(tokens.revoke, ref)
    request.app.state.authenticator.forget(revoked.secret_hash)
    set_target(request, f"tokens/{revoked.token['name']}")
    return revoked.token


@router.get("/whoami", tags=["access"], summary="Who the presented token stands for",
            response_model=WhoAmI, dependencies=[needs(Role.VIEWER)], responses=errors())
async def whoami(request: Request) -> dict[str, Any]:
    principal: Principal = request.scope[PRINCIPAL_KEY]
    return {"name": principal.name, "role": principal.role, "kind": principal.kind}


@router.get("/audit", tags=["access"], summary="The audit log, newest first",
            response_model=list[AuditEntry], dependencies=[needs(Role.ADMIN)],
            responses=errors(s422="a bad time or limit"))
async def audit_log(
    state: State,
    since: Annotated[float | None, Query(description="at or after (seconds since the epoch)"
                                         )] = None,
    until: Annotated[float | None, Query(description="before (seconds since the epoch)")
                     ] = None,
    actor: Annotated[str | None, Query(description="token name or agent id", max_length=200)
                     ] = None,
    target: Annotated[str | None, Query(description="a path below /api/v1, e.g. agents/web-1 "
                                        "(matches what is below it too)", max_length=500)
                      ] = None,
    limit: Annotated[int, Query(ge=1, le=audit.QUERY_LIMIT)] = 100,
) -> list[dict[str, Any]]:
    return await state.db.read(audit.query, since=since, until=until, actor=actor,
                               target=target, limit=limit)
