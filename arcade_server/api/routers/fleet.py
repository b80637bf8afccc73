"""``/api/v1/status`` and ``DELETE /api/v1/agents/{agent_id}``: the fleet as a whole.

``GET /status`` lists every agent (or those matching ``?selector=k=v,...``) with its plugins
and the counts, in a fixed number of queries whatever the fleet's size. Deleting an agent is
an admin's call: it removes the agent's rows and revokes its identity (like ``POST
/agents/{id}/revoke``) in one transaction, then closes its stream; an online agent is refused
unless ``?force=true``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ...auth.roles import Role
from ...errors import Invalid
from ...limits import check_labels
from ...services import fleet
from ...state import ServerState
from ..auth import needs
from ..deps import get_state, liveness
from ..schemas import DeletedAgent, FleetStatus, errors, stated

router = APIRouter(tags=["agents"])

State = Annotated[ServerState, Depends(get_state)]


def parse_selector(text: str | None) -> dict[str, str]:
    """``"k=v,k2=v2"`` → ``{"k": "v", "k2": "v2"}`` (:class:`Invalid` for anything else)."""
    selector: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise Invalid(f"selector item {item!r} must look like key=value (several: "
                          "k1=v1,k2=v2)")
        selector[key.strip()] = value.strip()
    return check_labels(selector)


@router.get("/status", summary="Every agent × plugin with state counts",
            response_model=FleetStatus,
            responses=errors(s422="the selector is not key=value[,key=value...]"),
            dependencies=[needs(Role.VIEWER)])
async def fleet_status(
    state: State,
    selector: Annotated[str | None, Query(
        description="only agents with all these labels: key=value[,key=value...]",
        json_schema_extra=stated(maxLength=4000))] = None,
) -> dict[str, Any]:
    labels = parse_selector(selector)
    return await state.db.read(fleet.fleet_status, liveness(state), labels)


@router.delete("/agents/{agent_id}",
               summary="Delete an agent gone for good: its rows, and its identity revoked",
               response_model=DeletedAgent,
               responses=errors(s404="no agent with this id has registered",
                                s409="the agent is online (force=true deletes it anyway)"),
               dependencies=[needs(Role.ADMIN)])
async def delete_agent(
    agent_id: str, state: State,
    force: Annotated[bool, Query(description="delete it even while it is online")] = False,
) -> dict[str, Any]:
    result = await state.db.run(fleet.delete_agent, agent_id, liveness(state), force=force)
    result["stream_closed"] = state.notifier.agent_revoked(agent_id)
    state.presence.forget(agent_id)
    return result
