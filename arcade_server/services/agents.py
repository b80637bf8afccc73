"""Agents: registration, status reports (the "actual" state), liveness, listing.

Heartbeats do not touch the database one by one: :class:`arcade_server.presence.Presence`
keeps "last seen" in memory and :func:`flush_presence` writes them in one batch every few
seconds, so a fleet of thousands of agents costs one statement per interval. An agent is
online when its last heartbeat (from memory, else from the database, which may come from
another replica) is younger than ``offline_after``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from ..db.models import Agent, AgentLabel, PluginState
from ..errors import Invalid, NotFound
from ._sql import upsert

__all__ = [
    "PLUGIN_STATES",
    "AgentInfo",
    "ReportedPlugin",
    "agent_dict",
    "flush_presence",
    "get_agent",
    "get_agent_row",
    "list_agents",
    "register",
    "report_status",
    "validate_agent_id",
    "validate_labels",
]

PLUGIN_STATES = frozenset(
    {"downloading", "installing", "running", "failed", "removed", "stopped", "pending"}
)
FINAL_STATES = frozenset({"running", "failed"})
_AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


@dataclass(frozen=True)
class ReportedPlugin:
    """One plugin as the agent reports it (register or status report)."""

    name: str
    version: str
    state: str
    error: str = ""
    restarts: int = 0
    isolation: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class AgentInfo:
    """What an agent says about itself when it registers."""

    agent_id: str
    hostname: str = ""
    ip: str = ""
    os: str = ""
    arch: str = ""
    agent_version: str = ""
    python_version: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    plugins: Sequence[ReportedPlugin] = ()
    applied_revision: int = 0


def validate_agent_id(agent_id: str) -> str:
    if not _AGENT_ID.match(agent_id or ""):
        raise Invalid(
            f"invalid agent id {agent_id!r}: use 1-200 letters, digits and . _ : @ -, "
            "starting with a letter or digit"
        )
    return agent_id


def validate_labels(labels: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL_KEY.match(key):
            raise Invalid(
                f"invalid label key {key!r}: use 1-200 letters, digits and . _ / -, "
                "starting with a letter or digit"
            )
        if not isinstance(value, str) or len(value) > 500:
            raise Invalid(f"invalid value for label {key!r}: a string of at most 500 characters")
        out[key] = value
    return out


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _state_rows(agent_id: str, plugins: Sequence[ReportedPlugin], revision: int, now: float
                ) -> list[dict[str, Any]]:
    rows = []
    for p in plugins:
        if p.state not in PLUGIN_STATES:
            raise Invalid(
                f"plugin {p.name!r}: unknown state {p.state!r}; expected one of "
                f"{', '.join(sorted(PLUGIN_STATES))}"
            )
        rows.append({
            "agent_id": agent_id, "plugin_name": _clip(p.name, 200),
            "version": _clip(p.version, 100), "state": p.state,
            "error": _clip(p.error, 8000), "restarts": max(0, p.restarts),
            "isolation": _clip(p.isolation, 20), "sha256": p.sha256[:64],
            "revision": revision, "updated_at": now,
        })
    return rows


def register(session: Session, info: AgentInfo, *, now: float | None = None) -> None:
    """Create or update the agent, replace its labels, and record what it really runs."""
    now = time.time() if now is None else now
    agent_id = validate_agent_id(info.agent_id)
    labels = validate_labels(info.labels)
    agent = session.get(Agent, agent_id)
    if agent is None:
        agent = Agent(id=agent_id, registered_at=now, labels={}, desired_revision=0,
                      applied_revision=0, metrics_dropped=0)
        session.add(agent)
    agent.hostname = _clip(info.hostname, 300)
    agent.ip = _clip(info.ip, 100)
    agent.os = _clip(info.os, 100)
    agent.arch = _clip(info.arch, 100)
    agent.agent_version = _clip(info.agent_version, 100)
    agent.python_version = _clip(info.python_version, 100)
    agent.labels = labels
    agent.applied_revision = max(0, info.applied_revision)
    agent.connected_at = now
    agent.last_seen = now
    session.flush()
    session.execute(delete(AgentLabel).where(AgentLabel.agent_id == agent_id))
    if labels:
        session.execute(
            insert(AgentLabel),
            [{"agent_id": agent_id, "key": k, "value": v} for k, v in labels.items()],
        )
    # What the agent reports at register is the whole truth: drop anything it no longer runs.
    session.execute(delete(PluginState).where(PluginState.agent_id == agent_id))
    rows = {r["plugin_name"]: r
            for r in _state_rows(agent_id, info.plugins, info.applied_revision, now)
            if r["state"] != "removed"}
    if rows:
        session.execute(insert(PluginState), list(rows.values()))


def report_status(
    session: Session,
    agent_id: str,
    revision: int,
    plugins: Sequence[ReportedPlugin],
    *,
    complete: bool = False,
    now: float | None = None,
) -> None:
    """Store per-plugin statuses (``removed`` deletes the row); a complete report for a
    revision marks that revision applied."""
    now = time.time() if now is None else now
    rows = list({r["plugin_name"]: r for r in _state_rows(agent_id, plugins, revision, now)
                 }.values())
    removed = [r["plugin_name"] for r in rows if r["state"] == "removed"]
    kept = [r for r in rows if r["state"] != "removed"]
    if removed:
        session.execute(delete(PluginState).where(
            PluginState.agent_id == agent_id, PluginState.plugin_name.in_(removed)
        ))
    if kept:
        upsert(session, PluginState, kept, keys=["agent_id", "plugin_name"],
               update=["version", "state", "error", "restarts", "isolation", "sha256",
                       "revision", "updated_at"])
    values: dict[str, Any] = {"last_seen": now}
    if complete:
        values["applied_revision"] = revision
    session.execute(update(Agent).where(Agent.id == agent_id).values(**values))


def flush_presence(session: Session, seen: Mapping[str, tuple[float, int]]) -> None:
    """Write in-memory ``{agent_id: (last_seen, applied_revision)}`` in one batch."""
    if not seen:
        return
    # ORM bulk UPDATE by primary key: one executemany for all agents.
    session.execute(
        update(Agent), [{"id": agent_id, "last_seen": ts} for agent_id, (ts, _rev) in seen.items()]
    )


def agent_dict(
    agent: Agent,
    *,
    last_seen: float | None,
    offline_after: float,
    now: float,
    connected: bool | None = None,
) -> dict[str, Any]:
    seen = max(filter(None, (agent.last_seen, last_seen)), default=None)
    online = seen is not None and now - seen <= offline_after
    data: dict[str, Any] = {
        "id": agent.id,
        "hostname": agent.hostname,
        "ip": agent.ip,
        "os": agent.os,
        "arch": agent.arch,
        "agent_version": agent.agent_version,
        "python_version": agent.python_version,
        "labels": dict(agent.labels or {}),
        "status": "online" if online else "offline",
        "online": online,
        "last_seen": seen,
        "registered_at": agent.registered_at,
        "desired_revision": agent.desired_revision,
        "applied_revision": agent.applied_revision,
        "metrics_dropped": agent.metrics_dropped,
    }
    if connected is not None:
        data["connected"] = connected
    return data


def get_agent_row(session: Session, agent_id: str) -> Agent:
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise NotFound(
            f"no agent with id {agent_id!r} has registered; list agents with GET /api/v1/agents"
        )
    return agent


def list_agents(
    session: Session,
    *,
    last_seen: Mapping[str, float],
    offline_after: float,
    labels: Mapping[str, str] | None = None,
    status: str | None = None,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """All agents (optionally those with every given label), online first by id."""
    now = time.time() if now is None else now
    query = select(Agent).order_by(Agent.id)
    for key, value in (labels or {}).items():
        query = query.where(
            Agent.id.in_(select(AgentLabel.agent_id).where(
                AgentLabel.key == key, AgentLabel.value == value
            ))
        )
    out = [
        agent_dict(a, last_seen=last_seen.get(a.id), offline_after=offline_after, now=now)
        for a in session.scalars(query)
    ]
    if status:
        out = [a for a in out if a["status"] == status]
    return out


def get_agent(
    session: Session,
    agent_id: str,
    *,
    last_seen: float | None,
    offline_after: float,
    connected: bool | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    agent = get_agent_row(session, agent_id)
    return agent_dict(agent, last_seen=last_seen, offline_after=offline_after,
                      now=time.time() if now is None else now, connected=connected)
