"""The ``Enroll`` and ``Renew`` RPCs: an agent's certificate, first from an enrollment token,
then renewed over its authenticated channel. Each outcome is written to the audit log (the
agent id as actor, its address, ``agent.enroll``/``agent.renew``, ``ok`` or the refusal) and
logged without the token."""

from __future__ import annotations

import logging
from typing import Any

import grpc

from arcade_core.rpc.v1 import pb

from ..auth.roles import ActorKind
from ..errors import ServiceError
from ..services import enrollment
from ..services.audit import AuditEntry
from ..state import ServerState
from .identity import PeerCertificate
from .status import status_code

__all__ = ["MAX_CSR", "enroll", "renew"]

log = logging.getLogger("arcade.server.rpc")

#: Largest CSR accepted (a P-256 CSR is ~500 bytes; an RSA-4096 one ~1.7 KB).
MAX_CSR = 16 * 1024
_MAX_TOKEN = 200


async def _audit(state: ServerState, context: grpc.aio.ServicerContext, *, agent_id: str,
                 action: str, outcome: str, kind: ActorKind) -> None:
    try:
        await state.audit.submit(AuditEntry(
            actor=agent_id[:200], actor_kind=kind, action=action, outcome=outcome,
            target=f"agents/{agent_id[:200]}", remote=context.peer() or ""))
    except Exception:   # the answer to the agent does not depend on the audit row
        log.exception("could not write the audit row of %s by %r", action, agent_id[:200])


async def enroll(state: ServerState, request: Any, context: grpc.aio.ServicerContext) -> Any:
    """Check the token and the CSR, issue the certificate binding the id it asked for."""
    if len(request.csr_pem) > MAX_CSR or len(request.token) > _MAX_TOKEN:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                            f"csr_pem (at most {MAX_CSR} bytes) or token (at most "
                            f"{_MAX_TOKEN} characters) too long")
    try:
        enrolled = await state.db.run(
            enrollment.enroll, state.tls.ca, request.token, request.agent_id,
            request.csr_pem.encode(), days=state.settings.agent_cert_days)
    except ServiceError as exc:
        log.warning("enrollment of %r refused (%s): %s", request.agent_id[:200],
                    context.peer(), exc.message)
        await _audit(state, context, agent_id=request.agent_id, action="agent.enroll",
                     outcome=f"denied: {exc.message}"[:50], kind=ActorKind.ANONYMOUS)
        await context.abort(status_code(exc), exc.message)
    state.identities.forget(request.agent_id)
    log.info("agent %s enrolled (%s)", request.agent_id, context.peer())
    await _audit(state, context, agent_id=request.agent_id, action="agent.enroll",
                 outcome="ok", kind=ActorKind.AGENT)
    return pb.EnrollResponse(
        certificate_pem=enrolled.certificate_pem.decode(), ca_pem=enrolled.ca_pem.decode(),
        not_after=enrolled.not_after, labels=enrolled.labels)


async def renew(state: ServerState, peer: PeerCertificate, request: Any,
                context: grpc.aio.ServicerContext) -> Any:
    """A new certificate for ``peer`` (already authenticated by its current one)."""
    if len(request.csr_pem) > MAX_CSR:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                            f"csr_pem is over {MAX_CSR} bytes")
    try:
        renewed = await state.db.run(
            enrollment.renew, state.tls.ca, peer.agent_id, peer.serial,
            request.csr_pem.encode(), days=state.settings.agent_cert_days)
    except ServiceError as exc:
        await _audit(state, context, agent_id=peer.agent_id, action="agent.renew",
                     outcome=f"denied: {exc.message}"[:50], kind=ActorKind.AGENT)
        await context.abort(status_code(exc), exc.message)
    state.identities.forget(peer.agent_id)
    log.info("agent %s renewed its certificate", peer.agent_id)
    await _audit(state, context, agent_id=peer.agent_id, action="agent.renew", outcome="ok",
                 kind=ActorKind.AGENT)
    return pb.RenewResponse(certificate_pem=renewed.certificate_pem.decode(),
                            ca_pem=renewed.ca_pem.decode(), not_after=renewed.not_after)
