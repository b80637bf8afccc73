"""Bearer-token authentication and role checks for every REST route.

Each route names the role it needs in its decorator, ``dependencies=[needs(Role.OPERATOR)]``;
the routes anyone may call are listed once, in :data:`PUBLIC_ROUTES`. :func:`install_auth`
walks the app's routes when it is built and refuses to build an app with a route that is
neither (so a new route cannot be served unguarded by mistake); :func:`document_auth` adds
the 401 and 403 answers to every guarded operation of the OpenAPI document (FastAPI adds the
bearer scheme itself).

A check reads ``Authorization: Bearer <token>`` (FastAPI's :class:`HTTPBearer`, which also
puts the scheme on the OpenAPI page). No token, or one the server does not accept (unknown,
expired, revoked) → 401 with ``WWW-Authenticate: Bearer``; a token whose role is not enough
→ 403 naming the role needed.

Verified tokens are cached in memory for at most :data:`CACHE_TTL` seconds, keyed by the
secret's sha256 (:class:`Authenticator`): a cache hit costs a hash and a dict lookup, a
miss one read in the database thread pool (never on the event loop). A revocation through
this process drops the entry at once; through another replica it takes effect within
:data:`CACHE_TTL`. Expiry is checked on every hit. The token's ``last_used_at`` is written at
most once a minute per token, in the background.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..auth.roles import Principal, Role
from ..db.engine import Database
from ..errors import Forbidden, Unauthorized
from ..services import tokens
from .openapi import ERROR_REF

__all__ = [
    "CACHE_TTL",
    "PRINCIPAL_KEY",
    "PUBLIC_ROUTES",
    "Authenticator",
    "RoleCheck",
    "document_auth",
    "install_auth",
    "needs",
    "route_roles",
]

#: Longest time a verified (or refused) token is trusted without asking the database.
CACHE_TTL = 1.0
#: Entries the cache holds at most (it is emptied when full: a flood of made-up tokens
#: cannot grow it).
CACHE_SIZE = 10_000
#: ``last_used_at`` is written at most this often per token.
TOUCH_INTERVAL = 60.0
#: Where a check leaves the verified caller in the request's scope (the audit log reads it).
PRINCIPAL_KEY = "arcade.principal"

#: The only routes anyone may call, as (method, path). ``/openapi.json``, the ``/docs`` page
#: and its assets under ``/docs/assets/`` (:mod:`.docs`; not API routes) are public too.
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset({
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/tls/ca.pem"),
})

_LOGIN_HINT = ("send Authorization: Bearer <token> (the CLI: arcade login, --token or "
               "ARCADE_TOKEN; the first admin token is in the server's <home>/admin-token)")

bearer = HTTPBearer(auto_error=False, description="an Arcade API token (arcade tokens create)")


@dataclass(slots=True)
class _Entry:
    principal: Principal | None
    until: float  # monotonic
    expires_at: float | None  # wall clock


class Authenticator:
    """Maps presented secrets to callers, with the short cache described above."""

    def __init__(self, db: Database, *, ttl: float = CACHE_TTL) -> None:
        self.db = db
        self.ttl = ttl
        self._cache: dict[str, _Entry] = {}
        self._touched: dict[int, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def principal(self, secret: str) -> Principal | None:
        """The caller ``secret`` stands for, or None."""
        key = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
        entry = self._cache.get(key)
        if entry is not None and entry.until > time.monotonic():
            if entry.expires_at is None or entry.expires_at > time.time():
                return entry.principal
            return None
        now = time.time()
        match = await self.db.read(tokens.find, key, now=now)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        if match is None:
            self._cache[key] = _Entry(None, time.monotonic() + self.ttl, None)
            return None
        self._cache[key] = _Entry(match.principal, time.monotonic() + self.ttl,
                                  match.expires_at)
        self._touch(match, now)
        return match.principal

    def _touch(self, match: tokens.TokenMatch, now: float) -> None:
        token_id = match.principal.token_id
        if token_id is None:
            return
        last = max(match.last_used_at or 0.0, self._touched.get(token_id, 0.0))
        if now - last < TOUCH_INTERVAL:
            return
        self._touched[token_id] = now
        task = asyncio.get_running_loop().create_task(self._write_touch(token_id, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_touch(self, token_id: int, now: float) -> None:
        try:
            await self.db.run(tokens.touch, token_id, now)
        except Exception:  # the database is going away; the next use writes it
            self._touched.pop(token_id, None)

    def forget(self, secret_hash: str) -> None:
        """Drop a (revoked) token from the cache: refused from the next request on."""
        self._cache.pop(secret_hash, None)

    async def close(self) -> None:
        """Wait for pending ``last_used_at`` writes."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class RoleCheck:
    """The dependency behind :func:`needs`: one per role, so a test can tell which a route
    declares (:func:`route_role`)."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None or not credentials.credentials:
            raise Unauthorized(f"this call needs an API token: {_LOGIN_HINT}")
        authenticator: Authenticator = request.app.state.authenticator
        principal = await authenticator.principal(credentials.credentials)
        if principal is None:
            raise Unauthorized("the API token is not valid (unknown, expired or revoked): "
                               f"{_LOGIN_HINT}")
        request.scope[PRINCIPAL_KEY] = principal
        if not principal.may(self.role):
            raise Forbidden(
                f"this call needs the {self.role} role ("
                + " or ".join(r.value for r in self.role.holders())
                + f"); token {principal.name!r} has the {principal.role} role",
                {"needed": self.role.value, "role": principal.role.value})
        return principal


_CHECKS = {role: RoleCheck(role) for role in Role}


def needs(role: Role) -> Any:
    """``dependencies=[needs(Role.VIEWER)]``: the route answers only callers with ``role``
    (or one that includes it)."""
    return Depends(_CHECKS[role])


def _role_of(dependencies: Any) -> Role | None:
    found = [d.dependency.role for d in dependencies or ()
             if isinstance(d, DependsParam) and isinstance(d.dependency, RoleCheck)]
    if len(found) > 1:
        raise RuntimeError(f"a route declares more than one role: {found}")
    return found[0] if found else None


def route_roles(app: FastAPI) -> dict[tuple[str, str], Role | None]:
    """Every API operation of ``app`` as ``(METHOD, path)`` → the role it needs, or None for
    the public ones; :class:`RuntimeError` for a route that is neither."""
    roles: dict[tuple[str, str], Role | None] = {}
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        path = str(context.path)
        role = _role_of(context.dependencies)
        for method in sorted(context.methods or ()):
            public = (method, path) in PUBLIC_ROUTES
            if public and role is not None:
                raise RuntimeError(f"{method} {path} is public but declares the {role} role")
            if not public and role is None:
                raise RuntimeError(
                    f"{method} {path} declares no role: add dependencies=[needs(Role....)] "
                    "to its decorator, or list it in PUBLIC_ROUTES")
            roles[(method, path)] = role
    return roles


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": ERROR_REF}}}}


def document_auth(document: dict[str, Any], roles: dict[tuple[str, str], Role | None]
                  ) -> None:
    """Add the 401 and 403 answers to every guarded operation of an OpenAPI document."""
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            role = roles.get((method.upper(), path))
            if role is None:
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", _error(
                "no API token, or one that is unknown, expired or revoked "
                "(WWW-Authenticate: Bearer)"))
            responses.setdefault("403", _error(
                f"the token's role is not enough: this call needs the {role} role ("
                + " or ".join(r.value for r in role.holders()) + ")"))


def install_auth(app: FastAPI, db: Database) -> Authenticator:
    """Check that every API route is public or declares a role (:func:`route_roles`), and
    give the app its :class:`Authenticator`. Call after every route is added."""
    app.state.route_roles = route_roles(app)
    authenticator = Authenticator(db)
    app.state.authenticator = authenticator
    return authenticator
