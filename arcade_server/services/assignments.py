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

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from arcade_core import ArcadeError, InvalidConfig, normalize_name
from arcade_core._manifest import ISOLATIONS

from ..db.models import Agent, AgentLabel, Assignment, PluginState, PluginVersion
from ..db.models import PluginVersionWheel as Wheel
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
    if isolation not in ISOLATIONS:
        raise Invalid(f"isolation {value!r} is not supported; use one of {', '.join(ISOLATIONS)}")
    return isolation


def _validated(version: PluginVersion, config: Mapping[str, Any] | None) -> dict[str, Any]:
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


def _bump(session: Session, where: Any) -> dict[str, int]:
    rows = session.execute(
        update(Agent)
        .where(where)
        .values(desired_revision=Agent.desired_revision + 1)
        .returning(Agent.id, Agent.desired_revision)
        .execution_options(synchronize_session=False)
    ).all()
    return {agent_id: revision for agent_id, revision in rows}


def _selector_clause(selector: Mapping[str, str]) -> Any:
    """SQL condition: the agent has every ``key=value`` of the selector (empty: every agent)."""
    labels = validate_labels(selector)
    if not labels:
        return Agent.id.is_not(None)
    pairs = [(AgentLabel.key == k) & (AgentLabel.value == v) for k, v in labels.items()]
    matching = (
        select(AgentLabel.agent_id)
        .where(or_(*pairs))
        .group_by(AgentLabel.agent_id)
        .having(func.count() == len(pairs))
    )
    return Agent.id.in_(matching)


def _assignment_rows(
    revisions: Mapping[str, int], version: PluginVersion, config: dict[str, Any],
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
    session: Session,
    where: Any,
    spec: str,
    config: Mapping[str, Any] | None,
    isolation: str | None,
    now: float | None,
) -> tuple[PluginVersion, dict[str, Any], str, dict[str, int]]:
    """Resolve ``spec``, validate ``config``, then assign it to the agents matching ``where``
    (their revisions bumped in this transaction); returns what was assigned and the revisions."""
    now = time.time() if now is None else now
    version = registry.resolve(session, spec)
    effective = _validated(version, config)
    iso = _isolation(isolation, registry.manifest_of(version).isolation)
    revisions = _bump(session, where)
    upsert(session, Assignment, _assignment_rows(revisions, version, effective, iso, now),
           keys=["agent_id", "plugin_name"], update=_UPDATE_COLUMNS)
    return version, effective, iso, revisions


def assign(
    session: Session,
    agent_id: str,
    spec: str,
    *,
    config: Mapping[str, Any] | None = None,
    isolation: str | None = None,
    now: float | None = None,
) -> AssignResult:
    """Install (or upgrade/downgrade/reconfigure) ``spec`` on one agent."""
    get_agent_row(session, agent_id)
    version, effective, iso, revisions = _assign_where(
        session, Agent.id == agent_id, spec, config, isolation, now)
    return AssignResult(
        {"agent": agent_id, "plugin": version.plugin_name, "version": version.version,
         "config": effective, "isolation": iso, "revision": revisions[agent_id]},
        revisions,
    )


def assign_selector(
    session: Session,
    selector: Mapping[str, str],
    spec: str,
    *,
    config: Mapping[str, Any] | None = None,
    isolation: str | None = None,
    now: float | None = None,
) -> AssignResult:
    """Install ``spec`` on every agent whose labels match ``selector`` (empty: all agents)."""
    version, effective, iso, revisions = _assign_where(
        session, _selector_clause(selector), spec, config, isolation, now)
    return AssignResult(
        {"selector": dict(selector), "plugin": version.plugin_name, "version": version.version,
         "config": effective, "isolation": iso, "matched": len(revisions),
         "agents": sorted(revisions)},
        revisions,
    )


def unassign(session: Session, agent_id: str, name: str) -> AssignResult:
    """Remove a plugin from one agent's desired state (404 if it is not assigned)."""
    get_agent_row(session, agent_id)
    plugin = _normalize(name)
    found = session.get(Assignment, (agent_id, plugin))
    if found is None:
        raise NotFound(f"plugin {plugin!r} is not assigned to agent {agent_id!r}")
    session.delete(found)
    session.flush()
    revisions = _bump(session, Agent.id == agent_id)
    return AssignResult(
        {"agent": agent_id, "plugin": plugin, "removed": True,
         "revision": revisions[agent_id]},
        revisions,
    )


def unassign_selector(session: Session, selector: Mapping[str, str], name: str
                      ) -> AssignResult:
    """Remove a plugin from every matching agent that has it assigned."""
    plugin = _normalize(name)
    clause = _selector_clause(selector)
    has_it = Agent.id.in_(select(Assignment.agent_id).where(Assignment.plugin_name == plugin))
    revisions = _bump(session, clause & has_it)
    if revisions:
        session.execute(delete(Assignment).where(
            Assignment.plugin_name == plugin, Assignment.agent_id.in_(list(revisions))
        ))
    return AssignResult(
        {"selector": dict(selector), "plugin": plugin, "matched": len(revisions),
         "agents": sorted(revisions)},
        revisions,
    )


def set_config(session: Session, agent_id: str, name: str, config: Mapping[str, Any]
               ) -> AssignResult:
    """Replace the config of an assigned plugin (validated, defaults applied)."""
    if not isinstance(config, Mapping):
        raise Invalid("config must be a JSON object")
    get_agent_row(session, agent_id)
    plugin = _normalize(name)
    found = session.get(Assignment, (agent_id, plugin))
    if found is None:
        raise NotFound(
            f"plugin {plugin!r} is not assigned to agent {agent_id!r}; install it first"
        )
    effective = _validated(found.version, config)
    revisions = _bump(session, Agent.id == agent_id)
    found.config = effective
    found.revision = revisions[agent_id]
    found.updated_at = time.time()
    session.flush()
    return AssignResult(
        {"agent": agent_id, "plugin": plugin, "version": found.version.version,
         "config": effective, "isolation": found.isolation, "revision": revisions[agent_id]},
        revisions,
    )


