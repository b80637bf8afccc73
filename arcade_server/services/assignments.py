"""Assignments: which plugin versions each agent should run, with config and isolation.

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

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, or_, select, update

from arcade_core import ArcadeError, InvalidConfig, normalize_name
from arcade_core.states import Isolation

from ..db import tables as t
from ..db.tables import AnyRow
from ..errors import Conflict, Invalid, NotFound
from ..limits import ConfigLimits, canonical_config, check_labels
from . import registry, secrets
from ._sql import upsert
from .agents import get_agent_row

__all__ = [
    "AssignResult",
    "assign",
    "assign_selector",
    "set_config",
    "unassign",
    "unassign_selector",
]

_ISOLATIONS = frozenset(Isolation)


@dataclass(frozen=True)
class AssignResult:
    """The outcome of an assignment change: JSON for the API, and which agents (with which
    new revision) the hub must push to."""

    body: dict[str, Any]
    revisions: dict[str, int]


# ---------------------------------------------------------------- helpers


def _isolation(value: str | None, default: str) -> Isolation:
    isolation = value or default
    if isolation not in _ISOLATIONS:
        raise Invalid(f"isolation {value!r} is not supported; use one of {', '.join(Isolation)}")
    return Isolation(isolation)


def _schema(version: AnyRow) -> dict[str, Any] | None:
    schema = (version.manifest or {}).get("config_schema")
    return schema if isinstance(schema, dict) else None


_DEFAULT_LIMITS = ConfigLimits()


def _validated(version: AnyRow, config: Mapping[str, Any] | None,
               limits: ConfigLimits = _DEFAULT_LIMITS) -> dict[str, Any]:
    """The effective config (defaults applied), checked against the schema and the limits
    (finite numbers only, at most ``max_config_bytes``: :mod:`arcade_server.limits`)."""
    what = f"{version.plugin_name}@{version.version}"
    if config is not None:
        canonical_config(config, what, limits.max_config_bytes)
    try:
        effective = registry.manifest_of(version).validate_config(config)
    except InvalidConfig as exc:
        schema = _schema(version)
        raise Invalid(
            f"invalid config for {version.plugin_name}@{version.version}: "
            f"{secrets.scrub(str(exc), config, schema)}",
            {"schema": schema},
        ) from None
    except ArcadeError as exc:  # a stored manifest that no longer parses: still the input's fault
        raise Invalid(f"cannot validate config for {version.plugin_name}: {exc}") from None
    canonical_config(effective, what, limits.max_config_bytes)
    return effective


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
        raise Conflict(
            f"agent(s) {names} already have {maximum} plugins assigned, the server's limit "
            "(max_plugins_per_agent): uninstall one first",
            {"agents": [row.agent_id for row in full], "max_plugins_per_agent": maximum},
        )


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
    revisions: Mapping[str, int], version: AnyRow, configs: Mapping[str, dict[str, Any]],
    isolation: Isolation, now: float,
) -> list[dict[str, Any]]:
    return [
        {"agent_id": agent_id, "plugin_name": version.plugin_name, "version_id": version.id,
         "config": configs[agent_id], "isolation": isolation, "revision": revision,
         "created_at": now, "updated_at": now}
        for agent_id, revision in revisions.items()
    ]


def _stored_configs(conn: Connection, plugin: str, agent_ids: list[str]
                    ) -> dict[str, dict[str, Any]]:
    a = t.assignments.c
    return {
        agent_id: config or {}
        for agent_id, config in conn.execute(
            select(a.agent_id, a.config)
            .where(a.plugin_name == plugin, a.agent_id.in_(agent_ids))
        )
    }


def _effective_configs(
    conn: Connection, version: AnyRow, config: Mapping[str, Any] | None,
    agent_ids: list[str], limits: ConfigLimits = _DEFAULT_LIMITS,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Each agent's validated config, and the one to show. A schema with secret fields keeps
    each agent's stored secrets the request omits (validated once per distinct result)."""
    schema = _schema(version)
    if not secrets.has_secrets(schema):
        effective = _validated(version, config, limits)
        return dict.fromkeys(agent_ids, effective), effective
    stored = _stored_configs(conn, version.plugin_name, agent_ids)
    done: dict[str, dict[str, Any]] = {}
    out: dict[str, dict[str, Any]] = {}
    for agent_id in agent_ids:
        merged = secrets.merge_secrets(config, stored.get(agent_id), schema)
        key = json.dumps(merged, sort_keys=True)
        if key not in done:
            done[key] = _validated(version, merged, limits)
        out[agent_id] = done[key]
    if not agent_ids:
        return out, _validated(version, secrets.merge_secrets(config, None, schema), limits)
    return out, out[min(agent_ids)]


