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

from fastapi import APIRouter, Depends, Query, Response

from arcade_core.states import JobStatus

from ...auth.roles import Role
from ...services import job_requests, job_runs, jobs
from ...state import ServerState
from ..auth import needs
from ..deps import get_state
from ..schemas import (
    CancelledJob,
    CreatedJob,
    Job,
    JobCreateRequest,
    JobPluginRequest,
    JobSummary,
    errors,
    stated,
)

__all__ = ["JobCreateRequest", "JobPluginRequest", "router"]

router = APIRouter(tags=["jobs"])

State = Annotated[ServerState, Depends(get_state)]

_UNKNOWN_JOB = "no job with this id"


@router.post(
    "/jobs",
    status_code=201,
    summary="Create a job on an agent (queued)",
    response_model=CreatedJob,
    responses={201: {"headers": {"Location": {"description": "the job's URL",
                                              "schema": {"type": "string"}}}},
               **errors(s404="unknown agent",
                        s413="a plugin config is over max_config_bytes, or the commands and "
                        "env together are over 4 MiB",
                        s409="the agent does not run jobs (its `[jobs] enabled` is not true), "
                        "or a command matches none of its `[jobs] allow` patterns",
                        s422="bad spec, config, stage, command, env or timeout")},
    dependencies=[needs(Role.OPERATOR)],
)
async def create_job(body: JobCreateRequest, state: State, response: Response
                     ) -> dict[str, Any]:
    settings = state.settings
    request = job_requests.JobRequest(
        agent=body.agent, commands=body.commands, env=body.env, timeout=body.timeout,
        plugins=[job_requests.PluginEntryRequest(plugin=p.plugin, stage=p.stage, order=p.order,
                                         config=p.config, isolation=p.isolation)
                 for p in body.plugins],
    )
    result = await state.db.run(
        jobs.create_job, request, default_timeout=settings.job_default_timeout,
        max_timeout=settings.job_max_timeout, max_config_bytes=settings.max_config_bytes,
    )
    out = dict(result.job)
    sent = await job_runs.deliver(state, [result.dispatch])
    out["connected"] = bool(sent)
    response.headers["Location"] = f"/api/v1/jobs/{out['id']}"
    return out


@router.get("/jobs", summary="List jobs, newest first", response_model=list[JobSummary],
            responses=errors(s422="unknown status, or limit out of range"),
            dependencies=[needs(Role.VIEWER)])
async def list_jobs(
    state: State,
    agent: Annotated[str | None, Query(description="only this agent's jobs")] = None,
    status: Annotated[str | None, Query(
        description="queued, running, succeeded, failed, cancelled or timed_out",
        json_schema_extra=stated(enum=[*(s.value for s in JobStatus), None]))] = None,
    limit: Annotated[int, Query(ge=1, le=jobs.LIST_LIMIT)] = 100,
) -> list[dict[str, Any]]:
    return await state.db.read(jobs.list_jobs, agent=agent, status=status, limit=limit)


@router.get("/jobs/{job_id}", summary="One job: status, exit code, output tail, plugin records",
            response_model=Job, responses=errors(s404=_UNKNOWN_JOB),
            dependencies=[needs(Role.VIEWER)])
async def get_job(job_id: str, state: State) -> dict[str, Any]:
    return await state.db.read(jobs.get_job, job_id)


@router.post("/jobs/{job_id}/cancel", status_code=202,
             summary="Cancel a job (queued: at once; running: the agent stops it)",
             response_model=CancelledJob,
             response_description="the job runs: the agent was asked to stop it",
             responses={200: {"model": CancelledJob,
                              "description": "the job was queued and is now cancelled"},
                        **errors(s404=_UNKNOWN_JOB, s409="the job already ended")},
             dependencies=[needs(Role.OPERATOR)])
async def cancel_job(job_id: str, state: State, response: Response) -> dict[str, Any]:
    result = await state.db.run(jobs.cancel_job, job_id)
    out = dict(result.job)
    out["cancel_sent"] = result.notify_agent and job_runs.send_cancel(state, result.agent_id,
                                                                  job_id)
    if out["status"] == JobStatus.CANCELLED:
        response.status_code = 200
    return out
