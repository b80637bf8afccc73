"""Operator API tokens: create (the secret is returned once), list, revoke, authenticate.

A token is ``arcade_`` followed by 32 random bytes (URL-safe base64): recognisable in a
leaked log or a secret scanner, and too long to guess. Only its sha256 is stored, so the
database alone never lets anyone call the API; a presented token is hashed and looked up by
that hash, and the stored hash is compared with :func:`hmac.compare_digest`.

A token has a unique name (what the audit log records), a :class:`~arcade_server.auth.roles.Role`,
and optionally an expiry. Revoking keeps the row (its name stays meaningful in the audit
log); the name of a revoked or expired token can be given to a new one, which replaces it.
The last usable admin token cannot be revoked (nobody could create another).

:func:`ensure_admin` makes the first admin token of an empty database (the server calls it at
start). The REST layer caches what :func:`find` answers for a second
(:mod:`arcade_server.api.auth`), so a revocation takes effect within a second everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from ..auth.roles import Principal, Role
from ..db import tables as t
from ..errors import Conflict, Hint, Invalid, NotFound

__all__ = [
    "ADMIN_NAME",
    "MAX_TTL",
    "MIN_SECRET_LENGTH",
    "PREFIX",
    "NewToken",
    "Revoked",
    "TokenMatch",
    "authenticate",
    "create",
    "ensure_admin",
    "find",
    "hash_secret",
    "list_tokens",
    "new_secret",
    "parse_role",
    "revoke",
    "touch",
]

#: Every token the server makes starts with this.
PREFIX = "arcade_"
#: The name of the admin token made at first start.
ADMIN_NAME = "admin"
#: Longest lifetime a token may be given (ten years).
MAX_TTL = 10 * 365 * 86400.0
#: Shortest secret accepted from an operator (``ARCADE_SERVER_ADMIN_TOKEN``).
MIN_SECRET_LENGTH = 16
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$"
_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class NewToken:
    """A created token: ``token`` is its public form (:func:`list_tokens`), ``secret`` the
    one copy of the secret."""

    token: dict[str, Any]
    secret: str


@dataclass(frozen=True)
class Revoked:
    """A revoked token and its secret's hash (for the caller to drop from its cache)."""

    token: dict[str, Any]
    secret_hash: str


@dataclass(frozen=True)
class TokenMatch:
    """A usable token found by its secret's hash."""

    principal: Principal
    expires_at: float | None
    last_used_at: float | None


