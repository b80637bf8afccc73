"""The audit log: who did what, on what, from where, with which outcome.

Rows are only ever added (:func:`record`, :func:`record_many`) and read (:func:`query`); no
API updates or deletes them. The REST layer records every mutating call once, generically
(:mod:`arcade_server.api.audit`), including refused ones; code that acts outside REST (agent
enrollment and revocation over gRPC, the first admin token) calls :func:`record` itself::

    await state.db.run(audit.record, actor=agent_id, actor_kind=ActorKind.AGENT,
                       action="agent.enroll", target=f"agents/{agent_id}", outcome="ok",
                       remote=peer_address)

Never pass request bodies or secrets: an entry names things, it does not carry them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, or_, select

from ..auth.roles import ActorKind
from ..db import tables as t
from ..errors import Invalid

__all__ = ["QUERY_LIMIT", "AuditEntry", "purge", "query", "record", "record_many"]

#: Most rows one query returns.
QUERY_LIMIT = 1000

_LIMITS = {"actor": 200, "role": 20, "remote": 100, "action": 200, "target": 500,
           "outcome": 50}


@dataclass(frozen=True)
class AuditEntry:
    """One audit row before it is written (``at`` 0: the time it is written)."""

    actor: str
    actor_kind: ActorKind
    action: str
    outcome: str
    role: str = ""
    target: str = ""
    remote: str = ""
    at: float = 0.0

    def row(self, now: float) -> dict[str, Any]:
        values = asdict(self)
        for name, limit in _LIMITS.items():
            values[name] = str(values[name])[:limit]
        values["actor_kind"] = ActorKind(self.actor_kind).value
        values["at"] = self.at or now
        return values


def record_many(conn: Connection, entries: Sequence[AuditEntry]) -> list[None]:
    """Write ``entries`` in one INSERT (one ``None`` per entry, for a batcher)."""
    if entries:
        now = time.time()
        conn.execute(t.audit_log.insert(), [entry.row(now) for entry in entries])
    return [None] * len(entries)


def record(
    conn: Connection,
    *,
    actor: str,
    actor_kind: ActorKind,
    action: str,
    outcome: str,
    role: str = "",
    target: str = "",
    remote: str = "",
) -> None:
    """Add one row: ``actor`` (token name, agent id, "system"), ``actor_kind``, ``action``
    (``"POST /api/v1/plugins"`` or a verb such as ``"agent.enroll"``), ``outcome`` (an HTTP
    status, or ok / denied / error), the actor's ``role`` if any, ``target`` (a path below
    /api/v1 such as ``agents/web-1``) and the caller's ``remote`` address."""
    record_many(conn, [AuditEntry(actor=actor, actor_kind=actor_kind, action=action,
                                  outcome=outcome, role=role, target=target, remote=remote)])


def _seconds(name: str, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise Invalid(f"{name} must be a time in seconds since the epoch")
    return value


def query(
    conn: Connection,
    *,
    since: float | None = None,
    until: float | None = None,
    actor: str | None = None,
    target: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Rows newest first: at or after ``since``, before ``until`` (epoch seconds), by
    ``actor`` exactly, on ``target`` or anything below it (``agents/web-1`` matches
    ``agents/web-1/plugins/cpu``); at most ``limit`` (1 - :data:`QUERY_LIMIT`)."""
    if not 1 <= limit <= QUERY_LIMIT:
        raise Invalid(f"limit must be between 1 and {QUERY_LIMIT}")
    since, until = _seconds("since", since), _seconds("until", until)
    c = t.audit_log.c
    stmt = select(c.id, c.at, c.actor, c.actor_kind, c.role, c.remote, c.action, c.target,
                  c.outcome)
    if since is not None:
        stmt = stmt.where(c.at >= since)
    if until is not None:
        stmt = stmt.where(c.at < until)
    if actor:
        stmt = stmt.where(c.actor == actor)
    if target:
        target = target.strip("/")
        stmt = stmt.where(or_(c.target == target,
                              c.target.startswith(target + "/", autoescape=True)))
    rows = conn.execute(stmt.order_by(c.id.desc()).limit(limit)).all()
    return [dict(row._mapping) for row in rows]


def purge(conn: Connection, *, before: float, keep_rows: int) -> int:
    """The audit log's retention (the server's sweep, never the API): delete rows older than
    ``before`` and all but the newest ``keep_rows``; return how many went."""
    log_ = t.audit_log
    deleted = conn.execute(log_.delete().where(log_.c.at < before)).rowcount or 0
    cutoff = conn.scalar(select(log_.c.id).order_by(log_.c.id.desc())
                         .offset(keep_rows).limit(1))
    if cutoff is not None:
        deleted += conn.execute(log_.delete().where(log_.c.id <= cutoff)).rowcount or 0
    return int(deleted)