_UPDATE_COLUMNS = ["version_id", "config", "isolation", "revision", "updated_at"]


# ---------------------------------------------------------------- changes


def _assign_where(
    conn: Connection,
    where: Any,
    spec: str,
    config: Mapping[str, Any] | None,
    isolation: str | None,
    now: float | None,
    limits: ConfigLimits,
) -> tuple[AnyRow, dict[str, Any], Isolation, dict[str, int]]:
    """Resolve ``spec``, validate ``config``, then assign it to the agents matching ``where``
    (their revisions bumped in this transaction); returns what was assigned (secrets
    redacted) and the revisions."""
    now = time.time() if now is None else now
    version = registry.resolve(conn, spec)
    iso = _isolation(isolation, registry.manifest_of(version).isolation)
    if config is not None:  # the request's own config, checked before anything is written
        canonical_config(config, f"{version.plugin_name}@{version.version}",
                         limits.max_config_bytes)
    _check_plugin_count(conn, where, version.plugin_name, limits.max_plugins_per_agent)
    revisions = _bump(conn, where)  # an error below rolls the whole transaction back
    configs, shown = _effective_configs(conn, version, config, list(revisions), limits)
    upsert(conn, t.assignments, _assignment_rows(revisions, version, configs, iso, now),
           keys=["agent_id", "plugin_name"], update=_UPDATE_COLUMNS)
    return version, secrets.redact(shown, _schema(version)), iso, revisions


def assign(
    conn: Connection,
    agent_id: str,
    spec: str,
    *,
    config: Mapping[str, Any] | None = None,
    isolation: str | None = None,
    now: float | None = None,
    limits: ConfigLimits = _DEFAULT_LIMITS,
) -> AssignResult:
    """Install (or upgrade/downgrade/reconfigure) ``spec`` on one agent."""
    get_agent_row(conn, agent_id)
    version, effective, iso, revisions = _assign_where(
        conn, t.agents.c.id == agent_id, spec, config, isolation, now, limits)
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
    limits: ConfigLimits = _DEFAULT_LIMITS,
) -> AssignResult:
    """Install ``spec`` on every agent whose labels match ``selector`` (empty: all agents)."""
    version, effective, iso, revisions = _assign_where(
        conn, _selector_clause(selector), spec, config, isolation, now, limits)
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


def set_config(conn: Connection, agent_id: str, name: str, config: Mapping[str, Any],
               *, limits: ConfigLimits = _DEFAULT_LIMITS) -> AssignResult:
    """Replace the config of an assigned plugin (validated, defaults applied; secret fields
    the new config omits keep their stored values)."""
    if not isinstance(config, Mapping):
        raise Invalid("config must be a JSON object")
    canonical_config(config, f"the config of {name}", limits.max_config_bytes)
    get_agent_row(conn, agent_id)
    plugin = _normalize(name)
    a, v = t.assignments.c, t.plugin_versions.c
    found = conn.execute(
        select(a.isolation, a.config, v.plugin_name, v.version, v.manifest)
        .join(t.plugin_versions, v.id == a.version_id)
        .where(a.agent_id == agent_id, a.plugin_name == plugin)
    ).first()
    if found is None:
        raise NotFound(
            f"plugin {plugin!r} is not assigned to agent {agent_id!r}; install it first"
        )
    schema = _schema(found)
    effective = _validated(found, secrets.merge_secrets(config, found.config, schema), limits)
    revisions = _bump(conn, t.agents.c.id == agent_id)
    conn.execute(
        update(t.assignments).where(a.agent_id == agent_id, a.plugin_name == plugin)
        .values(config=effective, revision=revisions[agent_id], updated_at=time.time())
    )
    return AssignResult(
        {"agent": agent_id, "plugin": plugin, "version": found.version,
         "config": secrets.redact(effective, schema), "isolation": found.isolation,
         "revision": revisions[agent_id]},
        revisions,
    )