def new_secret() -> str:
    """A fresh random token secret: :data:`PREFIX` + 32 random bytes."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The sha256 (hex) under which a secret is stored."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def parse_role(value: str) -> Role:
    """``value`` as a :class:`Role`; :class:`Invalid` naming the roles otherwise."""
    try:
        return Role(value)
    except ValueError:
        raise Invalid(f"unknown role {value!r}; use one of {', '.join(Role)}") from None


def _public(row: Any, now: float) -> dict[str, Any]:
    expired = row.expires_at is not None and row.expires_at <= now
    return {
        "id": row.id, "name": row.name, "role": row.role, "created_at": row.created_at,
        "expires_at": row.expires_at, "revoked_at": row.revoked_at,
        "last_used_at": row.last_used_at,
        "active": row.revoked_at is None and not expired,
    }


_COLUMNS = (t.api_tokens.c.id, t.api_tokens.c.name, t.api_tokens.c.role,
            t.api_tokens.c.created_at, t.api_tokens.c.expires_at, t.api_tokens.c.revoked_at,
            t.api_tokens.c.last_used_at)


def _usable(now: float) -> Any:
    c = t.api_tokens.c
    return and_(c.revoked_at.is_(None), or_(c.expires_at.is_(None), c.expires_at > now))


def create(
    conn: Connection,
    *,
    name: str,
    role: str,
    ttl: float | None = None,
    secret: str | None = None,
    now: float | None = None,
) -> NewToken:
    """Make a token named ``name`` with ``role``, expiring after ``ttl`` seconds (never when
    None). ``secret`` is for the first admin token from the operator's setting; otherwise a
    random one is made. A usable token of that name → :class:`Conflict`; a revoked or
    expired one is replaced."""
    now = time.time() if now is None else now
    if not _NAME.match(name):
        raise Invalid(f"token name {name!r} must be 1-100 letters, digits or . _ @ -, "
                      "starting with a letter or digit")
    parsed = parse_role(role)
    if ttl is not None and not (math.isfinite(ttl) and 0 < ttl <= MAX_TTL):
        raise Invalid(f"ttl must be a number of seconds between 0 and {MAX_TTL:.0f} "
                      "(ten years), or left out for a token that does not expire")
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise Invalid(f"a token secret must be at least {MIN_SECRET_LENGTH} characters")
    c = t.api_tokens.c
    existing = conn.execute(
        select(c.id, c.revoked_at, c.expires_at).where(c.name == name)).first()
    if existing is not None:
        if existing.revoked_at is None and (existing.expires_at is None
                                            or existing.expires_at > now):
            raise Conflict(f"a token named {name!r} exists; revoke it first or choose "
                           "another name", {"name": name})
        conn.execute(t.api_tokens.delete().where(c.id == existing.id))
    secret = secret or new_secret()
    secret_hash = hash_secret(secret)
    if conn.execute(select(c.id).where(c.secret_hash == secret_hash)).first() is not None:
        raise Conflict("that secret is already in use by another token; choose another")
    inserted = conn.execute(t.api_tokens.insert().values(
        name=name, role=parsed.value, secret_hash=secret_hash, created_at=now,
        expires_at=None if ttl is None else now + ttl,
    )).inserted_primary_key
    assert inserted is not None
    token_id = inserted[0]
    row = conn.execute(select(*_COLUMNS).where(c.id == token_id)).one()
    return NewToken(_public(row, now), secret)


def list_tokens(conn: Connection, *, now: float | None = None) -> list[dict[str, Any]]:
    """Every token, oldest first, without secrets or hashes."""
    now = time.time() if now is None else now
    rows = conn.execute(select(*_COLUMNS).order_by(t.api_tokens.c.id)).all()
    return [_public(row, now) for row in rows]


def _by_ref(conn: Connection, ref: str) -> Any:
    c = t.api_tokens.c
    row = conn.execute(select(*_COLUMNS, c.secret_hash).where(c.name == ref)).first()
    if row is None and ref.isdigit() and len(ref) <= 18:
        row = conn.execute(select(*_COLUMNS, c.secret_hash).where(c.id == int(ref))).first()
    if row is None:
        hint = Hint("GET /api/v1/tokens", "arcade tokens")
        raise NotFound(f"no token named {ref!r} (nor with that id); list them with {hint}",
                       hints=[hint])
    return row


def revoke(conn: Connection, ref: str, *, now: float | None = None) -> Revoked:
    """Revoke the token named (or numbered) ``ref``; revoking a revoked one changes nothing.
    The last usable admin token → :class:`Conflict`."""
    now = time.time() if now is None else now
    row = _by_ref(conn, ref)
    c = t.api_tokens.c
    if row.revoked_at is None:
        if row.role == Role.ADMIN:
            others = conn.execute(select(func.count()).select_from(t.api_tokens).where(
                c.role == Role.ADMIN.value, c.id != row.id, _usable(now))).scalar_one()
            if not others:
                raise Conflict(f"{row.name!r} is the last usable admin token: create another "
                               "admin token before revoking it")
        conn.execute(update(t.api_tokens).where(c.id == row.id).values(revoked_at=now))
        row = conn.execute(select(*_COLUMNS, c.secret_hash).where(c.id == row.id)).one()
    return Revoked(_public(row, now), row.secret_hash)


def find(conn: Connection, secret_hash: str, *, now: float | None = None) -> TokenMatch | None:
    """The usable (not revoked, not expired) token whose secret hashes to ``secret_hash``."""
    now = time.time() if now is None else now
    c = t.api_tokens.c
    row = conn.execute(
        select(c.id, c.name, c.role, c.secret_hash, c.expires_at, c.last_used_at)
        .where(c.secret_hash == secret_hash, _usable(now))).first()
    if row is None or not hmac.compare_digest(row.secret_hash, secret_hash):
        return None
    return TokenMatch(Principal(row.name, Role(row.role), token_id=row.id),
                      row.expires_at, row.last_used_at)


def authenticate(conn: Connection, secret: str, *, now: float | None = None
                 ) -> Principal | None:
    """The caller a presented token secret stands for, or None (unknown, revoked, expired)."""
    match = find(conn, hash_secret(secret), now=now)
    return None if match is None else match.principal


def touch(conn: Connection, token_id: int, at: float) -> None:
    """Record that the token was used at ``at`` (the REST layer calls it at most once a
    minute per token)."""
    conn.execute(update(t.api_tokens).where(t.api_tokens.c.id == token_id)
                 .values(last_used_at=at))


def ensure_admin(conn: Connection, *, secret: str | None = None, name: str = ADMIN_NAME,
                 now: float | None = None) -> str | None:
    """With no token at all, create an admin token named ``name`` (from ``secret`` if given,
    else random) and return its secret; otherwise None. Two servers starting on one new
    database make one token: the name is unique and the loser's insert is rolled back."""
    if conn.execute(select(t.api_tokens.c.id).limit(1)).first() is not None:
        return None
    nested = conn.begin_nested()
    try:
        created = create(conn, name=name, role=Role.ADMIN, secret=secret, now=now)
    except Exception:
        nested.rollback()
        if conn.execute(select(t.api_tokens.c.id).limit(1)).first() is not None:
            return None
        raise
    nested.commit()
    return created.secret
