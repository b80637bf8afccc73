"""Response bodies of ``/api/v1/agents`` and ``/api/v1/assignments``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from arcade_core.states import AgentPresence, Isolation, PluginState

__all__ = [
    "ActualPlugin",
    "Agent",
    "AgentDetail",
    "AgentJobs",
    "AgentPlugin",
    "ConfigResult",
    "DesiredPlugin",
    "InstallOutcome",
    "InstallResult",
    "LogLine",
    "Metric",
    "PluginLogs",
    "SelectorInstallResult",
    "SelectorRemoveResult",
    "UninstallResult",
]


class AgentJobs(BaseModel):
    """The agent's own ``[jobs]`` policy, as it registered."""

    enabled: bool = Field(description="the agent runs job commands (its `[jobs] enabled`)")
    allow: list[str] = Field(
        description="shell-style patterns a command must match (empty: any command)")


class Agent(BaseModel):
    """An agent as it registered, with its presence and revisions."""

    id: str
    hostname: str
    ip: str
    os: str
    arch: str
    agent_version: str
    python_version: str
    labels: dict[str, str]
    status: AgentPresence
    online: bool
    last_seen: float | None = Field(description="seconds since the epoch")
    registered_at: float
    desired_revision: int = Field(description="bumped by every change of its plugins")
    applied_revision: int = Field(description="the last revision the agent fully applied")
    metrics_dropped: int
    jobs: AgentJobs


class AgentDetail(Agent):
    """``GET /agents/{agent_id}``."""

    connected: bool = Field(description="the agent has an open stream to this server process")


_OWN_INTERVAL = ("seconds between collects set for this assignment (null: none, the "
                 "manifest's or the agent's default applies)")
_OWN_RESOURCES = ("resource limits set for this assignment, overriding the manifest's kind by "
                  "kind ({}: none)")


class DesiredPlugin(BaseModel):
    """What the agent should run."""

    version: str
    config: dict[str, Any]
    isolation: Isolation
    interval: float | None = Field(description=_OWN_INTERVAL)
    effective_interval: float = Field(
        description="the interval the agent is sent: this assignment's, else the manifest's, "
        "else 0 (the agent's own default)")
    resources: dict[str, str] = Field(description=_OWN_RESOURCES)
    effective_resources: dict[str, str] = Field(
        description="the limits the agent is sent (`memory`, `cpu`, `disk`): the manifest's "
        "with this assignment's overrides; enforced for process and exec plugins only")
    revision: int
    updated_at: float


class ActualPlugin(BaseModel):
    """What the agent last reported: the state and the plugin's health."""
    version: str
    state: PluginState = Field(
        description="`degraded`: running, but its hook calls failed several times in a row "
        "(the agent's `degraded_after`, 3 by default) since the last one that succeeded; "
        "`drifted`: its installed files no longer match their RECORD hashes (`drift`); "
        "`untrusted`: running, but its version is no longer signed by a key the agent trusts "
        "(its trust config changed): it keeps running until replaced")
    error: str = Field(description="the last error (a failed call, a crash, a failed load)")
    error_at: float | None = Field(
        default=None, description="when `error` happened, seconds since the epoch")
    errors: int = Field(default=0, description="hook calls that failed since the plugin started")
    restarts: int = Field(description="restarts of a process plugin's child")
    last_collect_at: float | None = Field(
        default=None, description="the last collect() that succeeded, seconds since the epoch")
    pid: int | None = Field(default=None, description="a process plugin's child process id")
    rss: int | None = Field(
        default=None, description="that child's resident memory in bytes")
    isolation: Isolation | Literal[""] = Field(description="empty when the agent did not say")
    drift: list[str] = Field(
        default_factory=list,
        description="the installed files that last differed from their wheels' RECORD "
        "hashes (`<path> (changed|added|missing)`, at most 20 and `… and N more`); kept "
        "after the agent repaired the environment (state `running` again)")
    drift_at: float | None = Field(
        default=None, description="when the agent found that drift, seconds since the epoch")
    local: bool = Field(
        default=False, description="declared in the agent's own config (`plugins:`), not by "
        "this server: shown, never removed by the server")
    limits: str | None = Field(
        default=None, description="the resource limits in force and how, e.g. `memory 128Mi: "
        "cgroup; cpu 100m: measured` (null: none declared)")
    malformed: int = Field(
        default=0, description="protocol lines from the plugin's process that were not valid "
        "messages, since it started")
    sha256: str
    revision: int
    updated_at: float
    stale: bool = Field(
        description="the agent is offline: this is its last known state, not a live one")


class AgentPlugin(BaseModel):
    """One plugin of an agent: desired and actual side by side."""

    name: str
    desired: DesiredPlugin | None
    actual: ActualPlugin | None
    in_sync: bool = Field(description="running the desired version")


class InstallOutcome(BaseModel):
    """An agent's report for the plugin being installed."""

    agent: str
    plugin: str
    version: str
    state: PluginState
    error: str
    restarts: int
    revision: int


_STATE_SO_FAR = ("the agent's last report for the plugin: with ?wait and 200, the one that "
                 "finished the change; otherwise the state so far, which may still describe "
                 "the previous desired state (compare its version and revision)")
