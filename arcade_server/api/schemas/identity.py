"""Bodies of the identity routes: enrollment tokens, revocation, health probes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ...services.enrollment import DEFAULT_TTL, MAX_TTL
from .common import stated
from .requests import LABEL_KEY_PATTERN

__all__ = [
    "CreatedEnrollmentToken",
    "EnrollmentToken",
    "EnrollmentTokenRequest",
    "Probe",
    "RevokedAgent",
]


class EnrollmentTokenRequest(BaseModel):
    """A new enrollment token: what it binds and how long and how often it may be used."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", description="a note for operators",
                      json_schema_extra=stated(maxLength=200))
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="labels bound to every agent enrolled with it; an agent that sets one of "
        "these keys to another value is refused",
        json_schema_extra=stated(propertyNames={"pattern": LABEL_KEY_PATTERN},
                                 additionalProperties={"type": "string", "maxLength": 500}),
    )
    ttl: float = Field(default=DEFAULT_TTL, strict=True, description="seconds until it expires",
                       json_schema_extra=stated(exclusiveMinimum=0, maximum=MAX_TTL))
    uses: int | None = Field(default=None, strict=True,
                             description="how many agents may enroll with it "
                             "(null: any number until it expires)",
                             json_schema_extra=stated(minimum=1))


class EnrollmentToken(BaseModel):
    """An enrollment token as listed (never its secret)."""

    id: str
    name: str
    labels: dict[str, str]
    created_at: float
    expires_at: float
    max_uses: int | None
    uses: int
    usable: bool = Field(description="not expired and not used up")


class CreatedEnrollmentToken(EnrollmentToken):
    """A token just created: ``token`` is the secret, shown this once."""

    token: str = Field(description="the secret: give it to the agent (--enroll-token)")
    ca_hash: str = Field(description="sha256:<hex> of the CA's public key, for --ca-hash")


class RevokedAgent(BaseModel):
    """An agent identity revoked: its certificates are refused from now on."""

    agent_id: str
    revoked_at: float
    fingerprint: str = Field(description="sha256 of its current certificate")
    stream_closed: bool = Field(description="its open stream on this server was ended")


class Probe(BaseModel):
    """``/healthz`` and ``/readyz``."""

    status: Literal["ok"]
    checks: dict[str, str] = Field(default_factory=dict,
                                   description="each dependency checked: ok or the problem")
