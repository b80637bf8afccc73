"""The fleet as a whole: every agent × plugin with state counts (``GET /status``), and
removing an agent that is gone for good (``DELETE /agents/{id}``).

:func:`fleet_status` reads any number of agents in a constant number of queries (the agents
matching a label selector, then their desired and actual plugins in bounded ``IN`` lists:
:func:`arcade_server.services.plugin_states.plugins_of`), never one query per agent.

:func:`delete_agent` removes an agent's rows (plugins, assignments, labels, metrics, jobs)
in one transaction and revokes its identity in the same one, so its certificate is refused
from then on: a deleted agent cannot silently come back (it can only enroll again with a new
enrollment token). An online agent is refused (409) unless forced.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from arcade_core.states import AgentPresence, PluginState

from ..db import tables as t
from ..errors import Conflict
from .agents import Liveness, get_agent_row
from .plugin_states import plugins_of

__all__ = ["delete_agent", "fleet_status", "plugin_counts"]


def fleet_status(conn: Connection, liveness: Liveness,
                 selector: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every agent matching ``selector`` (every label given; none: all) with its plugins,
    desired beside actual (``stale`` when the agent is offline), and the counts: agents
    online and offline, plugins by state."""
    query = select(t.agents.c.id, t.agents.c.hostname, t.agents.c.labels,
                   t.agents.c.last_seen, t.agents.c.disconnected_at).order_by(t.agents.c.id)
    label = t.agent_labels.c
    for key, value in (selector or {}).items():
        query = query.where(t.agents.c.id.in_(
            select(label.agent_id).where(label.key == key, label.value == value)))
    rows = conn.execute(query).all()
    online = {row.id: liveness.online(row) for row in rows}
    plugins = plugins_of(conn, online)
    agents = []
    for row in rows:
        seen = max(filter(None, (row.last_seen, liveness.last_seen.get(row.id))), default=None)
        agents.append({
            "id": row.id, "hostname": row.hostname, "labels": dict(row.labels or {}),
            "status": AgentPresence.ONLINE if online[row.id] else AgentPresence.OFFLINE,
            "online": online[row.id], "last_seen": seen, "plugins": plugins[row.id],
        })
    up = sum(online.values())
    entries = [p for a in agents for p in a["plugins"]]
    return {
        "selector": dict(selector or {}),
        "agents": agents,
        "online": up,
        "offline": len(agents) - up,
        "states": plugin_counts(entries),
        "stale": sum(1 for p in entries if p["actual"] and p["actual"]["stale"]),
    }


def plugin_counts(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Plugins by state: the reported state, ``pending`` for an assigned plugin its agent
    has not reported yet."""
    counts = Counter(str(p["actual"]["state"]) if p["actual"] else str(PluginState.PENDING)
                     for p in entries)
    return dict(sorted(counts.items()))


def delete_agent(conn: Connection, agent_id: str, liveness: Liveness, *, force: bool = False,
                 now: float | None = None) -> dict[str, Any]:
    """Remove ``agent_id`` and everything stored about it, and revoke its identity (one
    transaction). An agent ``liveness`` says is online is refused unless ``force``."""
    now = time.time() if now is None else now
    online = liveness.online(get_agent_row(conn, agent_id))
    if online and not force:
        raise Conflict(
            f"agent {agent_id!r} is online: stop it first, or delete it anyway with "
            f"`arcade agents delete {agent_id} --force` (DELETE /api/v1/agents/{agent_id}"
            "?force=true); its stream is closed and its certificate refused")
    identities = t.agent_identities
    revoked = conn.execute(
        update(identities).where(identities.c.agent_id == agent_id,
                                 identities.c.revoked_at.is_(None))
        .values(revoked_at=now)).rowcount or 0
    counts: dict[str, int] = {}
    for name, table in (("metrics", t.metrics), ("jobs", t.jobs),
                        ("plugins", t.plugin_states), ("assignments", t.assignments)):
        counts[name] = int(conn.scalar(select(func.count()).select_from(table)
                                       .where(table.c.agent_id == agent_id)) or 0)
    job_ids = select(t.jobs.c.id).where(t.jobs.c.agent_id == agent_id)
    conn.execute(delete(t.job_plugins).where(t.job_plugins.c.job_id.in_(job_ids)))
    for table in (t.jobs, t.metrics, t.plugin_states, t.assignments, t.agent_labels):
        conn.execute(delete(table).where(table.c.agent_id == agent_id))
    conn.execute(delete(t.agents).where(t.agents.c.id == agent_id))
    return {"agent": agent_id, "deleted": True, "was_online": online,
            "revoked": bool(revoked), "rows": counts}
