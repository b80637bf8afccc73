"""Agents: registration, liveness, listing (status reports: :mod:`.status_reports`).

Heartbeats do not touch the database one by one: :class:`arcade_server.presence.Presence`
keeps "last seen" in memory and :func:`flush_presence` writes them in one batch every few
seconds, so a fleet of thousands of agents costs one statement per interval. An agent is
online when its last sign of life (from memory, else from the database, which may come from
another replica) is younger than ``offline_after`` and its stream has not closed since
(:func:`is_online`: the newer of the in-memory departure and ``agents.disconnected_at``).

Registrations and status reports arrive in bursts (a fleet reconnecting, a fleet-wide
rollout): :func:`register_many` writes many agents' registrations in a handful of
``executemany`` statements, and the server feeds them through a
:class:`~arcade_server.db.batcher.Batcher` (one transaction per batch). :func:`register` is
the one-agent form.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from arcade_core.job_policy import JobPolicy
from arcade_core.states import AgentPresence, PluginState

from ..db import tables as t
from ..db.tables import AnyRow
from ..errors import Hint, Invalid, NotFound
from ..limits import check_labels
from ._sql import upsert
from ._text import clip
from .status_reports import ReportedPlugin, check_reported, state_rows

__all__ = [
    "MAX_JOB_PATTERNS",
    "MAX_JOB_PATTERN_CHARS",
    "AgentInfo",
    "Liveness",
    "agent_dict",
    "bump_revisions",
    "flush_presence",
    "get_agent",
    "get_agent_row",
    "is_online",
    "job_policy",
    "list_agents",
    "register",
    "register_many",
    "validate_agent_id",
    "validate_job_allow",
    "validate_registration",
]

_AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")


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
    #: The agent's own ``[jobs]`` policy: it runs job commands only when enabled, and then
    #: only those matching ``jobs_allow`` (empty: any); see :mod:`arcade_core.job_policy`.
    jobs_enabled: bool = False
    jobs_allow: Sequence[str] = ()


def validate_agent_id(agent_id: str) -> str:
    if not _AGENT_ID.match(agent_id or ""):
        raise Invalid(
            f"invalid agent id {agent_id!r}: use 1-200 letters, digits and . _ : @ -, "
            "starting with a letter or digit"
        )
    return agent_id




#: Most ``[jobs] allow`` patterns an agent may register, and characters per pattern.
MAX_JOB_PATTERNS = 100
MAX_JOB_PATTERN_CHARS = 1000


def validate_job_allow(patterns: Sequence[str]) -> list[str]:
    """The agent's ``[jobs] allow`` patterns, if few and short enough."""
    if len(patterns) > MAX_JOB_PATTERNS:
        raise Invalid(f"{len(patterns)} [jobs] allow patterns; at most {MAX_JOB_PATTERNS}")
    for pattern in patterns:
        if not pattern.strip() or len(pattern) > MAX_JOB_PATTERN_CHARS or "\0" in pattern:
            raise Invalid(f"[jobs] allow pattern {pattern[:100]!r} must be 1 to "
                          f"{MAX_JOB_PATTERN_CHARS} characters without NUL")
    return list(patterns)


def job_policy(agent: AnyRow) -> JobPolicy:
    """The job policy an agent registered (a row of ``agents``)."""
    return JobPolicy(bool(agent.jobs_enabled), tuple(agent.jobs_allow or ()))


def validate_registration(info: AgentInfo) -> AgentInfo:
    """Check the agent id, labels, job patterns and reported plugin states (raises
    :class:`Invalid`)."""
    validate_agent_id(info.agent_id)
    check_labels(info.labels)
    validate_job_allow(info.jobs_allow)
    check_reported(info.plugins)
    return info


_AGENT_FACTS = ["hostname", "ip", "os", "arch", "agent_version", "python_version", "labels",
                "applied_revision", "jobs_enabled", "jobs_allow", "connected_at", "last_seen"]


