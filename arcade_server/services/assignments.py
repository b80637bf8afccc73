"""Assignments: which plugin versions each agent should run, with config, isolation, interval
and resource limits.

Every change bumps the agent's ``desired_revision`` in the same transaction, so the revision
an agent applies always names one exact plugin list. A selector change (labels, or every agent
when the selector is empty) matches and bumps all agents with ONE ``UPDATE … RETURNING`` and
upserts their assignments in one batch: a fleet-wide install is a handful of statements.
Each change returns the bumped revisions; the caller announces them
(:meth:`~arcade_server.services.notifier.Notifier.desired_changed`).

The reads live beside: :mod:`~arcade_server.services.desired` (the desired state an agent is
sent, the download permission) and :mod:`~arcade_server.services.plugin_states` (what agents
report).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, or_, select, update

from arcade_core import ArcadeError, normalize_name

from ..db import tables as t
from ..db.tables import AnyRow
from ..errors import Conflict, Hint, Invalid, NotFound
from ..limits import ConfigLimits, canonical_config, check_labels
from . import registry, secrets
from ._configs import (
    DEFAULT_LIMITS,
    AgentSettings,
    current_assignments,
    schema_of,
    settings_for,
    validated,
)
from ._isolation import requested_isolation
from ._overrides import check_interval, check_resources, desired_entry
from ._sql import upsert
from .agents import bump_revisions, get_agent_row

__all__ = [
    "KEEP",
    "AssignResult",
    "assign",
    "assign_selector",
    "set_config",
    "unassign",
    "unassign_selector",
    "update_assignment",
]

@dataclass(frozen=True)
class AssignResult:
    """The outcome of an assignment change: JSON for the API, and which agents (with which
    new revision) the hub must push to."""

    body: dict[str, Any]
    revisions: dict[str, int]


# ---------------------------------------------------------------- helpers


def _check_plugin_count(conn: Connection, where: Any, plugin: str, maximum: int) -> None:
    """:class:`Conflict` when an agent matching ``where`` already has ``maximum`` plugins
    other than ``plugin`` assigned: one more could make its desired state unsendable."""
    a = t.assignments.c
    full = conn.execute(
        select(a.agent_id, func.count().label("n"))
        .where(a.plugin_name != plugin, a.agent_id.in_(select(t.agents.c.id).where(where)))
        .group_by(a.agent_id)
        .having(func.count() >= maximum)
        .limit(20)
    ).all()
    if full:
        names = ", ".join(row.agent_id for row in full)
        remove = Hint("DELETE /api/v1/agents/{agent_id}/plugins/{name}",
                      "arcade uninstall NAME --agent ID")
        raise Conflict(
            f"agent(s) {names} already have {maximum} plugins assigned, the server's limit "
            f"(max_plugins_per_agent): uninstall one first with {remove}",
            {"agents": [row.agent_id for row in full], "max_plugins_per_agent": maximum},
            hints=[remove],
        )


def _normalize(name: str) -> str:
    try:
        return normalize_name(name)
    except ArcadeError as exc:
        raise Invalid(str(exc)) from None


def _selector_clause(selector: Mapping[str, str]) -> Any:
    """SQL condition: the agent has every ``key=value`` of the selector (empty: every agent)."""
    labels = check_labels(selector)
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
    revisions: Mapping[str, int], version: AnyRow, settings: AgentSettings, now: float,
) -> list[dict[str, Any]]:
    return [
        {"agent_id": agent_id, "plugin_name": version.plugin_name, "version_id": version.id,
         "config": settings.configs[agent_id], "isolation": settings.isolations[agent_id],
         "interval": settings.intervals[agent_id], "resources": settings.resources[agent_id],
         "revision": revision, "created_at": now, "updated_at": now}
        for agent_id, revision in revisions.items()
    ]


_UPDATE_COLUMNS = ["version_id", "config", "isolation", "interval", "resources", "revision",
                   "updated_at"]


# ---------------------------------------------------------------- changes


@dataclass(frozen=True)
class _Assigned:
    version: AnyRow
    settings: AgentSettings
    revisions: dict[str, int]
    previous: dict[str, str]  # agent → the version it was assigned before
    now: float


def _assign_where(
    conn: Connection,
    where: Any,
    spec: str,
    config: Mapping[str, Any] | None,
    isolation: str | None,
    reset_config: bool,
    now: float | None,
    limits: ConfigLimits,
    interval: float | None = None,
    resources: Mapping[str, str] | None = None,
) -> _Assigned:
    """Resolve ``spec``, work out and validate each agent's config, isolation, interval and
    resource limits (kept unless given: :mod:`._configs`), then assign it to the agents
    matching ``where`` (their revisions bumped in this transaction)."""
    now = time.time() if now is None else now
    interval = None if interval is None else check_interval(interval)
    resources = None if resources is None else check_resources(resources)
    version = registry.resolve(conn, spec)
    if isolation:
        requested_isolation(isolation, registry.manifest_of(version),
                            f"{version.plugin_name}@{version.version}")
    if config is not None:  # the request's own config, checked before anything is written
        canonical_config(config, f"{version.plugin_name}@{version.version}",
                         limits.max_config_bytes)
    _check_plugin_count(conn, where, version.plugin_name, limits.max_plugins_per_agent)
    current = current_assignments(conn, version.plugin_name, where)
    revisions = bump_revisions(conn, where)  # an error below rolls the whole transaction back
    settings = settings_for(version, list(revisions), current, config=config,
                            isolation=isolation, reset_config=reset_config,
                            interval=interval, resources=resources, limits=limits)
    upsert(conn, t.assignments, _assignment_rows(revisions, version, settings, now),
           keys=["agent_id", "plugin_name"], update=_UPDATE_COLUMNS)
    previous = {agent_id: row.version for agent_id, row in current.items()}
    return _Assigned(version, settings, revisions, previous, now)


def assign(
    conn: Connection,
    agent_id: str,
    spec: str,
    *,
    config: Mapping[str, Any] | None = None,
    isolation: str | None = None,
    reset_config: bool = False,
    interval: float | None = None,
    resources: Mapping[str, str] | None = None,
    now: float | None = None,
    limits: ConfigLimits = DEFAULT_LIMITS,
) -> AssignResult:
    """Install (or upgrade/downgrade/reconfigure) ``spec`` on one agent; a config, isolation,
    interval and resource limits not given are kept from its current assignment of the plugin
    (``reset_config``: the version's default config and interval)."""
    get_agent_row(conn, agent_id)
    done = _assign_where(conn, t.agents.c.id == agent_id, spec, config, isolation,
                         reset_config, now, limits, interval, resources)
    version, settings, revision = done.version, done.settings, done.revisions[agent_id]
    return AssignResult(
        {"agent": agent_id, "plugin": version.plugin_name, "version": version.version,
         "config": settings.shown_config, "isolation": settings.shown_isolation,
         "interval": settings.shown_interval, "resources": settings.shown_resources or {},
         "revision": revision, "previous_version": done.previous.get(agent_id),
         "desired": desired_entry(version, settings.shown_config, settings.shown_isolation,
                                  revision, done.now, settings.shown_interval,
                                  settings.shown_resources)},
        done.revisions,
    )


def assign_selector(
    conn: Connection,
    selector: Mapping[str, str],
    spec: str,
    *,
    config: Mapping[str, Any] | None = None,
    isolation: str | None = None,
    reset_config: bool = False,
    interval: float | None = None,
    resources: Mapping[str, str] | None = None,
    now: float | None = None,
    limits: ConfigLimits = DEFAULT_LIMITS,
) -> AssignResult:
    """Install ``spec`` on every agent whose labels match ``selector`` (empty: all agents);
    each agent keeps its own config, isolation, interval and limits of the plugin unless they
    are given."""
    done = _assign_where(conn, _selector_clause(selector), spec, config, isolation,
                         reset_config, now, limits, interval, resources)
    version, settings = done.version, done.settings
    return AssignResult(
        {"selector": dict(selector), "plugin": version.plugin_name, "version": version.version,
         "config": settings.shown_config, "isolation": settings.shown_isolation,
         "interval": settings.shown_interval, "resources": settings.shown_resources or {},
         "matched": len(done.revisions), "agents": sorted(done.revisions),
         "revisions": dict(sorted(done.revisions.items()))},
        done.revisions,
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
        show = Hint(f"GET /api/v1/agents/{agent_id}/plugins", f"arcade status --agent {agent_id}")
        raise NotFound(f"plugin {plugin!r} is not assigned to agent {agent_id!r}; its plugins "
                       f"are shown by {show}", hints=[show])
    revisions = bump_revisions(conn, t.agents.c.id == agent_id)
    return AssignResult(
        {"agent": agent_id, "plugin": plugin, "removed": True,
         "revision": revisions[agent_id], "desired": None},
        revisions,
    )


def unassign_selector(conn: Connection, selector: Mapping[str, str], name: str
                      ) -> AssignResult:
    """Remove a plugin from every matching agent that has it assigned."""
    plugin = _normalize(name)
    clause = _selector_clause(selector)
    a = t.assignments.c
    has_it = t.agents.c.id.in_(select(a.agent_id).where(a.plugin_name == plugin))
    revisions = bump_revisions(conn, clause & has_it)
    if revisions:
        conn.execute(delete(t.assignments).where(
            a.plugin_name == plugin, a.agent_id.in_(list(revisions))
        ))
    return AssignResult(
        {"selector": dict(selector), "plugin": plugin, "matched": len(revisions),
         "agents": sorted(revisions), "revisions": dict(sorted(revisions.items()))},
        revisions,
    )


class _Keep:
    """The type of :data:`KEEP`."""


#: "Not given: keep the assignment's current value" (``None`` means "back to the default").
KEEP = _Keep()


def set_config(conn: Connection, agent_id: str, name: str, config: Mapping[str, Any],
               *, limits: ConfigLimits = DEFAULT_LIMITS) -> AssignResult:
    """Replace the config of an assigned plugin (validated, defaults applied; secret fields
    the new config omits keep their stored values); its interval and limits are kept."""
    if not isinstance(config, Mapping):
        raise Invalid("config must be a JSON object")
    return update_assignment(conn, agent_id, name, config=config, limits=limits)


def update_assignment(
    conn: Connection,
    agent_id: str,
    name: str,
    *,
    config: Mapping[str, Any] | None = None,
    interval: float | _Keep | None = KEEP,
    resources: Mapping[str, str] | _Keep | None = KEEP,
    limits: ConfigLimits = DEFAULT_LIMITS,
) -> AssignResult:
    """Change an assigned plugin in place, its version unchanged: a new ``config`` (as
    :func:`set_config`; ``None``: kept), ``interval`` (``None``: back to the manifest's, then
    the agent's default) and ``resources`` (``None`` or ``{}``: no override); what is not
    given is kept. Everything is checked before anything is written."""
    if config is not None:
        if not isinstance(config, Mapping):
            raise Invalid("config must be a JSON object")
        canonical_config(config, f"the config of {name}", limits.max_config_bytes)
    if interval is not None and not isinstance(interval, _Keep):
        interval = check_interval(interval)
    if resources is not None and not isinstance(resources, _Keep):
        resources = check_resources(resources)
    get_agent_row(conn, agent_id)
    plugin = _normalize(name)
    a, v = t.assignments.c, t.plugin_versions.c
    found = conn.execute(
        select(a.isolation, a.config, a.interval, a.resources, v.plugin_name, v.version,
               v.manifest)
        .join(t.plugin_versions, v.id == a.version_id)
        .where(a.agent_id == agent_id, a.plugin_name == plugin)
    ).first()
    if found is None:
        install = Hint(f"POST /api/v1/agents/{agent_id}/plugins",
                       f"arcade install {plugin} --agent {agent_id}")
        raise NotFound(
            f"plugin {plugin!r} is not assigned to agent {agent_id!r}; install it first with "
            f"{install}",
            hints=[install],
        )
    schema = schema_of(found)
    effective = found.config if config is None else validated(
        found, secrets.merge_secrets(config, found.config, schema), limits)
    own_interval = found.interval if isinstance(interval, _Keep) else interval
    own_resources = (found.resources if isinstance(resources, _Keep) else resources) or None
    revisions = bump_revisions(conn, t.agents.c.id == agent_id)
    now = time.time()
    conn.execute(
        update(t.assignments).where(a.agent_id == agent_id, a.plugin_name == plugin)
        .values(config=effective, interval=own_interval, resources=own_resources,
                revision=revisions[agent_id], updated_at=now)
    )
    shown = secrets.redact(effective, schema)
    return AssignResult(
        {"agent": agent_id, "plugin": plugin, "version": found.version, "config": shown,
         "isolation": found.isolation, "interval": own_interval,
         "resources": own_resources or {}, "revision": revisions[agent_id],
         "desired": desired_entry(found, shown, found.isolation, revisions[agent_id], now,
                                  own_interval, own_resources)},
        revisions,
    )
