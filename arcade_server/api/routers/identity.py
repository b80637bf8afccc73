"""Agent identity over REST: enrollment tokens, revocation, the CA certificate, probes.

The token and revocation routes need the ``admin`` role;
``/healthz``, ``/readyz`` and ``/api/v1/tls/ca.pem`` are open to anyone, as a load balancer or a
new agent host needs them before it has any credential.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, text

from ...auth.roles import Role
from ...services import enrollment
from ...state import ServerState
from ..auth import needs
from ..deps import get_state
from ..schemas import errors
from ..schemas.identity import (
    CreatedEnrollmentToken,
    EnrollmentToken,
    EnrollmentTokenRequest,
    Probe,
    RevokedAgent,
)

__all__ = ["probes", "router"]

router = APIRouter(tags=["identity"])
#: Mounted at the root (not under /api/v1): what load balancers and orchestrators probe.
probes = APIRouter(tags=["server"])

State = Annotated[ServerState, Depends(get_state)]
PEM = "application/x-pem-file"


@router.post("/enrollment-tokens", status_code=201, summary="Create an enrollment token",
             response_model=CreatedEnrollmentToken, dependencies=[needs(Role.ADMIN)],
             responses=errors())
async def create_token(body: EnrollmentTokenRequest, state: State) -> dict[str, Any]:
    created = await state.db.run(enrollment.create_token, name=body.name, labels=body.labels,
                                 ttl=body.ttl, max_uses=body.uses)
    return {**created.info, "token": created.token, "ca_hash": state.tls.ca_hash}


@router.get("/enrollment-tokens", summary="List enrollment tokens (never their secrets)",
            response_model=list[EnrollmentToken], dependencies=[needs(Role.ADMIN)],
            responses=errors())
async def list_tokens(state: State) -> list[dict[str, Any]]:
    return await state.db.read(enrollment.list_tokens)


@router.delete("/enrollment-tokens/{token_id}", status_code=204,
               summary="Delete an enrollment token (enrolled agents keep their certificates)",
               response_class=Response, dependencies=[needs(Role.ADMIN)],
               responses={204: {"description": "deleted (no body)"},
                          **errors(s404="no enrollment token with this id")})
async def delete_token(token_id: str, state: State) -> Response:
    await state.db.run(enrollment.delete_token, token_id)
    return Response(status_code=204)


@router.post("/agents/{agent_id}/revoke",
             summary="Revoke an agent: end its stream, refuse its certificates from now on",
             response_model=RevokedAgent, dependencies=[needs(Role.ADMIN)],
             responses=errors(s404="the agent has no enrolled identity"))
async def revoke_agent(agent_id: str, state: State) -> dict[str, Any]:
    revoked = await state.db.run(enrollment.revoke, agent_id)
    return {**revoked, "stream_closed": state.notifier.agent_revoked(agent_id)}


@router.get("/tls/ca.pem", summary="The CA certificate agents and clients trust",
            response_class=Response,
            responses={200: {"content": {PEM: {"schema": {"type": "string"}}},
                             "description": "the CA certificate (PEM)"}, **errors()})
async def ca_pem(state: State) -> Response:
    return Response(state.tls.ca.pem, media_type=PEM)


def _ping(conn: Connection) -> None:
    conn.execute(text("SELECT 1"))


@probes.get("/healthz", summary="Alive (the process answers)", response_model=Probe,
            responses=errors())
async def healthz() -> dict[str, Any]:
    return {"status": "ok", "checks": {}}


@probes.get("/readyz", summary="Ready: the database and the blob store are reachable",
            response_model=Probe,
            responses=errors(s503="not ready: error names the dependency, detail.checks "
                             "has each check"))
async def readyz(state: State) -> Any:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(state.db.read(_ping), timeout=5)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the probe says which
        checks["database"] = f"{type(exc).__name__}: {exc}"[:300]
    blob_dir = state.settings.blob_dir
    ok = await asyncio.to_thread(lambda: blob_dir.is_dir() and _writable(blob_dir))
    checks["blob_store"] = "ok" if ok else f"{blob_dir} is missing or not writable"
    if all(v == "ok" for v in checks.values()):
        return {"status": "ok", "checks": checks}
    failed = ", ".join(f"{name}: {value}" for name, value in checks.items() if value != "ok")
    return JSONResponse({"error": f"not ready ({failed})", "detail": {"checks": checks}},
                        status_code=503)


def _writable(path: Any) -> bool:
    import os

    return os.access(path, os.W_OK | os.X_OK)
