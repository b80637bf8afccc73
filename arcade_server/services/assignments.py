"""Desired state: which plugin versions each agent should run, with config and isolation.

Every change bumps the agent's ``desired_revision`` in the same transaction, so the revision
an agent applies always names one exact plugin list. A selector change (labels, or every agent
when the selector is empty) matches and bumps all agents with ONE ``UPDATE … RETURNING`` and
upserts their assignments in one batch: a fleet-wide install is a handful of statements.

:func:`desired_states` builds the full desired list of several agents in a few queries (for
pushes after a fleet-wide change); :func:`may_download` is the DownloadWheel permission check.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, or_, select, update

from arcade_core import ArcadeError, InvalidConfig, normalize_name
from arcade_core.states import Isolation

from ..db import tables as t
from ..db.tables import AnyRow
from ..errors import Invalid, NotFound
from . import registry
from ._sql import upsert
from .agents import FINAL_STATES, get_agent_row, validate_labels
from .jobs import job_wheel_allowed

__all__ = [
    "AssignResult",
    "DesiredPlugin",
    "DesiredState",
    "WheelRef",
    "agent_plugins",
    "assign",
    "assign_selector",
    "current_states",
    "desired_state",
    "desired_states",
    "install_outcomes",
    "may_download",
    "revisions",
    "set_config",
    "unassign",
    "unassign_selector",
]


@dataclass(frozen=True)
class WheelRef:
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DesiredPlugin:
    name: str
    version: str
    isolation: str
    config: Mapping[str, Any]
    wheels: tuple[WheelRef, ...]
    interval: float

    @property
    def config_json(self) -> str:
        return json.dumps(self.config, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class DesiredState:
    agent_id: str
    revision: int
    plugins: tuple[DesiredPlugin, ...]


@dataclass(frozen=True)
class AssignResult:
    """The outcome of an assignment change: JSON for the API, and which agents (with which
    new revision) the hub must push to."""

    body: dict[str, Any]
    revisions: dict[str, int]


# ---------------------------------------------------------------- helpers


def _isolation(value: str | None, default: str) -> str:
    isolation = value or default
    if isolation not in tuple(Isolation):
        raise Invalid(f"isolation {value!r} is not supported; use one of {', '.join(Isolation)}")
    return isolation


def _validated(version: AnyRow, config: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        return registry.manifest_of(version).validate_config(config)
    except InvalidConfig as exc:
        raise Invalid(
            f"invalid config for {version.plugin_name}@{version.version}: {exc}",
            {"schema": (version.manifest or {}).get("config_schema")},
        ) from None
    except ArcadeError as exc:  # a stored manifest that no longer parses: still the input's fault
        raise Invalid(f"cannot validate config for {version.plugin_name}: {exc}") from None


def _normalize(name: str) -> str:
    try:
        return normalize_name(name)
    except ArcadeError as exc:
        raise Invalid(str(exc)) from None


def _bump(conn: Connection, where: Any) -> dict[str, int]:
    agent = t.agents.c
    rows = conn.execute(
        update(t.agents)
        .where(where)
        .values(desired_revision=agent.desired_revision + 1)
        .returning(agent.id, agent.desired_revision)
    ).all()
    return {agent_id: revision for agent_id, revision in rows}


def _selector_clause(selector: Mapping[str, str]) -> Any:
    """SQL condition: the agent has every ``key=value`` of the selector (empty: every agent)."""
    labels = validate_labels(selector)
    if not labels:
        return t.agents.c.id.is_not(None)
    label = t.agent_labels.c
    pairs = [(label.key == k) & (label.value == v) for k, v in labels.items()]
    matching = (
        select(label.agent_id)
        .where(or_(*pairs))
        .group_by(label.agent_id)
        .having(func.count() == len(pairs))
    )
    return t.agents.c.id.in_(matching)


def _assignment_rows(
    revisions: Mapping[str, int], version: AnyRow, config: dict[str, Any],
    isolation: str, now: float,
) -> list[dict[str, Any]]:
    return [
        {"agent_id": agent_id, "plugin_name": version.plugin_name, "version_id": version.id,
         "config": config, "isolation": isolation, "revision": revision,
         "created_at": now, "updated_at": now}
        for agent_id, revision in revisions.items()
    ]


_UPDATE_COLUMNS = ["version_id", "config", "isolation", "revision", "updated_at"]


# ---------------------------------------------------------------- changes


def _assign_where(
    conn: Connection,
    where: Any,
    spec: str,
    config: Mapping[str, Any] | None,
    isolation: str | None,
    now: float | None,
) -> tuple[AnyRow, dict[str, Any], str, dict[str, int]]:
    """Resolve ``spec``, validate ``config``, then assign it to the agents matching ``where``
    (their revisions bumped in this transaction); returns what was assigned and the revisions."""
    now = time.time() if now is None else now
    version = registry.resolve(conn, spec)
    effective = _validated(version, config)
    iso = _isolation(isolation, registry.manifest_of(version).isolation)
    revisions = _bump(conn, where)
    upsert(conn, t.assignments, _assignment_rows(revisions, version, effective, iso, now),
           keys=["agent_id", "plugin_name"], update=_UPDATE_COLUMNS)
    return version, effective, iso, revisions


def assign(
    conn: Connection,
    agent_id: str,
    spec: str,
    *,
    config: Mapping[str, Any] | None = None,
    isolation: str | None = None,
    now: float | None = None,
) -> AssignResult:
    """Install (or upgrade/downgrade/reconfigure) ``spec`` on one agent."""
    get_agent_row(conn, agent_id)
    version, effective, iso, revisions = _assign_where(
        conn, t.agents.c.id == agent_id, spec, config, isolation, now)
    return AssignResult(
        {"agent": agent_id, "plugin": version.plugin_name, "version": version.version,
         "config": effective, "isolation": iso, "revision": revisions[agent_id]},
        revisions,
    )


def assign_selector(
    conn: Connection,
    selector: Mapping[str, str],
    spec: str,
    *,
    config: Mapping[str, Any] | None = None,
    isolation: str | None = None,
    now: float | None = None,
) -> AssignResult:
    """Install ``spec`` on every agent whose labels match ``selector`` (empty: all agents)."""
    version, effective, iso, revisions = _assign_where(
        conn, _selector_clause(selector), spec, config, isolation, now)
    return AssignResult(
        {"selector": dict(selector), "plugin": version.plugin_name, "version": version.version,
         "config": effective, "isolation": iso, "matched": len(revisions),
         "agents": sorted(revisions)},
        revisions,
    )


def unassign(conn: Connection, agent_id: str, name: str) -> AssignResult:
    """Remove a plugin from one agent's desired state (404 if it is not assigned)."""
    get_agent_row(conn, agent_id)
    plugin = _normalize(name)
    a = t.assignments.c
    removed = conn.execute(
        delete(t.assignments).where(a.agent_id == agent_id, a.plugin_name == plugin)
    ).rowcount
    if not removed:
        raise NotFound(f"plugin {plugin!r} is not assigned to agent {agent_id!r}")
    revisions = _bump(conn, t.agents.c.id == agent_id)
    return AssignResult(
        {"agent": agent_id, "plugin": plugin, "removed": True,
         "revision": revisions[agent_id]},
        revisions,
    )