def register_many(conn: Connection, infos: Sequence[AgentInfo], *, now: float | None = None
                  ) -> list[None]:
    """Register several agents at once (a later registration of the same id wins): create or
    update each agent, replace its labels, and record what it really runs. One upsert and
    four ``executemany`` statements whatever the number of agents."""
    now = time.time() if now is None else now
    latest: dict[str, tuple[AgentInfo, dict[str, str]]] = {}
    for info in infos:
        latest[validate_agent_id(info.agent_id)] = (info, check_labels(info.labels))
    if not latest:
        return []
    rows = [
        {"id": agent_id, "hostname": clip(info.hostname, 300), "ip": clip(info.ip, 100),
         "os": clip(info.os, 100), "arch": clip(info.arch, 100),
         "agent_version": clip(info.agent_version, 100),
         "python_version": clip(info.python_version, 100), "labels": labels,
         "desired_revision": 0, "applied_revision": max(0, info.applied_revision),
         "metrics_dropped": 0, "jobs_enabled": bool(info.jobs_enabled),
         "jobs_allow": validate_job_allow(info.jobs_allow),
         "registered_at": now, "connected_at": now, "last_seen": now}
        for agent_id, (info, labels) in latest.items()
    ]
    upsert(conn, t.agents, rows, keys=["id"], update=_AGENT_FACTS)
    ids = list(latest)
    label_rows = [{"agent_id": agent_id, "key": k, "value": v}
                  for agent_id, (_info, labels) in latest.items() for k, v in labels.items()]
    # What an agent reports at register is the whole truth: drop anything it no longer runs.
    plugin_rows = [
        row
        for agent_id, (info, _labels) in latest.items()
        for row in {r["plugin_name"]: r for r in state_rows(
            agent_id, info.plugins, info.applied_revision, now)}.values()
        if row["state"] != PluginState.REMOVED
    ]
    labels_table, states_table = t.agent_labels, t.plugin_states
    conn.execute(labels_table.delete().where(labels_table.c.agent_id.in_(ids)))
    if label_rows:
        conn.execute(labels_table.insert(), label_rows)
    conn.execute(states_table.delete().where(states_table.c.agent_id.in_(ids)))
    if plugin_rows:
        conn.execute(states_table.insert(), plugin_rows)
    return [None] * len(infos)


def register(conn: Connection, info: AgentInfo, *, now: float | None = None) -> None:
    """Create or update the agent, replace its labels, and record what it really runs."""
    register_many(conn, [info], now=now)


def flush_presence(conn: Connection, seen: Mapping[str, tuple[float, int]],
                   left: Mapping[str, float] | None = None) -> None:
    """Write in-memory ``{agent_id: (last_seen, applied_revision)}`` and departures
    ``{agent_id: left_at}`` in (at most) two ``executemany`` statements."""
    agents = t.agents
    if seen:
        conn.execute(
            agents.update().where(agents.c.id == bindparam("b_id"))
            .values(last_seen=bindparam("b_seen")),
            [{"b_id": agent_id, "b_seen": ts} for agent_id, (ts, _rev) in seen.items()],
        )
    if left:
        conn.execute(
            agents.update().where(agents.c.id == bindparam("b_id"))
            .values(disconnected_at=bindparam("b_left")),
            [{"b_id": agent_id, "b_left": at} for agent_id, at in left.items()],
        )


def is_online(agent: AnyRow, *, last_seen: float | None, left_at: float | None,
              offline_after: float, now: float) -> tuple[bool, float | None]:
    """``(online, seen)``: the agent was seen within ``offline_after`` (the newer of this
    process's memory and the database) and has not left since (its stream closed here, or
    ``disconnected_at`` written by any replica)."""
    seen = max(filter(None, (agent.last_seen, last_seen)), default=None)
    gone = max(filter(None, (agent.disconnected_at, left_at)), default=None)
    online = (seen is not None and now - seen <= offline_after
              and (gone is None or gone < seen))
    return online, seen


