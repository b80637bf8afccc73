"""Agent enrollment: tokens exchanged for certificates, identities, renewal and revocation.

An operator creates an enrollment token (:func:`create_token`): a random secret shown once,
stored as its sha256, with labels it binds, an expiry and an optional number of uses. A new
agent calls ``Enroll`` with the secret, the id it wants and a CSR; :func:`enroll` checks the
token (hash compared in constant time, expiry, uses counted in the same transaction), signs
the CSR binding the id, and records the identity. An id held by a live identity cannot be
taken (:class:`~arcade_server.errors.AlreadyExists`); a revoked identity may enroll again only
with another token than the one it first enrolled with.

An identity accepts two certificate serials: the current one and the one it renewed from
(so calls in flight on the old certificate finish). :func:`revoke` refuses both from then on;
:func:`check_certificate` is what the gRPC servicer asks on each ``Connect``/``DownloadWheel``.

Plain values in and out; the CA (:class:`~arcade_server.tls.CertificateAuthority`) signs.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ..db.tables import AnyRow, agent_identities, enrollment_tokens
from ..errors import AlreadyExists, Invalid, NotFound, Unauthorized
from ..limits import check_labels
from ..tls import CertificateAuthority, InvalidCSR, IssuedCertificate
from .agents import validate_agent_id
from .tokens import hash_secret

__all__ = [
    "Enrolled",
    "Identity",
    "NewToken",
    "check_certificate",
    "create_token",
    "delete_token",
    "enroll",
    "get_identities",
    "get_identity",
    "list_tokens",
    "renew",
    "revoke",
]

#: Longest lifetime of an enrollment token (a year); the default is an hour.
MAX_TTL = 365 * 86400.0
DEFAULT_TTL = 3600.0
_TOKEN_PREFIX = "arcenr_"


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: ``token`` is the secret, shown this once."""

    token: str
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Enrolled:
    """A certificate just issued (enrollment or renewal)."""

    certificate_pem: bytes
    ca_pem: bytes
    not_after: float
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class Identity:
    """What the servicer needs to know of an identity on each call."""

    agent_id: str
    serials: frozenset[str]
    labels: dict[str, str]
    revoked: bool


def _token_dict(row: AnyRow, now: float) -> dict[str, Any]:
    used_up = row.max_uses is not None and row.uses >= row.max_uses
    return {
        "id": row.id, "name": row.name, "labels": dict(row.labels),
        "created_at": row.created_at, "expires_at": row.expires_at,
        "max_uses": row.max_uses, "uses": row.uses,
        "usable": row.expires_at > now and not used_up,
    }


def create_token(conn: Connection, *, name: str = "", labels: Mapping[str, str] | None = None,
                 ttl: float = DEFAULT_TTL, max_uses: int | None = None,
                 now: float | None = None) -> NewToken:
    """Create an enrollment token; its secret is in the result and nowhere else."""
    now = time.time() if now is None else now
    if not 0 < ttl <= MAX_TTL:
        raise Invalid(f"ttl {ttl}s is outside (0, {int(MAX_TTL)}] seconds (a year at most)")
    if max_uses is not None and max_uses < 1:
        raise Invalid(f"uses {max_uses} must be at least 1 (or left out for no limit)")
    if len(name) > 200:
        raise Invalid("name: at most 200 characters")
    bound = check_labels(dict(labels or {}))
    secret = _TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(8)
    conn.execute(insert(enrollment_tokens).values(
        id=token_id, name=name, token_hash=hash_secret(secret), labels=bound, created_at=now,
        expires_at=now + ttl, max_uses=max_uses, uses=0,
    ))
    row = conn.execute(select(enrollment_tokens).where(enrollment_tokens.c.id == token_id)).one()
    return NewToken(token=secret, info=_token_dict(row, now))


def list_tokens(conn: Connection, *, now: float | None = None) -> list[dict[str, Any]]:
    """Every enrollment token (never its secret), oldest first."""
    now = time.time() if now is None else now
    rows = conn.execute(select(enrollment_tokens).order_by(enrollment_tokens.c.created_at,
                                                           enrollment_tokens.c.id))
    return [_token_dict(row, now) for row in rows]


def delete_token(conn: Connection, token_id: str) -> None:
    """Delete a token (agents it enrolled keep their certificates)."""
    result = conn.execute(delete(enrollment_tokens).where(enrollment_tokens.c.id == token_id))
    if not result.rowcount:
        raise NotFound(f"no enrollment token with id {token_id!r}")