def unassign_selector(conn: Connection, selector: Mapping[str, str], name: str
                      ) -> AssignResult:
    """Remove a plugin from every matching agent that has it assigned."""
    plugin = _normalize(name)
    clause = _selector_clause(selector)
    a = t.assignments.c
    has_it = t.agents.c.id.in_(select(a.agent_id).where(a.plugin_name == plugin))
    revisions = _bump(conn, clause & has_it)
    if revisions:
        conn.execute(delete(t.assignments).where(
            a.plugin_name == plugin, a.agent_id.in_(list(revisions))
        ))
    return AssignResult(
        {"selector": dict(selector), "plugin": plugin, "matched": len(revisions),
         "agents": sorted(revisions)},
        revisions,
    )


def set_config(conn: Connection, agent_id: str, name: str, config: Mapping[str, Any]
               ) -> AssignResult:
    """Replace the config of an assigned plugin (validated, defaults applied)."""
    if not isinstance(config, Mapping):
        raise Invalid("config must be a JSON object")
    get_agent_row(conn, agent_id)
    plugin = _normalize(name)
    a, v = t.assignments.c, t.plugin_versions.c
    found = conn.execute(
        select(a.isolation, v.plugin_name, v.version, v.manifest)
        .join(t.plugin_versions, v.id == a.version_id)
        .where(a.agent_id == agent_id, a.plugin_name == plugin)
    ).first()
    if found is None:
        raise NotFound(
            f"plugin {plugin!r} is not assigned to agent {agent_id!r}; install it first"
        )
    effective = _validated(found, config)
    revisions = _bump(conn, t.agents.c.id == agent_id)
    conn.execute(
        update(t.assignments).where(a.agent_id == agent_id, a.plugin_name == plugin)
        .values(config=effective, revision=revisions[agent_id], updated_at=time.time())
    )
    return AssignResult(
        {"agent": agent_id, "plugin": plugin, "version": found.version,
         "config": effective, "isolation": found.isolation, "revision": revisions[agent_id]},
        revisions,
    )


# ---------------------------------------------------------------- reads


