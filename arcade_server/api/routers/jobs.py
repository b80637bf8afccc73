"""``/api/v1/jobs``: run commands on an agent with plugin stages around them.

``POST /jobs`` validates the whole job (agent, plugin specs, configs, stages, commands,
timeout) and answers 201 with the job, queued; it is handed to the agent's open stream at once,
or when the agent next connects. ``GET /jobs/{id}`` shows its status, exit code, timing, output
tail and one record per plugin entry; ``GET /jobs`` lists jobs (``?agent=&status=``);
``POST /jobs/{id}/cancel`` cancels a queued job at once and asks the agent to stop a running
one (409 once the job ended).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ...services import jobs
from ...state import ServerState
from ..deps import get_state

router = APIRouter(tags=["jobs"])

State = Annotated[ServerState, Depends(get_state)]


class JobPluginRequest(BaseModel):
    """One plugin entry: its own instance, with its own config, for the job's duration."""

    model_config = ConfigDict(extra="forbid")

    plugin: str = Field(description="name, name@1.2.0 or name@>=1.2,<2",
                        examples=["arcade-workspace@1.0.0"])
    stage: str = Field(description="before, after, on_success, on_failure or notify",
                       examples=["before"])
    order: int = Field(default=0, description="entries of a stage run in this order "
                       "(then in list order)")
    config: dict[str, Any] | None = Field(
        default=None, description="this entry's config; validated, defaults applied"
    )
    isolation: str | None = Field(default=None, description="inline or process "
                                  "(default: the plugin manifest's)")


class JobCreateRequest(BaseModel):
    """A job: shell commands run one after another on one agent (stopping at the first that
    fails), with plugin entries around them."""

    model_config = ConfigDict(extra="forbid")

    agent: str = Field(description="the agent's id")
    commands: list[str] = Field(description="shell commands", examples=[["make test"]])
    env: dict[str, str] = Field(default_factory=dict, description="added to the agent's "
                                "environment for the commands")
    timeout: float | None = Field(default=None, description="seconds the commands may run "
                                  "(default: the server's job_default_timeout)")
    plugins: list[JobPluginRequest] = Field(default_factory=list)


@router.post("/jobs", status_code=201, summary="Create a job on an agent (queued)",
             responses={404: {"description": "unknown agent"},
                        422: {"description": "bad spec, config, stage, command or timeout"}})
async def create_job(body: JobCreateRequest, state: State) -> JSONResponse:
    settings = state.settings
    request = jobs.JobRequest(
        agent=body.agent, commands=body.commands, env=body.env, timeout=body.timeout,
        plugins=[jobs.PluginEntryRequest(plugin=p.plugin, stage=p.stage, order=p.order,
                                         config=p.config, isolation=p.isolation)
                 for p in body.plugins],
    )
    result = await state.db.run(
        jobs.create_job, request, default_timeout=settings.job_default_timeout,
        max_timeout=settings.job_max_timeout,
    )
    out = dict(result.job)
    sent = await jobs.deliver(state, [result.dispatch])
    out["connected"] = bool(sent)
    return JSONResponse(out, status_code=201, headers={"Location": f"/api/v1/jobs/{out['id']}"})


@router.get("/jobs", summary="List jobs, newest first")
async def list_jobs(
    state: State,
    agent: Annotated[str | None, Query(description="only this agent's jobs")] = None,
    status: Annotated[str | None, Query(description="queued, running, succeeded, failed, "
                                        "cancelled or timed_out")] = None,
    limit: Annotated[int, Query(ge=1, le=jobs.LIST_LIMIT)] = 100,
) -> list[dict[str, Any]]:
    return await state.db.read(jobs.list_jobs, agent=agent, status=status, limit=limit)


@router.get("/jobs/{job_id}", summary="One job: status, exit code, output tail, plugin records")
async def get_job(job_id: str, state: State) -> dict[str, Any]:
    return await state.db.read(jobs.get_job, job_id)


@router.post("/jobs/{job_id}/cancel", status_code=202,
             summary="Cancel a job (queued: at once; running: the agent stops it)",
             responses={200: {"description": "the job was queued and is now cancelled"},
                        404: {}, 409: {"description": "the job already ended"}})
async def cancel_job(job_id: str, state: State) -> JSONResponse:
    result = await state.db.run(jobs.cancel_job, job_id)
    out = dict(result.job)
    out["cancel_sent"] = result.notify_agent and jobs.send_cancel(state, result.agent_id,
                                                                  job_id)
    return JSONResponse(out, status_code=200 if out["status"] == "cancelled" else 202)
