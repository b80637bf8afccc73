"""``/api/v1/agents`` and ``/api/v1/assignments``: agents, desired state, metrics.

An assignment change returns 202 with the resolved version and the new revision, after the
new desired state was handed to the agent's open stream. ``?wait=SECONDS`` holds the answer
until the agent(s) report ``running`` or ``failed`` for that version (200), or the time is up
(202 with the current state). The wait wakes on reports received by this process and re-reads
the agents that reported, and re-reads every pending agent every ``wait_poll_interval``
(reports may reach another replica): a wait over a fleet of N agents reads O(N) rows in all,
not N per report.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from arcade_core.states import AgentPresence, PluginState

from ...auth.roles import Role
from ...errors import Invalid
from ...limits import MAX_NAME_LENGTH
from ...services import agents, assignments, metrics, plugin_states
from ...state import ServerState
from ..auth import needs
from ..deps import get_state
from ..schemas import (
    Agent,
    AgentDetail,
    AgentPlugin,
    ConfigResult,
    InstallRequest,
    InstallResult,
    Metric,
    SelectorInstallRequest,
    SelectorInstallResult,
    SelectorRemoveRequest,
    SelectorRemoveResult,
    UninstallResult,
    errors,
    stated,
)
from ..schemas.requests import PLUGIN_NAME_PATTERN

router = APIRouter(tags=["agents"])

State = Annotated[ServerState, Depends(get_state)]
Wait = Annotated[
    float | None,
    Query(description="seconds to wait for the agent(s) to report running or failed, "
          "at most the server's max_wait", json_schema_extra=stated(minimum=0)),
]

PluginName = Annotated[str, Path(description="the plugin's name",
                                 json_schema_extra=stated(pattern=PLUGIN_NAME_PATTERN,
                                                          maxLength=MAX_NAME_LENGTH))]

_UNKNOWN_AGENT = "no agent with this id has registered"
_RESOLVE_404 = "unknown agent, or no plugin of that name is published"
_RESOLVE_409 = ("the plugin is disabled, or an agent already has max_plugins_per_agent "
                "plugins")
_CONFIG_413 = "the config is over the server's max_config_bytes (as canonical JSON)"
_RESOLVE_422 = ("bad spec, no published version matches, bad config or isolation, or wait "
                "over max_wait")


def _parse_labels(values: list[str] | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise Invalid(f"label filter {item!r} must look like key=value")
        labels[key] = value
    return labels


def _check_wait(state: ServerState, wait: float | None) -> float:
    if wait is None:
        return 0.0
    if not 0 <= wait <= state.settings.max_wait:
        raise Invalid(f"wait must be between 0 and {state.settings.max_wait:g} seconds")
    return wait


async def _await_outcomes(
    state: ServerState, revisions: dict[str, int], plugin: str, version: str, wait: float
) -> tuple[dict[str, dict[str, Any] | None], bool]:
    """Wait up to ``wait`` s for every agent's final report; return (outcomes, all_final)."""
    deadline = time.monotonic() + wait
    poll = state.settings.wait_poll_interval
    pending = dict(revisions)
    outcomes: dict[str, dict[str, Any] | None] = dict.fromkeys(revisions)
    with state.hub.waiter(list(revisions)) as waiter:
        check: list[str] = list(pending)
        next_full = time.monotonic() + poll
        while True:
            if check:
                found = await state.db.read(
                    plugin_states.install_outcomes, {a: pending[a] for a in check}, plugin, version
                )
                for agent_id, outcome in found.items():
                    if outcome is not None:
                        outcomes[agent_id] = outcome
                        pending.pop(agent_id, None)
            now = time.monotonic()
            remaining = deadline - now
            if not pending or remaining <= 0:
                return outcomes, not pending
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), timeout=max(0, min(remaining,
                                                                         next_full - now)))
            reported = waiter.take()
            check = [agent_id for agent_id in reported if agent_id in pending]
            if time.monotonic() >= next_full:
                # The agents connected here report here, and each report wakes the waiter:
                # only the others (connected to another replica, or not at all) are re-read.
                hub = state.hub
                check = [*check, *(agent_id for agent_id in pending
                                   if agent_id not in reported and not hub.connected(agent_id))]
                next_full = time.monotonic() + poll


# ---------------------------------------------------------------- agents


@router.get("/agents", summary="List agents with online/offline status",
            response_model=list[Agent], responses=errors(s422="a label is not key=value"),
            dependencies=[needs(Role.VIEWER)])
async def list_agents(
    state: State,
    label: Annotated[list[str] | None, Query(
        description="key=value; repeat to AND",
        json_schema_extra=stated(items={"type": "string", "pattern": "^[^=]+="}))] = None,
    status: AgentPresence | None = None,
) -> list[dict[str, Any]]:
    labels = _parse_labels(label)
    return await state.db.read(
        agents.list_agents, last_seen=state.presence.snapshot(),
        offline_after=state.settings.offline_after, labels=labels, status=status,
    )


@router.get("/agents/{agent_id}", summary="One agent", response_model=AgentDetail,
            responses=errors(s404=_UNKNOWN_AGENT),
            dependencies=[needs(Role.VIEWER)])
async def get_agent(agent_id: str, state: State) -> dict[str, Any]:
    return await state.db.read(
        agents.get_agent, agent_id, last_seen=state.presence.last_seen(agent_id),
        offline_after=state.settings.offline_after,
        connected=state.hub.connected(agent_id),
    )


@router.get("/agents/{agent_id}/plugins", summary="Desired and actual plugins side by side",
            response_model=list[AgentPlugin], responses=errors(s404=_UNKNOWN_AGENT),
            dependencies=[needs(Role.VIEWER)])
