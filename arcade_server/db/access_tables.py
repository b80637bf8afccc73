"""The tables of identity and access: operator tokens, the audit log, enrollment tokens
and enrolled agent identities (issue 13). Part of :mod:`arcade_server.db.tables`, which
re-exports them; see its docstring for what each holds.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Double, Index, Integer, String, Table

from .columns import BigId, metadata
from .columns import optional as _optional
from .columns import required as _column

__all__ = ["agent_identities", "api_tokens", "audit_log", "enrollment_tokens"]

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _column("name", String(100), unique=True),
    # viewer | publisher | operator | admin
    _column("role", String(20)),
    # sha256 (hex) of the secret: enough to check one, useless to present one.
    _column("secret_hash", String(64), unique=True),
    _column("created_at", Double),
    _optional("expires_at", Double),
    _optional("revoked_at", Double),
    _optional("last_used_at", Double),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    _column("at", Double),
    # The token's name, the agent's id, "system" or "anonymous".
    _column("actor", String(200)),
    # token | agent | system | anonymous
    _column("actor_kind", String(20)),
    _column("role", String(20), default=""),
    _column("remote", String(100), default=""),
    # "POST /api/v1/agents/{agent_id}/plugins" or a verb such as "agent.enroll".
    _column("action", String(200)),
    # What the action was on, as a path below /api/v1 ("agents/web-1/plugins/cpu").
    _column("target", String(500), default=""),
    # The HTTP status ("201", "403") or ok | denied | error.
    _column("outcome", String(50)),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_actor_at", "actor", "at"),
    Index("ix_audit_log_target", "target"),
)


enrollment_tokens = Table(
    "enrollment_tokens", metadata,
    Column("id", String(32), primary_key=True),
    _column("name", String(200), default=""),
    _column("token_hash", String(64), unique=True),
    _column("labels", JSON),
    _column("created_at", Double),
    _column("expires_at", Double),
    _optional("max_uses", Integer),
    _column("uses", Integer, default=0),
)

agent_identities = Table(
    "agent_identities", metadata,
    Column("agent_id", String(200), primary_key=True),
    _column("serial", String(64)),
    _optional("previous_serial", String(64)),
    _column("fingerprint", String(80)),
    _column("not_after", Double),
    _column("labels", JSON),
    _column("enrolled_at", Double),
    _optional("revoked_at", Double),
    _column("enrollment_token_id", String(32)),
)
