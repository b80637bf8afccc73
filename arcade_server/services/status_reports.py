"""Status reports: the plugins an agent says it runs (the "actual" state beside the desired).

Reports arrive in bursts (a fleet-wide rollout): :func:`report_statuses` writes many agents'
reports in a handful of ``executemany`` statements, fed by the server's
:class:`~arcade_server.db.batcher.Batcher` (one transaction per batch); :func:`status_update`
validates one report first, on the event loop, so a bad one never fails a whole batch.
:func:`report_status` is the one-agent form.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam

from arcade_core.states import PluginState

from ..db import tables as t
from ..errors import Invalid
from ._sql import upsert
from ._text import clip

__all__ = [
    "REPORTED_STATES",
    "ReportedPlugin",
    "StatusUpdate",
    "check_reported",
    "report_status",
    "report_statuses",
    "state_rows",
    "status_update",
]

#: The plugin states an agent may report: every :class:`~arcade_core.states.PluginState`
#: but ``restarting``, which the agent reports as ``running`` (with its restarts and error);
#: ``degraded`` included (running, its hook calls keep failing).
REPORTED_STATES = frozenset(PluginState) - {PluginState.RESTARTING}

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
    #: Health: when ``error`` happened, failed hook calls since start, the last successful
    #: collect (epoch seconds; ``None``: never / none), a process plugin's pid and RSS bytes.
    error_at: float | None = None
    errors: int = 0
    last_collect_at: float | None = None
    pid: int | None = None
    rss: int | None = None
    #: Drift: the installed files that last changed, and when (``None``: never).
    drift: tuple[str, ...] = ()
    drift_at: float | None = None
    #: Declared in the agent's own config (the server never removes it); the limits in
    #: force and how (``None``: none declared); protocol lines that were not messages.
    local: bool = False
    limits: str | None = None
    malformed: int = 0


def state_rows(agent_id: str, plugins: Sequence[ReportedPlugin], revision: int, now: float
               ) -> list[dict[str, Any]]:
    """The ``plugin_states`` rows of a report (raises :class:`Invalid` for an unknown state)."""
    rows = []
    for p in plugins:
        if p.state not in REPORTED_STATES:
            raise Invalid(
                f"plugin {p.name!r}: unknown state {p.state!r}; expected one of "
                f"{', '.join(sorted(REPORTED_STATES))}"
            )
        rows.append({
            "agent_id": agent_id, "plugin_name": clip(p.name, 200),
            "version": clip(p.version, 100), "state": p.state,
            "error": clip(p.error, 8000), "restarts": max(0, p.restarts),
            "isolation": clip(p.isolation, 20), "sha256": p.sha256[:64],
            "revision": revision, "updated_at": now,
            "error_at": _time(p.error_at), "errors": min(max(0, p.errors), _MAX_COUNT),
            "last_collect_at": _time(p.last_collect_at),
            "pid": p.pid if p.pid is not None and 0 < p.pid < 2**31 else None,
            "rss": p.rss if p.rss is not None and 0 < p.rss < _MAX_COUNT else None,
            "drift": [clip(path, _MAX_DRIFT_PATH) for path in p.drift[:_MAX_DRIFT]] or None,
            "drift_at": _time(p.drift_at),
            "local": bool(p.local), "limits": clip(p.limits, 500) if p.limits else None,
            "malformed": min(max(0, p.malformed), _MAX_COUNT),
        })
    return rows


#: The most drifted paths stored per plugin (the agent sends 20 and "… and N more"), and
#: the longest path.
_MAX_DRIFT = 21
_MAX_DRIFT_PATH = 1000
#: The largest count or size stored (a BIGINT; an agent may send any int64).
_MAX_COUNT = 2**62


def _time(value: float | None) -> float | None:
    """An agent-sent time, or ``None`` when unset, not finite or not positive."""
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return value


def check_reported(plugins: Sequence[ReportedPlugin]) -> None:
    """Raise :class:`Invalid` if a reported plugin has a state an agent may not report."""
    state_rows("", plugins, 0, 0.0)


@dataclass(frozen=True)
class StatusUpdate:
    """One agent's status report, validated by :func:`status_update`, ready to store."""

    agent_id: str
    revision: int
    rows: tuple[dict[str, Any], ...]
    complete: bool
    now: float


def status_update(
    agent_id: str,
    revision: int,
    plugins: Sequence[ReportedPlugin],
    *,
    complete: bool = False,
    now: float | None = None,
) -> StatusUpdate:
    """Validate a status report (raises :class:`Invalid` for an unknown state)."""
    now = time.time() if now is None else now
    return StatusUpdate(agent_id, revision, tuple(state_rows(agent_id, plugins, revision, now)),
                        complete, now)


def report_statuses(conn: Connection, updates: Sequence[StatusUpdate]) -> list[None]:
    """Store several status reports at once, in order: per-plugin statuses (``removed``
    deletes the row; a later report of the same agent and plugin wins), last-seen times, and
    the revision of each agent's last complete report as its applied revision."""
    final: dict[tuple[str, str], dict[str, Any]] = {}
    seen: dict[str, float] = {}
    applied: dict[str, int] = {}
    for update_ in updates:
        for row in update_.rows:
            final[(update_.agent_id, row["plugin_name"])] = row
        seen[update_.agent_id] = max(seen.get(update_.agent_id, 0.0), update_.now)
        if update_.complete:
            applied[update_.agent_id] = update_.revision
    states = t.plugin_states
    removed = [{"b_agent": agent_id, "b_plugin": plugin}
               for (agent_id, plugin), row in final.items() if row["state"] == PluginState.REMOVED]
    kept = [row for row in final.values() if row["state"] != PluginState.REMOVED]
    if removed:
        conn.execute(
            states.delete().where(states.c.agent_id == bindparam("b_agent"),
                                  states.c.plugin_name == bindparam("b_plugin")),
            removed,
        )
    if kept:
        upsert(conn, states, kept, keys=["agent_id", "plugin_name"],
               update=["version", "state", "error", "restarts", "isolation", "sha256",
                       "revision", "updated_at", "error_at", "errors", "last_collect_at",
                       "pid", "rss", "drift", "drift_at", "local", "limits", "malformed"])
    agents = t.agents
    with_applied = [{"b_id": a, "b_seen": seen[a], "b_revision": applied[a]} for a in applied]
    seen_only = [{"b_id": a, "b_seen": t} for a, t in seen.items() if a not in applied]
    if with_applied:
        conn.execute(
            agents.update().where(agents.c.id == bindparam("b_id"))
            .values(last_seen=bindparam("b_seen"), applied_revision=bindparam("b_revision")),
            with_applied,
        )
    if seen_only:
        conn.execute(
            agents.update().where(agents.c.id == bindparam("b_id"))
            .values(last_seen=bindparam("b_seen")),
            seen_only,
        )
    return [None] * len(updates)


def report_status(
    conn: Connection,
    agent_id: str,
    revision: int,
    plugins: Sequence[ReportedPlugin],
    *,
    complete: bool = False,
    now: float | None = None,
) -> None:
    """Store per-plugin statuses (``removed`` deletes the row); a complete report for a
    revision marks that revision applied."""
    report_statuses(conn, [status_update(agent_id, revision, plugins, complete=complete,
                                         now=now)])
