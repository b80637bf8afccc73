"""``/api/v1/agents`` and ``/api/v1/assignments``: agents, desired state, metrics.

An assignment change (install, uninstall, config) returns 202 with the NEW desired entry and
revision, after the new desired state was handed to the agent's open stream, and the agent's
last report so far (which may still describe the previous desired state). ``?wait=SECONDS``
holds the answer until the agent(s) report the change done (200), or the time is up (202 with
``"timed_out": true`` and the state so far): :mod:`arcade_server.api.waits`.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from arcade_core import ArcadeError, normalize_name
from arcade_core.states import AgentPresence, PluginState

from ...auth.roles import Role
from ...errors import Invalid
from ...limits import MAX_NAME_LENGTH
from ...services import agents, assignments, metrics, plugin_states
from ...state import ServerState
from ..auth import needs
from ..deps import get_state, liveness
from ..schemas import (
    Agent,
    AgentDetail,
    AgentPlugin,
    AssignmentUpdateRequest,
    ConfigResult,
    InstallRequest,
    InstallResult,
    Metric,
    PluginLogs,
    SelectorInstallRequest,
    SelectorInstallResult,
    SelectorRemoveRequest,
    SelectorRemoveResult,
    UninstallResult,
    errors,
    stated,
)
from ..schemas.requests import PLUGIN_NAME_PATTERN
from ..waits import Probe, Wait, await_outcomes, check_wait

router = APIRouter(tags=["agents"])

State = Annotated[ServerState, Depends(get_state)]

PluginName = Annotated[str, Path(description="the plugin's name",
                                 json_schema_extra=stated(pattern=PLUGIN_NAME_PATTERN,
                                                          maxLength=MAX_NAME_LENGTH))]

_UNKNOWN_AGENT = "no agent with this id has registered"
_RESOLVE_404 = "unknown agent, or no plugin of that name is published"
_RESOLVE_409 = ("the plugin is disabled, or an agent already has max_plugins_per_agent "
                "plugins")
_CONFIG_413 = "the config is over the server's max_config_bytes (as canonical JSON)"
_RESOLVE_422 = ("bad spec, no published version matches, bad config, isolation, interval or "
                "limits, or wait over max_wait")


def _parse_labels(values: list[str] | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise Invalid(f"label filter {item!r} must look like key=value")
        labels[key] = value
    return labels


async def _answer(state: ServerState, response: Response, out: dict[str, Any],
                  agent_id: str, wait: float, probe: Probe) -> dict[str, Any]:
    """One agent's change: 200 with its outcome when ``probe`` says done within ``wait``,
    else 202 with ``timed_out`` (when waiting) and its last report so far."""
    out["connected"] = state.hub.connected(agent_id)
    out["timed_out"] = False
    revisions = {agent_id: out["revision"]}
    if wait > 0:
        outcomes, done = await await_outcomes(state, revisions, probe, wait)
        if done:
            response.status_code = 200
            outcome = outcomes[agent_id]
            out["state"] = outcome if outcome and "state" in outcome else None
            return out
        out["timed_out"] = True
    current = await state.db.read(plugin_states.current_states, [agent_id], out["plugin"])
    out["state"] = current.get(agent_id)
    return out


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
        left=state.presence.departures(),
    )


@router.get("/agents/{agent_id}", summary="One agent", response_model=AgentDetail,
            responses=errors(s404=_UNKNOWN_AGENT),
            dependencies=[needs(Role.VIEWER)])
async def get_agent(agent_id: str, state: State) -> dict[str, Any]:
    return await state.db.read(
        agents.get_agent, agent_id, last_seen=state.presence.last_seen(agent_id),
        offline_after=state.settings.offline_after,
        connected=state.hub.connected(agent_id), left_at=state.presence.left_at(agent_id),
    )


@router.get("/agents/{agent_id}/plugins", summary="Desired and actual plugins side by side",
            response_model=list[AgentPlugin], responses=errors(s404=_UNKNOWN_AGENT),
            dependencies=[needs(Role.VIEWER)])
async def agent_plugins(agent_id: str, state: State) -> list[dict[str, Any]]:
    return await state.db.read(plugin_states.agent_plugins, agent_id, liveness(state))



@router.get(
    "/agents/{agent_id}/plugins/{name}/logs",
    summary="The last lines a plugin logged on its agent",
    description="Read from the running agent, which keeps the last 500 lines per plugin (a "
    "process plugin's stderr, an in-process plugin's own log records, the agent's word on "
    "its failed calls, crashes and loads). Operator role: a plugin may print secrets.",
    response_model=PluginLogs,
    responses=errors(s404="unknown agent, or the agent keeps no logs for that plugin",
                     s409="the agent is not connected to this server (or has too many log "
                     "reads waiting)",
                     s504="the agent did not answer within the server's logs_timeout"),
    dependencies=[needs(Role.OPERATOR)],
)
async def plugin_logs(
    agent_id: str,
    name: PluginName,
    state: State,
    after: Annotated[int, Query(ge=0, le=2**63 - 1,
                                description="only lines with a larger seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=500, description="at most this many lines, the "
                                "newest of them")] = 100,
) -> dict[str, Any]:
    try:
        plugin = normalize_name(name)
    except ArcadeError as exc:
        raise Invalid(str(exc)) from None
    await state.db.read(agents.get_agent_row, agent_id)
    answer = await state.hub.logs.read(agent_id, plugin, after=after, limit=limit,
                                       timeout=state.settings.logs_timeout)
    return {"agent": agent_id, "plugin": plugin, **answer}


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
    seconds = check_wait(state, wait)
    result = await state.db.run(
        assignments.assign, agent_id, body.plugin, config=body.config, isolation=body.isolation,
        reset_config=body.reset_config, interval=body.interval,
        resources=None if body.resources is None else body.resources.given(),
        limits=state.settings.config_limits,
    )
    await state.notifier.desired_changed(result.revisions)
    out = dict(result.body)
    probe = partial(plugin_states.install_outcomes, name=out["plugin"], version=out["version"])
    return await _answer(state, response, out, agent_id, seconds, probe)


@router.delete(
    "/agents/{agent_id}/plugins/{name}",
    status_code=202,
    summary="Uninstall a plugin from one agent",
    response_model=UninstallResult,
    response_description="removed from the desired state and pushed; the agent has not "
    "reported it removed yet (or ?wait ran out: timed_out)",
    responses={200: {"model": UninstallResult,
                     "description": "the agent reported the plugin removed within ?wait"},
               **errors(s404="unknown agent, or the plugin is not assigned to it",
                        s422="not a valid plugin name, or wait over max_wait")},
    dependencies=[needs(Role.OPERATOR)],
)
async def uninstall(agent_id: str, name: PluginName, state: State, response: Response,
                    wait: Wait = None) -> dict[str, Any]:
    seconds = check_wait(state, wait)
    result = await state.db.run(assignments.unassign, agent_id, name)
    await state.notifier.desired_changed(result.revisions)
    out = dict(result.body)
    probe = partial(plugin_states.removal_outcomes, name=out["plugin"])
    return await _answer(state, response, out, agent_id, seconds, probe)


@router.put(
    "/agents/{agent_id}/plugins/{name}/config",
    status_code=202,
    summary="Replace an assigned plugin's config",
    response_model=ConfigResult,
    response_description="stored and pushed; the agent has not reported it applied yet (or "
    "?wait ran out: timed_out)",
    responses={200: {"model": ConfigResult,
                     "description": "the agent reported the new revision applied (running "
                     "or failed) within ?wait"},
               **errors(s404="unknown agent, or the plugin is not assigned to it",
                        s413=_CONFIG_413,
                        s422="not a valid plugin name, the config is refused, or wait over "
                        "max_wait")},
    dependencies=[needs(Role.OPERATOR)],
)
async def set_config(
    agent_id: str, name: PluginName, state: State, response: Response,
    config: Annotated[dict[str, Any], Body(description="the new config (a JSON object)")],
    wait: Wait = None,
) -> dict[str, Any]:
    seconds = check_wait(state, wait)
    result = await state.db.run(assignments.set_config, agent_id, name, config,
                                limits=state.settings.config_limits)
    await state.notifier.desired_changed(result.revisions)
    out = dict(result.body)
    probe = partial(plugin_states.install_outcomes, name=out["plugin"], version=out["version"])
    return await _answer(state, response, out, agent_id, seconds, probe)


@router.patch(
    "/agents/{agent_id}/plugins/{name}",
    status_code=202,
    summary="Change an assigned plugin's config, interval or resource limits in place",
    response_model=ConfigResult,
    response_description="stored and pushed; the agent has not reported it applied yet (or "
    "?wait ran out: timed_out)",
    responses={200: {"model": ConfigResult,
                     "description": "the agent reported the new revision applied (running "
                     "or failed) within ?wait"},
               **errors(s404="unknown agent, or the plugin is not assigned to it",
                        s413=_CONFIG_413,
                        s422="not a valid plugin name, nothing to change, the config, interval "
                        "or limits are refused, or wait over max_wait")},
    dependencies=[needs(Role.OPERATOR)],
)
async def update_assignment(agent_id: str, name: PluginName, body: AssignmentUpdateRequest,
                            state: State, response: Response, wait: Wait = None
                            ) -> dict[str, Any]:
    seconds = check_wait(state, wait)
    given = body.model_fields_set
    if not given & {"config", "interval", "resources"}:
        raise Invalid('nothing to change: give "config", "interval" and/or "resources"')
    changes: dict[str, Any] = {"config": body.config}
    if "interval" in given:
        changes["interval"] = body.interval
    if "resources" in given:
        changes["resources"] = None if body.resources is None else body.resources.given()
    result = await state.db.run(assignments.update_assignment, agent_id, name, **changes,
                                limits=state.settings.config_limits)
    await state.notifier.desired_changed(result.revisions)
    out = dict(result.body)
    probe = partial(plugin_states.install_outcomes, name=out["plugin"], version=out["version"])
    return await _answer(state, response, out, agent_id, seconds, probe)


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
    latest: Annotated[bool, Query(
        description="only the newest value of each series (plugin, name, labels)")] = False,
) -> list[dict[str, Any]]:
    return await state.db.read(
        metrics.query, agent_id, name=name, plugin=plugin, since=since, limit=limit,
        max_limit=state.settings.metric_query_limit, latest=latest,
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
    seconds = check_wait(state, wait)
    result = await state.db.run(
        assignments.assign_selector, body.selector, body.plugin,
        config=body.config, isolation=body.isolation, reset_config=body.reset_config,
        interval=body.interval,
        resources=None if body.resources is None else body.resources.given(),
        limits=state.settings.config_limits,
    )
    await state.notifier.desired_changed(result.revisions)
    out = dict(result.body)
    out["timed_out"] = False
    if seconds > 0 and result.revisions:
        probe = partial(plugin_states.install_outcomes, name=out["plugin"],
                        version=out["version"])
        outcomes, done = await await_outcomes(state, result.revisions, probe, seconds)
        out["states"] = outcomes
        states = [o["state"] for o in outcomes.values() if o]
        # Degraded and untrusted are running (loaded; its calls failing, or no longer
        # signed by a key the agent trusts): the counts add up to the matches.
        out["running"] = sum(states.count(s) for s in (
            PluginState.RUNNING, PluginState.DEGRADED, PluginState.UNTRUSTED))
        out["failed"] = states.count(PluginState.FAILED)
        if done:
            response.status_code = 200
        else:
            out["timed_out"] = True
    return out


@router.post(
    "/assignments/remove",
    status_code=202,
    tags=["assignments"],
    summary="Uninstall a plugin from every agent matching a label selector",
    response_model=SelectorRemoveResult,
    response_model_exclude_unset=True,
    response_description="removed from the desired states and pushed (with ?wait: not every "
    "agent reported it removed in time: timed_out)",
    responses={200: {"model": SelectorRemoveResult,
                     "description": "every matched agent reported it removed within ?wait"},
               **errors(s422="not a valid plugin name or selector, or wait over max_wait")},
    dependencies=[needs(Role.OPERATOR)],
)
async def remove_selector(body: SelectorRemoveRequest, state: State, response: Response,
                          wait: Wait = None) -> dict[str, Any]:
    seconds = check_wait(state, wait)
    result = await state.db.run(assignments.unassign_selector, body.selector, body.plugin)
    await state.notifier.desired_changed(result.revisions)
    out = dict(result.body)
    out["timed_out"] = False
    if seconds > 0 and result.revisions:
        probe = partial(plugin_states.removal_outcomes, name=out["plugin"])
        outcomes, done = await await_outcomes(state, result.revisions, probe, seconds)
        out["pending"] = sorted(a for a, outcome in outcomes.items() if outcome is None)
        if done:
            response.status_code = 200
        else:
            out["timed_out"] = True
    return out