async def agent_plugins(agent_id: str, state: State) -> list[dict[str, Any]]:
    return await state.db.read(plugin_states.agent_plugins, agent_id)


@router.post(
    "/agents/{agent_id}/plugins",
    status_code=202,
    summary="Install name@spec on one agent",
    response_model=InstallResult,
    response_description="assigned and pushed; the agent has not reported on it yet (or "
    "?wait ran out)",
    responses={200: {"model": InstallResult,
                     "description": "the agent reported running or failed within ?wait"},
               **errors(s404=_RESOLVE_404, s409=_RESOLVE_409, s413=_CONFIG_413,
                        s422=_RESOLVE_422)},
    dependencies=[needs(Role.OPERATOR)],
)
async def install(agent_id: str, body: InstallRequest, state: State, response: Response,
                  wait: Wait = None) -> dict[str, Any]:
    seconds = _check_wait(state, wait)
    result = await state.db.run(
        assignments.assign, agent_id, body.plugin, config=body.config, isolation=body.isolation,
        limits=state.settings.config_limits,
    )
    await state.notifier.desired_changed(result.revisions)
    out = dict(result.body)
    out["connected"] = state.hub.connected(agent_id)
    if seconds > 0:
        outcomes, done = await _await_outcomes(
            state, result.revisions, out["plugin"], out["version"], seconds
        )
        if done:
            out["state"] = outcomes[agent_id]
            response.status_code = 200
            return out
    current = await state.db.read(plugin_states.current_states, [agent_id], out["plugin"])
    out["state"] = current.get(agent_id)
    return out


@router.delete("/agents/{agent_id}/plugins/{name}", status_code=202,
               summary="Uninstall a plugin from one agent", response_model=UninstallResult,
               responses=errors(s404="unknown agent, or the plugin is not assigned to it",
                                s422="not a valid plugin name"),
               dependencies=[needs(Role.OPERATOR)])
async def uninstall(agent_id: str, name: PluginName, state: State) -> dict[str, Any]:
    result = await state.db.run(assignments.unassign, agent_id, name)
    await state.notifier.desired_changed(result.revisions)
    return result.body


@router.put("/agents/{agent_id}/plugins/{name}/config", status_code=202,
            summary="Replace an assigned plugin's config", response_model=ConfigResult,
            responses=errors(s404="unknown agent, or the plugin is not assigned to it",
                             s413=_CONFIG_413,
                             s422="not a valid plugin name, or the config is refused"),
            dependencies=[needs(Role.OPERATOR)])
async def set_config(
    agent_id: str, name: PluginName, state: State,
    config: Annotated[dict[str, Any], Body(description="the new config (a JSON object)")],
) -> dict[str, Any]:
    result = await state.db.run(assignments.set_config, agent_id, name, config,
                                limits=state.settings.config_limits)
    await state.notifier.desired_changed(result.revisions)
    return result.body


@router.get("/agents/{agent_id}/metrics", summary="Stored metrics of one agent, oldest first",
            response_model=list[Metric],
            responses=errors(s404=_UNKNOWN_AGENT,
                             s422="limit over the server's metric_query_limit"),
            dependencies=[needs(Role.VIEWER)])
async def agent_metrics(
    agent_id: str,
    state: State,
    name: Annotated[str | None, Query(description="exact, or a prefix ending in *")] = None,
    plugin: str | None = None,
    since: Annotated[float | None, Query(description="seconds since the epoch")] = None,
    limit: Annotated[int, Query(ge=1)] = 1000,
) -> list[dict[str, Any]]:
    return await state.db.read(
        metrics.query, agent_id, name=name, plugin=plugin, since=since, limit=limit,
        max_limit=state.settings.metric_query_limit,
    )


# ---------------------------------------------------------------- selectors


@router.post(
    "/assignments",
    status_code=202,
    tags=["assignments"],
    summary="Install name@spec on every agent matching a label selector ({} = all)",
    response_model=SelectorInstallResult,
    response_model_exclude_unset=True,
    response_description="assigned and pushed (with ?wait: not every agent reported in time)",
    responses={200: {"model": SelectorInstallResult,
                     "description": "every matched agent reported within ?wait"},
               **errors(s404="no plugin of that name is published", s409=_RESOLVE_409,
                        s413=_CONFIG_413, s422=_RESOLVE_422)},
    dependencies=[needs(Role.OPERATOR)],
)
async def install_selector(body: SelectorInstallRequest, state: State, response: Response,
                           wait: Wait = None) -> dict[str, Any]:
    seconds = _check_wait(state, wait)
    result = await state.db.run(
        assignments.assign_selector, body.selector, body.plugin,
        config=body.config, isolation=body.isolation, limits=state.settings.config_limits,
    )
    await state.notifier.desired_changed(result.revisions)
    out = dict(result.body)
    if seconds > 0 and result.revisions:
        outcomes, done = await _await_outcomes(
            state, result.revisions, out["plugin"], out["version"], seconds
        )
        out["states"] = outcomes
        states = [o["state"] for o in outcomes.values() if o]
        out["running"] = states.count(PluginState.RUNNING)
        out["failed"] = states.count(PluginState.FAILED)
        if done:
            response.status_code = 200
    return out


@router.post("/assignments/remove", status_code=202, tags=["assignments"],
             summary="Uninstall a plugin from every agent matching a label selector",
             response_model=SelectorRemoveResult,
             responses=errors(s422="not a valid plugin name or selector"),
             dependencies=[needs(Role.OPERATOR)])
async def remove_selector(body: SelectorRemoveRequest, state: State) -> dict[str, Any]:
    result = await state.db.run(assignments.unassign_selector, body.selector, body.plugin)
    await state.notifier.desired_changed(result.revisions)
    return result.body
