"""Response bodies of the fleet views: ``GET /status`` and ``DELETE /agents/{agent_id}``."""

from __future__ import annotations

from pydantic import BaseModel, Field

from arcade_core.states import AgentPresence

from .agents import AgentPlugin

__all__ = ["DeletedAgent", "DeletedRows", "FleetAgent", "FleetStatus"]


class FleetAgent(BaseModel):
    """One agent of the fleet view with its plugins."""

    id: str
    hostname: str
    labels: dict[str, str]
    status: AgentPresence
    online: bool
    last_seen: float | None = Field(description="seconds since the epoch")
    plugins: list[AgentPlugin] = Field(
        description="desired beside actual; actual states are stale while it is offline")


class FleetStatus(BaseModel):
    """``GET /status``: every agent matching the selector × its plugins, with counts."""

    selector: dict[str, str] = Field(description="the labels every listed agent has")
    agents: list[FleetAgent]
    online: int = Field(description="agents online")
    offline: int = Field(description="agents offline")
    states: dict[str, int] = Field(
        description="plugins by reported state (pending: assigned, not reported yet)")
    stale: int = Field(description="plugins whose state is the last known of an offline agent")


class DeletedRows(BaseModel):
    """How many rows of each kind went with the agent."""

    metrics: int
    jobs: int
    plugins: int = Field(description="reported plugin states")
    assignments: int = Field(description="desired plugins")


class DeletedAgent(BaseModel):
    """``DELETE /agents/{agent_id}``: the agent and its rows are gone, its identity revoked."""

    agent: str
    deleted: bool
    was_online: bool = Field(description="it was online (deleted with force)")
    revoked: bool = Field(
        description="its identity was revoked now: its certificate is refused from now on, "
        "it can come back only by enrolling with a new token")
    stream_closed: bool = Field(description="its open stream on this server was ended")
    rows: DeletedRows