def _use_token(conn: Connection, secret: str, now: float) -> AnyRow:
    """The token row for ``secret``, its use counted; raises Unauthorized otherwise."""
    if not secret.startswith(_TOKEN_PREFIX) or len(secret) > 200:
        raise Unauthorized("the enrollment token is not valid; ask an operator for one "
                              "(arcade enroll create)")
    digest = hash_secret(secret)
    row = conn.execute(select(enrollment_tokens).where(
        enrollment_tokens.c.token_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise Unauthorized("the enrollment token is not valid; ask an operator for one "
                              "(arcade enroll create)")
    if row.expires_at <= now:
        raise Unauthorized(f"enrollment token {row.id} expired; ask an operator for a new one")
    # Counted with a guarded UPDATE: two enrollments racing for the last use cannot both win.
    guard = enrollment_tokens.c.uses < enrollment_tokens.c.max_uses
    result = conn.execute(
        update(enrollment_tokens)
        .where(enrollment_tokens.c.id == row.id)
        .where((enrollment_tokens.c.max_uses.is_(None)) | guard)
        .values(uses=enrollment_tokens.c.uses + 1))
    if not result.rowcount:
        raise Unauthorized(f"enrollment token {row.id} is used up ({row.max_uses} uses); "
                              "ask an operator for a new one")
    return row


def _sign(ca: CertificateAuthority, csr_pem: bytes, agent_id: str, days: float
          ) -> IssuedCertificate:
    try:
        return ca.sign_agent(csr_pem, agent_id, dt.timedelta(days=days))
    except InvalidCSR as exc:
        raise Invalid(str(exc)) from None


def enroll(conn: Connection, ca: CertificateAuthority, secret: str, agent_id: str,
           csr_pem: bytes, *, days: float, now: float | None = None) -> Enrolled:
    """Exchange an enrollment token and a CSR for a certificate binding ``agent_id``."""
    now = time.time() if now is None else now
    validate_agent_id(agent_id)
    token = _use_token(conn, secret, now)
    existing = conn.execute(select(agent_identities).where(
        agent_identities.c.agent_id == agent_id)).first()
    if existing is not None:
        if existing.revoked_at is None:
            raise AlreadyExists(
                f"agent id {agent_id!r} is already enrolled; choose another --id, or revoke "
                f"it first (arcade agents revoke {agent_id})")
        if existing.enrollment_token_id == token.id:
            raise Unauthorized(
                f"agent {agent_id!r} was revoked; it may enroll again only with a new token "
                "(arcade enroll create), not the one it enrolled with")
    issued = _sign(ca, csr_pem, agent_id, days)
    values = {
        "serial": issued.serial, "previous_serial": None, "fingerprint": issued.fingerprint,
        "not_after": issued.not_after.timestamp(), "labels": dict(token.labels),
        "enrolled_at": now, "revoked_at": None, "enrollment_token_id": token.id,
    }
    if existing is None:
        conn.execute(insert(agent_identities).values(agent_id=agent_id, **values))
    else:
        conn.execute(update(agent_identities)
                     .where(agent_identities.c.agent_id == agent_id).values(**values))
    return Enrolled(issued.pem, ca.pem, values["not_after"], dict(token.labels))


def get_identity(conn: Connection, agent_id: str) -> Identity | None:
    """The identity of ``agent_id`` (None if it never enrolled)."""
    return get_identities(conn, [agent_id])[0]


def get_identities(conn: Connection, agent_ids: Sequence[str]) -> list[Identity | None]:
    """:func:`get_identity` of many agents in one query (a rollout's DownloadWheel calls, a
    reconnecting fleet), in the order asked."""
    found: dict[str, Identity] = {}
    wanted = sorted(set(agent_ids))
    if wanted:
        for row in conn.execute(select(agent_identities).where(
                agent_identities.c.agent_id.in_(wanted))):
            serials = {row.serial} | ({row.previous_serial} if row.previous_serial else set())
            found[row.agent_id] = Identity(row.agent_id, frozenset(serials), dict(row.labels),
                                           row.revoked_at is not None)
    return [found.get(agent_id) for agent_id in agent_ids]


def check_certificate(identity: Identity | None, agent_id: str, serial: str) -> None:
    """Raise :class:`Unauthorized` unless ``serial`` is a live certificate of the agent."""
    if identity is None:
        raise Unauthorized(f"agent {agent_id!r} is not enrolled (its certificate was issued "
                              "by this CA but no identity holds it)")
    if identity.revoked:
        raise Unauthorized(f"agent {agent_id!r} was revoked; enroll it again with a new "
                              "token")
    if serial not in identity.serials:
        raise Unauthorized(f"this certificate of agent {agent_id!r} was replaced "
                              "(re-enrolled or renewed twice since); use the current one")


def renew(conn: Connection, ca: CertificateAuthority, agent_id: str, serial: str,
          csr_pem: bytes, *, days: float) -> Enrolled:
    """A new certificate for an agent calling with its live certificate ``serial``."""
    row = conn.execute(select(agent_identities).where(
        agent_identities.c.agent_id == agent_id).with_for_update()).first()
    check_certificate(get_identity(conn, agent_id), agent_id, serial)
    assert row is not None
    issued = _sign(ca, csr_pem, agent_id, days)
    not_after = issued.not_after.timestamp()
    conn.execute(update(agent_identities).where(agent_identities.c.agent_id == agent_id).values(
        serial=issued.serial, previous_serial=serial, fingerprint=issued.fingerprint,
        not_after=not_after))
    return Enrolled(issued.pem, ca.pem, not_after, dict(row.labels))


def revoke(conn: Connection, agent_id: str, *, now: float | None = None) -> dict[str, Any]:
    """Revoke ``agent_id``'s identity: every certificate it holds is refused from now on."""
    now = time.time() if now is None else now
    row = conn.execute(select(agent_identities).where(
        agent_identities.c.agent_id == agent_id)).first()
    if row is None:
        raise NotFound(f"agent {agent_id!r} has no enrolled identity")
    if row.revoked_at is None:
        conn.execute(update(agent_identities).where(agent_identities.c.agent_id == agent_id)
                     .values(revoked_at=now))
    return {"agent_id": agent_id, "revoked_at": row.revoked_at or now,
            "fingerprint": row.fingerprint}
