"""Bodies of the token, identity and audit routes (``/api/v1/tokens``, ``/whoami``,
``/audit``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ...auth.roles import ActorKind, Role
from ...services.tokens import MAX_TTL, NAME_PATTERN

__all__ = ["AuditEntry", "CreatedToken", "Token", "TokenCreateRequest", "WhoAmI"]


class TokenCreateRequest(BaseModel):
    """``POST /api/v1/tokens``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN,
                      description="unique; what the audit log records")
    role: Role = Field(description="viewer, publisher, operator or admin")
    ttl: float | None = Field(default=None, gt=0, le=MAX_TTL, strict=True,
                              description="seconds until the token expires (never if left "
                              "out)")


class Token(BaseModel):
    """A token as listed: never its secret."""

    id: int
    name: str
    role: Role
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None = Field(description="updated at most once a minute")
    active: bool = Field(description="neither revoked nor expired")


class CreatedToken(Token):
    """The answer to a create: the token with its secret, shown this once."""

    token: str = Field(description="the secret: send it as Authorization: Bearer <token>; "
                       "it cannot be shown again")


class WhoAmI(BaseModel):
    """``GET /api/v1/whoami``: the caller the presented token stands for."""

    name: str
    role: Role
    kind: ActorKind


class AuditEntry(BaseModel):
    """One row of the audit log."""

    id: int
    at: float = Field(description="seconds since the epoch")
    actor: str = Field(description="token name, agent id, system or anonymous")
    actor_kind: ActorKind
    role: str = Field(description="the actor's role, or empty")
    remote: str = Field(description="the caller's address")
    action: str = Field(description="METHOD /route/{template}, or a verb such as "
                        "agent.enroll")
    target: str = Field(description="what it acted on, as a path below /api/v1")
    outcome: str = Field(description="the HTTP status, or ok, denied, error")