_TIMED_OUT = "?wait was given and ran out before the agent(s) reported the change done (202)"


class InstallResult(BaseModel):
    """``POST /agents/{agent_id}/plugins``: the new desired entry and where the agent stands."""

    agent: str
    plugin: str
    version: str = Field(description="the version the spec resolved to")
    config: dict[str, Any] = Field(description="the effective config (defaults applied)")
    isolation: Isolation
    interval: float | None = Field(description=_OWN_INTERVAL)
    resources: dict[str, str] = Field(description=_OWN_RESOURCES)
    revision: int = Field(description="the agent's new desired revision")
    previous_version: str | None = Field(
        description="the version assigned before this change (its config, isolation, "
        "interval and limits are kept unless given or reset), or null for a new install")
    desired: DesiredPlugin = Field(description="the new desired entry, as GET "
                                   "/agents/{agent_id}/plugins shows it")
    connected: bool = Field(description="the change was pushed to an open stream")
    state: InstallOutcome | None = Field(description=_STATE_SO_FAR)
    timed_out: bool = Field(description=_TIMED_OUT)


class UninstallResult(BaseModel):
    """``DELETE /agents/{agent_id}/plugins/{name}``."""

    agent: str
    plugin: str
    removed: bool
    revision: int = Field(description="the agent's new desired revision")
    desired: None = Field(description="always null: the plugin is no longer desired")
    connected: bool = Field(description="the change was pushed to an open stream")
    state: InstallOutcome | None = Field(
        description="null once the agent reported the plugin removed; otherwise its last "
        "report so far")
    timed_out: bool = Field(description=_TIMED_OUT)


class ConfigResult(BaseModel):
    """``PUT /agents/{agent_id}/plugins/{name}/config`` and
    ``PATCH /agents/{agent_id}/plugins/{name}``."""

    agent: str
    plugin: str
    version: str
    config: dict[str, Any] = Field(description="the effective config (defaults applied)")
    isolation: Isolation
    interval: float | None = Field(description=_OWN_INTERVAL)
    resources: dict[str, str] = Field(description=_OWN_RESOURCES)
    revision: int = Field(description="the agent's new desired revision")
    desired: DesiredPlugin = Field(description="the new desired entry")
    connected: bool = Field(description="the change was pushed to an open stream")
    state: InstallOutcome | None = Field(description=_STATE_SO_FAR)
    timed_out: bool = Field(description=_TIMED_OUT)


class SelectorInstallResult(BaseModel):
    """``POST /assignments``; ``states``, ``running`` and ``failed`` only with ``?wait``
    when agents matched."""

    selector: dict[str, str]
    plugin: str
    version: str
    config: dict[str, Any] = Field(
        description="the first matched agent's effective config (each agent keeps its own "
        "unless config or reset_config is given)")
    isolation: Isolation = Field(description="the first matched agent's isolation")
    interval: float | None = Field(description="the first matched agent's interval (null: "
                                   "none set; each keeps its own unless given)")
    resources: dict[str, str] = Field(description="the first matched agent's resource limits "
                                      "override (each keeps its own unless given)")
    matched: int
    agents: list[str]
    revisions: dict[str, int] = Field(description="each matched agent's new desired revision")
    states: dict[str, InstallOutcome | None] | None = Field(
        default=None, description="per agent: its final report, or null while it has none")
    running: int | None = Field(default=None, description="agents running it (degraded too)")
    failed: int | None = None
    timed_out: bool = Field(description=_TIMED_OUT)


class SelectorRemoveResult(BaseModel):
    """``POST /assignments/remove``; ``pending`` only with ``?wait`` when agents matched."""

    selector: dict[str, str]
    plugin: str
    matched: int
    agents: list[str]
    revisions: dict[str, int] = Field(description="each matched agent's new desired revision")
    pending: list[str] | None = Field(
        default=None, description="the agents that have not reported the plugin removed")
    timed_out: bool = Field(description=_TIMED_OUT)


class Metric(BaseModel):
    """One stored metric value."""

    plugin: str
    name: str
    value: float
    labels: dict[str, str]
    unit: str
    timestamp: float = Field(description="seconds since the epoch")


class LogLine(BaseModel):
    """One line a plugin logged on its agent."""

    seq: int = Field(description="increasing per plugin on the agent, from 1; pass the last "
                     "one seen as `after` to read only newer lines")
    time: float = Field(description="seconds since the epoch, the agent's clock")
    level: str = Field(description="`stderr` (a process plugin's output) or a log level "
                       "(`INFO`, `WARNING`, `ERROR`, ...; the agent's own word on a failed "
                       "call, a crash or a failed load is `WARNING`/`ERROR`)")
    text: str = Field(description="the line, cut to 1,000 characters")


class PluginLogs(BaseModel):
    """``GET /agents/{agent_id}/plugins/{name}/logs``: the last lines the plugin logged."""

    agent: str
    plugin: str
    last_seq: int = Field(description="the newest sequence number the agent keeps for the "
                          "plugin (0: none yet)")
    lines: list[LogLine] = Field(description="oldest first")

