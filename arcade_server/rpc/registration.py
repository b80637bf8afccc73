"""The start of a Connect stream: its first message, read within a bound, and the Register
it must be, checked against the caller's certificate and enrollment and stored."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import grpc

from ..errors import ServiceError
from ..services import agents
from ..services.enrollment import Identity
from ..state import ServerState
from .convert import agent_info_from_pb
from .identity import PeerCertificate
from .status import status_code

__all__ = ["first_message", "register"]


async def first_message(context: grpc.aio.ServicerContext, timeout: float) -> Any:
    """The stream's first message (or EOF), read within ``timeout`` (the
    ``register_timeout`` setting): a caller that opens a stream and says nothing is not kept.

    Read before the caller is judged: refused at once, an agent whose Register is still on
    its way gets INTERNAL ("Failed execute_batch") from its own gRPC stack instead of the
    refusal (one call in ten on a busy host), and would log that instead of why."""
    try:
        return await asyncio.wait_for(context.read(), timeout)
    except TimeoutError:
        await context.abort(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"no Register within {timeout:g}s of opening Connect; an agent sends "
            "Register first",
        )

async def register(
    state: ServerState, context: grpc.aio.ServicerContext, peer: PeerCertificate,
    identity: Identity, first: Any,
) -> tuple[str, list[str]]:
    """Store the stream's first message, which must be a Register; return the agent id
    and the jobs it says it knows.

    The Register must name the certificate's agent id; labels bound at enrollment are
    added, and one the agent sets to another value is refused."""
    if first.WhichOneof("body") != "register":
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            "the first message on Connect must be Register (agent id, host facts, labels, "
            "installed plugins)",
        )
    info = agent_info_from_pb(first.register)
    if info.agent_id != peer.agent_id:
        await context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"Register names agent {info.agent_id!r} but this certificate belongs to "
            f"{peer.agent_id!r}; an agent registers only as the id it enrolled with",
        )
    for key, value in identity.labels.items():
        if key in info.labels and info.labels[key] != value:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"label {key}={info.labels[key]!r} collides with {key}={value!r} bound "
                f"to agent {peer.agent_id!r} at enrollment; remove it from the agent's "
                "labels (enrollment labels win)",
            )
    if identity.labels:
        info = dataclasses.replace(info, labels={**info.labels, **identity.labels})
    try:
        # Validated here, so a bad registration never fails a whole batch.
        await state.registrations.submit(agents.validate_registration(info))
    except ServiceError as exc:
        await context.abort(status_code(exc), exc.message)
    state.presence.touch(info.agent_id, info.applied_revision)
    return info.agent_id, list(first.register.jobs)