@dataclass(frozen=True)
class Liveness:
    """What decides presence, taken from the server's memory for one read: last-seen and
    left times of this process (:class:`~arcade_server.presence.Presence`), the
    ``offline_after`` setting and the time of the read."""

    last_seen: Mapping[str, float]
    left: Mapping[str, float]
    offline_after: float
    now: float = field(default_factory=time.time)

    def online(self, agent: AnyRow) -> bool:
        """Whether the agent (its ``agents`` row) is online (:func:`is_online`)."""
        return is_online(agent, last_seen=self.last_seen.get(agent.id),
                         left_at=self.left.get(agent.id), offline_after=self.offline_after,
                         now=self.now)[0]


def agent_dict(
    agent: AnyRow,
    *,
    last_seen: float | None,
    offline_after: float,
    now: float,
    connected: bool | None = None,
    left_at: float | None = None,
) -> dict[str, Any]:
    online, seen = is_online(agent, last_seen=last_seen, left_at=left_at,
                             offline_after=offline_after, now=now)
    data: dict[str, Any] = {
        "id": agent.id,
        "hostname": agent.hostname,
        "ip": agent.ip,
        "os": agent.os,
        "arch": agent.arch,
        "agent_version": agent.agent_version,
        "python_version": agent.python_version,
        "labels": dict(agent.labels or {}),
        "status": AgentPresence.ONLINE if online else AgentPresence.OFFLINE,
        "online": online,
        "last_seen": seen,
        "registered_at": agent.registered_at,
        "desired_revision": agent.desired_revision,
        "applied_revision": agent.applied_revision,
        "metrics_dropped": agent.metrics_dropped,
        "jobs": {"enabled": bool(agent.jobs_enabled), "allow": list(agent.jobs_allow or ())},
    }
    if connected is not None:
        data["connected"] = connected
    return data


def get_agent_row(conn: Connection, agent_id: str) -> AnyRow:
    """The agent's ``agents`` row (404 if it never registered)."""
    agent = conn.execute(select(t.agents).where(t.agents.c.id == agent_id)).first()
    if agent is None:
        hint = Hint("GET /api/v1/agents", "arcade agents")
        raise NotFound(f"no agent with id {agent_id!r} has registered; list agents with {hint}",
                       hints=[hint])
    return agent


def list_agents(
    conn: Connection,
    *,
    last_seen: Mapping[str, float],
    offline_after: float,
    labels: Mapping[str, str] | None = None,
    status: str | None = None,
    now: float | None = None,
    left: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """All agents (optionally those with every given label), by id; ``left``: when agents'
    streams to this process closed (:meth:`Presence.departures`)."""
    left = left or {}
    now = time.time() if now is None else now
    query = select(t.agents).order_by(t.agents.c.id)
    label = t.agent_labels.c
    for key, value in (labels or {}).items():
        query = query.where(
            t.agents.c.id.in_(select(label.agent_id).where(label.key == key, label.value == value))
        )
    out = [
        agent_dict(a, last_seen=last_seen.get(a.id), offline_after=offline_after, now=now,
                   left_at=left.get(a.id))
        for a in conn.execute(query)
    ]
    if status:
        out = [a for a in out if a["status"] == status]
    return out


def get_agent(
    conn: Connection,
    agent_id: str,
    *,
    last_seen: float | None,
    offline_after: float,
    connected: bool | None = None,
    now: float | None = None,
    left_at: float | None = None,
) -> dict[str, Any]:
    agent = get_agent_row(conn, agent_id)
    return agent_dict(agent, last_seen=last_seen, offline_after=offline_after,
                      now=time.time() if now is None else now, connected=connected,
                      left_at=left_at)


def bump_revisions(conn: Connection, where: Any) -> dict[str, int]:
    """Give the agents matching the SQL condition ``where`` a new desired revision (their
    desired state changed: an assignment, or a signature of a version they run); returns
    agent id -> new revision, the agents to notify."""
    agent = t.agents.c
    rows = conn.execute(
        update(t.agents)
        .where(where)
        .values(desired_revision=agent.desired_revision + 1)
        .returning(agent.id, agent.desired_revision)
    ).all()
    return {agent_id: revision for agent_id, revision in rows}
