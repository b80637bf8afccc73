"""Plugin states: what agents report running, beside what they should run.

:func:`agent_plugins` shows one agent's desired and actual plugins side by side
(:func:`plugins_of`: many agents' at once, for the fleet view); an offline agent's actual
states are its last known ones, marked ``stale``;
:func:`install_outcomes`, :func:`removal_outcomes` and :func:`current_states` answer the
``?wait=`` of installs, config changes and uninstalls (has each agent finished applying the
change, and how did it go).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select

from arcade_core import Manifest
from arcade_core.states import FINAL_PLUGIN_STATES, PluginState

from ..db import tables as t
from ..db.tables import AnyRow
from . import registry, secrets
from ._overrides import desired_entry
from .agents import Liveness, get_agent_row

__all__ = ["agent_plugins", "current_states", "install_outcomes", "plugins_of", "removal_outcomes"]

#: The states in which the agent runs the version it reports (``degraded``: its calls fail).
_LOADED = (PluginState.RUNNING, PluginState.DEGRADED)


def agent_plugins(conn: Connection, agent_id: str, liveness: Liveness | None = None
                  ) -> list[dict[str, Any]]:
    """Desired and actual, side by side, one entry per plugin name (secrets redacted); the
    actual states are ``stale`` when ``liveness`` says the agent is offline."""
    agent = get_agent_row(conn, agent_id)
    online = True if liveness is None else liveness.online(agent)
    return plugins_of(conn, {agent_id: online})[agent_id]


def plugins_of(conn: Connection, agents: Mapping[str, bool]) -> dict[str, list[dict[str, Any]]]:
    """:func:`agent_plugins` for many agents (``{agent_id: online}``) in two queries
    whatever their number (the fleet view of ``GET /status``)."""
    ids = list(agents)
    out: dict[str, list[dict[str, Any]]] = {agent_id: [] for agent_id in ids}
    if not ids:
        return out
    assigned, v = t.assignments.c, t.plugin_versions.c
    desired: dict[str, dict[str, Any]] = {agent_id: {} for agent_id in ids}
    actual: dict[str, dict[str, Any]] = {agent_id: {} for agent_id in ids}
    for chunk in _chunks(ids):
        for row in conn.execute(
            select(assigned.agent_id, assigned.plugin_name, v.version, v.manifest,
                   assigned.config, assigned.isolation, assigned.interval, assigned.resources,
                   assigned.revision, assigned.updated_at)
            .join(t.plugin_versions, v.id == assigned.version_id)
            .where(assigned.agent_id.in_(chunk))
        ):
            desired[row.agent_id][row.plugin_name] = row
        for row in conn.execute(
                select(t.plugin_states).where(t.plugin_states.c.agent_id.in_(chunk))):
            actual[row.agent_id][row.plugin_name] = row
    manifests: dict[tuple[str, str], Manifest] = {}  # parsed once per version
    for agent_id in ids:
        mine, theirs = desired[agent_id], actual[agent_id]
        for name in sorted(set(mine) | set(theirs)):
            a = mine.get(name)
            s = theirs.get(name)
            out[agent_id].append({
                "name": name,
                "desired": None if a is None else desired_entry(
                    a, secrets.redact(a.config, (a.manifest or {}).get("config_schema")),
                    a.isolation, a.revision, a.updated_at, a.interval, a.resources,
                    manifest=_manifest(manifests, a)),
                "actual": None if s is None else {**_actual(s), "stale": not agents[agent_id]},
                "in_sync": a is not None and s is not None and s.state in _LOADED
                and s.version == a.version,
            })
    return out


def _manifest(cache: dict[tuple[str, str], Manifest], row: AnyRow) -> Manifest:
    """The manifest of the version ``row`` is assigned, parsed once per version."""
    key = (row.plugin_name, row.version)
    if key not in cache:
        cache[key] = registry.manifest_of(row)
    return cache[key]


def _actual(row: AnyRow) -> dict[str, Any]:
    """A ``plugin_states`` row as the API's actual state: every column but the keys
    (``drift`` NULL, never drifted, as an empty list)."""
    actual = {k: v for k, v in row._mapping.items() if k not in ("agent_id", "plugin_name")}
    actual["drift"] = actual.get("drift") or []
    return actual


def _chunks(ids: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    """``IN`` lists of a bounded length (SQLite's bound-parameter limit)."""
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def install_outcomes(
    conn: Connection, revisions: Mapping[str, int], name: str, version: str
) -> dict[str, dict[str, Any] | None]:
    """For each agent, its final report (``running``/``failed``) for ``name@version`` made
    while applying ``revisions[agent]`` or later, or ``None`` while it has not sent one."""
    if not revisions:
        return {}
    ids = list(revisions)
    ps, agent = t.plugin_states.c, t.agents.c
    states = {
        s.agent_id: s
        for s in conn.execute(select(
            ps.agent_id, ps.version, ps.state, ps.error, ps.restarts, ps.revision,
        ).where(ps.plugin_name == name, ps.agent_id.in_(ids)))
    }
    applied: dict[str, int] = dict(conn.execute(
        select(agent.id, agent.applied_revision).where(agent.id.in_(ids))
    ).all())
    out: dict[str, dict[str, Any] | None] = {}
    for agent_id, revision in revisions.items():
        state = states.get(agent_id)
        if (
            state is None
            or state.version != version
            or state.state not in FINAL_PLUGIN_STATES
            or (state.revision < revision and applied.get(agent_id, 0) < revision)
        ):
            out[agent_id] = None
        else:
            out[agent_id] = {
                "agent": agent_id, "plugin": name, "version": state.version,
                "state": state.state, "error": state.error, "restarts": state.restarts,
                "revision": state.revision,
            }
    return out


def current_states(conn: Connection, agent_ids: Sequence[str], name: str
                   ) -> dict[str, dict[str, Any]]:
    """What the agents last reported for plugin ``name`` (agents without a report omitted)."""
    return {
        s.agent_id: {"agent": s.agent_id, "plugin": name, "version": s.version,
                     "state": s.state, "error": s.error, "restarts": s.restarts,
                     "revision": s.revision}
        for s in conn.execute(select(t.plugin_states).where(
            t.plugin_states.c.plugin_name == name,
            t.plugin_states.c.agent_id.in_(list(agent_ids)),
        ))
    }


def removal_outcomes(conn: Connection, revisions: Mapping[str, int], name: str
                     ) -> dict[str, dict[str, Any] | None]:
    """For each agent, ``{"agent", "plugin", "removed": True, "revision"}`` once it has
    applied ``revisions[agent]`` (or a later revision) and reports no state for plugin
    ``name`` (a ``removed`` report deletes the row), or ``None`` until then."""
    if not revisions:
        return {}
    ids = list(revisions)
    ps, agent = t.plugin_states.c, t.agents.c
    still = set(conn.scalars(
        select(ps.agent_id).where(ps.plugin_name == name, ps.agent_id.in_(ids))))
    applied: dict[str, int] = dict(conn.execute(
        select(agent.id, agent.applied_revision).where(agent.id.in_(ids))
    ).all())
    return {
        agent_id: None if agent_id in still or applied.get(agent_id, 0) < revision else
        {"agent": agent_id, "plugin": name, "removed": True, "revision": applied[agent_id]}
        for agent_id, revision in revisions.items()
    }