# ---------------------------------------------------------------- reads


def desired_states(session: Session, agent_ids: Iterable[str]) -> dict[str, DesiredState]:
    """The full desired state of each agent, in three queries whatever the number of agents."""
    ids = list(dict.fromkeys(agent_ids))
    if not ids:
        return {}
    revision_of = dict(session.execute(
        select(Agent.id, Agent.desired_revision).where(Agent.id.in_(ids))
    ).all())
    assignments = session.scalars(
        select(Assignment)
        .where(Assignment.agent_id.in_(list(revision_of)))
        .order_by(Assignment.agent_id, Assignment.plugin_name)
        .options(selectinload(Assignment.version).selectinload(PluginVersion.wheels))
    ).unique().all()
    plugins: dict[str, list[DesiredPlugin]] = {agent_id: [] for agent_id in revision_of}
    cache: dict[int, tuple[tuple[WheelRef, ...], float]] = {}
    for a in assignments:
        version = a.version
        if version.id not in cache:
            cache[version.id] = (
                tuple(WheelRef(w.filename, w.sha256, w.size) for w in version.wheels),
                float(registry.manifest_of(version).interval or 0.0),
            )
        wheels, interval = cache[version.id]
        plugins[a.agent_id].append(DesiredPlugin(
            name=a.plugin_name, version=version.version, isolation=a.isolation,
            config=a.config, wheels=wheels, interval=interval,
        ))
    return {
        agent_id: DesiredState(agent_id, revision_of[agent_id], tuple(plugins[agent_id]))
        for agent_id in revision_of
    }


def desired_state(session: Session, agent_id: str) -> DesiredState:
    states = desired_states(session, [agent_id])
    if agent_id not in states:
        get_agent_row(session, agent_id)  # raises NotFound
    return states[agent_id]


def revisions(session: Session, agent_ids: Sequence[str]) -> dict[str, int]:
    """Current desired revisions of the given agents (the hub's fallback sweep)."""
    if not agent_ids:
        return {}
    return dict(session.execute(
        select(Agent.id, Agent.desired_revision).where(Agent.id.in_(list(agent_ids)))
    ).all())


def agent_plugins(session: Session, agent_id: str) -> list[dict[str, Any]]:
    """Desired and actual, side by side, one entry per plugin name."""
    get_agent_row(session, agent_id)
    desired = {
        a.plugin_name: a
        for a in session.scalars(select(Assignment).where(Assignment.agent_id == agent_id))
    }
    actual = {
        s.plugin_name: s
        for s in session.scalars(select(PluginState).where(PluginState.agent_id == agent_id))
    }
    out = []
    for name in sorted(set(desired) | set(actual)):
        a = desired.get(name)
        s = actual.get(name)
        out.append({
            "name": name,
            "desired": None if a is None else {
                "version": a.version.version, "config": a.config, "isolation": a.isolation,
                "revision": a.revision, "updated_at": a.updated_at,
            },
            "actual": None if s is None else {
                "version": s.version, "state": s.state, "error": s.error,
                "restarts": s.restarts, "isolation": s.isolation, "sha256": s.sha256,
                "revision": s.revision, "updated_at": s.updated_at,
            },
            "in_sync": a is not None and s is not None and s.state == "running"
            and s.version == a.version.version,
        })
    return out


def install_outcomes(
    session: Session, revisions: Mapping[str, int], name: str, version: str
) -> dict[str, dict[str, Any] | None]:
    """For each agent, its final report (``running``/``failed``) for ``name@version`` made
    while applying ``revisions[agent]`` or later, or ``None`` while it has not sent one."""
    if not revisions:
        return {}
    ids = list(revisions)
    # Plain rows, not ORM objects: a ?wait= over a whole fleet re-reads this many times.
    states = {
        s.agent_id: s
        for s in session.execute(select(
            PluginState.agent_id, PluginState.version, PluginState.state, PluginState.error,
            PluginState.restarts, PluginState.revision,
        ).where(PluginState.plugin_name == name, PluginState.agent_id.in_(ids)))
    }
    applied = dict(session.execute(
        select(Agent.id, Agent.applied_revision).where(Agent.id.in_(ids))
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


def current_states(session: Session, agent_ids: Sequence[str], name: str
                   ) -> dict[str, dict[str, Any]]:
    """What the agents last reported for plugin ``name`` (agents without a report omitted)."""
    return {
        s.agent_id: {"agent": s.agent_id, "plugin": name, "version": s.version,
                     "state": s.state, "error": s.error, "restarts": s.restarts,
                     "revision": s.revision}
        for s in session.scalars(select(PluginState).where(
            PluginState.plugin_name == name, PluginState.agent_id.in_(list(agent_ids))
        ))
    }


def may_download(session: Session, agent_id: str, sha256: str) -> bool:
    """True when a wheel with ``sha256`` is part of the agent's desired state, or of a plugin
    of one of its queued or running jobs."""
    found = session.scalar(
        select(Wheel.sha256)
        .join(Assignment, Assignment.version_id == Wheel.version_id)
        .where(Assignment.agent_id == agent_id, Wheel.sha256 == sha256)
        .limit(1)
    )
    return found is not None or job_wheel_allowed(session, agent_id, sha256)