def desired_states(conn: Connection, agent_ids: Iterable[str]) -> dict[str, DesiredState]:
    """The full desired state of each agent, in three queries whatever the number of agents."""
    ids = list(dict.fromkeys(agent_ids))
    if not ids:
        return {}
    agent = t.agents.c
    revision_of = dict(conn.execute(
        select(agent.id, agent.desired_revision).where(agent.id.in_(ids))
    ).all())
    a, v, w = t.assignments.c, t.plugin_versions.c, t.plugin_version_wheels.c
    rows = conn.execute(
        select(a.agent_id, a.plugin_name, a.isolation, a.config, a.version_id, v.version,
               v.manifest)
        .join(t.plugin_versions, v.id == a.version_id)
        .where(a.agent_id.in_(list(revision_of)))
        .order_by(a.agent_id, a.plugin_name)
    ).all()
    # Each version's wheels and interval once, however many agents run it.
    wheels_of: dict[int, list[WheelRef]] = {row.version_id: [] for row in rows}
    if wheels_of:
        for wheel in conn.execute(
            select(w.version_id, w.filename, w.sha256, w.size)
            .where(w.version_id.in_(list(wheels_of)))
            .order_by(w.version_id, w.position)
        ):
            wheels_of[wheel.version_id].append(WheelRef(wheel.filename, wheel.sha256, wheel.size))
    cache: dict[int, tuple[tuple[WheelRef, ...], float]] = {}
    plugins: dict[str, list[DesiredPlugin]] = {agent_id: [] for agent_id in revision_of}
    for row in rows:
        if row.version_id not in cache:
            cache[row.version_id] = (
                tuple(wheels_of[row.version_id]),
                float(registry.manifest_of(row).interval or 0.0),
            )
        wheels, interval = cache[row.version_id]
        plugins[row.agent_id].append(DesiredPlugin(
            name=row.plugin_name, version=row.version, isolation=row.isolation,
            config=row.config, wheels=wheels, interval=interval,
        ))
    return {
        agent_id: DesiredState(agent_id, revision_of[agent_id], tuple(plugins[agent_id]))
        for agent_id in revision_of
    }


def desired_state(conn: Connection, agent_id: str) -> DesiredState:
    states = desired_states(conn, [agent_id])
    if agent_id not in states:
        get_agent_row(conn, agent_id)  # raises NotFound
    return states[agent_id]


def revisions(conn: Connection, agent_ids: Sequence[str]) -> dict[str, int]:
    """Current desired revisions of the given agents (the hub's fallback sweep)."""
    if not agent_ids:
        return {}
    agent = t.agents.c
    return dict(conn.execute(
        select(agent.id, agent.desired_revision).where(agent.id.in_(list(agent_ids)))
    ).all())


def agent_plugins(conn: Connection, agent_id: str) -> list[dict[str, Any]]:
    """Desired and actual, side by side, one entry per plugin name."""
    get_agent_row(conn, agent_id)
    assigned, v = t.assignments.c, t.plugin_versions.c
    desired = {
        row.plugin_name: row
        for row in conn.execute(
            select(assigned.plugin_name, v.version, assigned.config, assigned.isolation,
                   assigned.revision, assigned.updated_at)
            .join(t.plugin_versions, v.id == assigned.version_id)
            .where(assigned.agent_id == agent_id)
        )
    }
    actual = {
        row.plugin_name: row
        for row in conn.execute(
            select(t.plugin_states).where(t.plugin_states.c.agent_id == agent_id))
    }
    out = []
    for name in sorted(set(desired) | set(actual)):
        a = desired.get(name)
        s = actual.get(name)
        out.append({
            "name": name,
            "desired": None if a is None else {
                "version": a.version, "config": a.config, "isolation": a.isolation,
                "revision": a.revision, "updated_at": a.updated_at,
            },
            "actual": None if s is None else {
                "version": s.version, "state": s.state, "error": s.error,
                "restarts": s.restarts, "isolation": s.isolation, "sha256": s.sha256,
                "revision": s.revision, "updated_at": s.updated_at,
            },
            "in_sync": a is not None and s is not None and s.state == "running"
            and s.version == a.version,
        })
    return out


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
            or state.state not in FINAL_STATES
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


def may_download(conn: Connection, agent_id: str, sha256: str) -> bool:
    """True when a wheel with ``sha256`` is part of the agent's desired state, or of a plugin
    of one of its queued or running jobs."""
    a, w = t.assignments.c, t.plugin_version_wheels.c
    found = conn.scalar(
        select(w.sha256)
        .join(t.assignments, a.version_id == w.version_id)
        .where(a.agent_id == agent_id, w.sha256 == sha256)
        .limit(1)
    )
    return found is not None or job_wheel_allowed(conn, agent_id, sha256)
