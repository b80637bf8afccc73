"""Desired state reads: the plugin list each agent should run, and what it may download.

:func:`desired_states` builds the full desired list of several agents in a few queries (for
the first state of new streams and pushes after a fleet-wide change), each plugin with the
signatures of its version (agents decide themselves whether they trust the signers);
:func:`revisions` is the cheap check of which connected agents are behind;
:func:`may_download` is the DownloadWheel permission check.
Changes are in :mod:`~arcade_server.services.assignments`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from arcade_core.signing import Signature

from ..db import tables as t
from . import registry, signatures
from ._overrides import effective_interval, effective_resources
from .agents import get_agent_row
from .job_runs import job_wheel_allowed

__all__ = [
    "DesiredPlugin",
    "DesiredState",
    "WheelRef",
    "desired_state",
    "desired_states",
    "may_download",
    "revisions",
]


@dataclass(frozen=True)
class WheelRef:
    """One wheel of a desired plugin (the plugin's first, then its dependencies)."""

    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DesiredPlugin:
    """One plugin an agent should run (``isolation``: an
    :class:`~arcade_core.states.Isolation` word); ``interval``: the assignment's, else the
    manifest's, else 0 (the agent's default); ``resources``: the manifest's limits with the
    assignment's overrides (``{"memory": "128Mi", "cpu": "100m"}``); ``signatures``: its
    version's, by key id."""

    name: str
    version: str
    isolation: str
    config: Mapping[str, Any]
    wheels: tuple[WheelRef, ...]
    interval: float
    signatures: tuple[Signature, ...] = ()
    resources: Mapping[str, str] = field(default_factory=dict)

    @property
    def config_json(self) -> str:
        return json.dumps(self.config, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class DesiredState:
    """Everything an agent should run at ``revision``."""

    agent_id: str
    revision: int
    plugins: tuple[DesiredPlugin, ...]



def desired_states(conn: Connection, agent_ids: Iterable[str]) -> dict[str, DesiredState]:
    """The full desired state of each agent, in four queries whatever the number of agents
    (plus one per 500 distinct versions beyond the first 500, for their signatures)."""
    ids = list(dict.fromkeys(agent_ids))
    if not ids:
        return {}
    agent = t.agents.c
    revision_of = dict(conn.execute(
        select(agent.id, agent.desired_revision).where(agent.id.in_(ids))
    ).all())
    a, v, w = t.assignments.c, t.plugin_versions.c, t.plugin_version_wheels.c
    rows = conn.execute(
        select(a.agent_id, a.plugin_name, a.isolation, a.config, a.interval, a.resources,
               a.version_id, v.version, v.manifest)
        .join(t.plugin_versions, v.id == a.version_id)
        .where(a.agent_id.in_(list(revision_of)))
        .order_by(a.agent_id, a.plugin_name)
    ).all()
    # Each version's wheels, interval and limits once, however many agents run it.
    wheels_of: dict[int, list[WheelRef]] = {row.version_id: [] for row in rows}
    if wheels_of:
        for wheel in conn.execute(
            select(w.version_id, w.filename, w.sha256, w.size)
            .where(w.version_id.in_(list(wheels_of)))
            .order_by(w.version_id, w.position)
        ):
            wheels_of[wheel.version_id].append(WheelRef(wheel.filename, wheel.sha256, wheel.size))
    signed = signatures.of_versions(conn, wheels_of) if wheels_of else {}
    cache: dict[int, tuple[tuple[WheelRef, ...], float | None, dict[str, Any],
                           tuple[Signature, ...]]] = {}
    plugins: dict[str, list[DesiredPlugin]] = {agent_id: [] for agent_id in revision_of}
    for row in rows:
        if row.version_id not in cache:
            manifest = registry.manifest_of(row)
            cache[row.version_id] = (
                tuple(wheels_of[row.version_id]),
                manifest.interval,
                manifest.resources,
                tuple(signed[row.version_id]),
            )
        wheels, interval, resources, signed_by = cache[row.version_id]
        plugins[row.agent_id].append(DesiredPlugin(
            name=row.plugin_name, version=row.version, isolation=row.isolation,
            config=row.config, wheels=wheels, interval=effective_interval(row.interval, interval),
            signatures=signed_by, resources=effective_resources(resources, row.resources),
        ))
    return {
        agent_id: DesiredState(agent_id, revision_of[agent_id], tuple(plugins[agent_id]))
        for agent_id in revision_of
    }


def desired_state(conn: Connection, agent_id: str) -> DesiredState:
    """One agent's desired state (404 if it never registered)."""
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
