"""Jobs: commands run on one agent, with plugin entries around them — the API's side.

A job is created ``queued`` (:func:`create_job` validates everything first: the agent exists,
every ``name@spec`` resolves to an enabled version, every config validates against that
version's schema, every stage is known, the commands and the timeout are sane; see
:mod:`~arcade_server.services.job_requests`). :func:`get_job` and :func:`list_jobs` read
jobs; :func:`cancel_job` ends a queued one or asks the agent to stop a running one.

What happens once the job is on its way — delivery, the agent's reports, losing the agent —
is in :mod:`~arcade_server.services.job_runs`; the request shapes are in
:mod:`~arcade_server.services.job_requests` and what is sent to an agent in
:mod:`~arcade_server.services.dispatch`. Each name has one import path: its defining module.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from arcade_core.states import FINAL_JOB_STATUSES, JobStatus, RecordStatus

from ..db import tables as t
from ..errors import Conflict, Invalid
from ..limits import check_job_text
from ._jobrows import LoadedJob, finish, get_job_row, job_dict, job_view, save
from .agents import get_agent_row, job_policy
from .dispatch import Dispatch, build_dispatches
from .job_requests import (
    MAX_PLUGINS,
    JobRequest,
    check_commands,
    check_env,
    check_timeout,
    resolve_entry,
)

__all__ = [
    "LIST_LIMIT",
    "CancelResult",
    "CreateResult",
    "cancel_job",
    "create_job",
    "get_job",
    "list_jobs",
    "purge",
]

#: Most jobs one list (or one sweep) returns.
LIST_LIMIT = 1000

_JOB_STATUSES = frozenset(JobStatus)


@dataclass(frozen=True)
class CreateResult:
    job: dict[str, Any]
    dispatch: Dispatch


@dataclass(frozen=True)
class CancelResult:
    """``notify_agent``: the agent may hold the job (running, or sent while queued)."""

    job: dict[str, Any]
    agent_id: str
    notify_agent: bool


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


def create_job(
    conn: Connection,
    request: JobRequest,
    *,
    default_timeout: float = 3600.0,
    max_timeout: float = 7 * 86400.0,
    now: float | None = None,
    max_config_bytes: int = 64 * 1024,
) -> CreateResult:
    """Validate ``request`` and store the job ``queued``; return it and what to send.

    A job its agent would refuse (its own ``[jobs]`` policy, as it registered: jobs not
    enabled, or a command outside its allow patterns) is a :class:`Conflict`."""
    now = time.time() if now is None else now
    agent = get_agent_row(conn, request.agent)
    commands = check_commands(request.commands)
    refusal = job_policy(agent).refusal(commands, f"agent {agent.id!r}")
    if refusal is not None:  # the agent would refuse it: say what to change on the agent
        raise Conflict(refusal)
    env = check_env(request.env)
    check_job_text(commands, env)
    timeout = check_timeout(request.timeout, default_timeout, max_timeout)
    if len(request.plugins) > MAX_PLUGINS:
        raise Invalid(f"{len(request.plugins)} plugin entries given; at most {MAX_PLUGINS}")
    resolved = [resolve_entry(conn, i, e, max_config_bytes=max_config_bytes)
                for i, e in enumerate(request.plugins)]
    job_id = _new_id()
    values = {
        "id": job_id, "agent_id": request.agent, "status": JobStatus.QUEUED,
        "commands": commands, "env": env, "timeout": timeout, "exit_code": None, "error": "",
        "output_tail": "", "output_size": 0, "created_at": now, "dispatched_at": None,
        "started_at": None, "finished_at": None, "cancel_requested_at": None,
        "updated_at": now,
    }
    records = [
        {"job_id": job_id, "position": i, "plugin_name": version.plugin_name,
         "version": version.version, "version_id": version.id, "stage": entry.stage,
         "stage_order": entry.order, "config": config, "isolation": isolation,
         "status": RecordStatus.PENDING, "result": None, "error": "", "started_at": None,
         "completed_at": None}
        for i, (entry, (version, config, isolation))
        in enumerate(zip(request.plugins, resolved, strict=True))
    ]
    conn.execute(t.jobs.insert(), values)
    if records:
        conn.execute(t.job_plugins.insert(), records)
    job = LoadedJob(values, records)
    [dispatch] = build_dispatches(conn, [job], now)
    return CreateResult(job_view(conn, job), dispatch)


def get_job(conn: Connection, job_id: str) -> dict[str, Any]:
    """One job with its output tail and per-plugin records."""
    return job_view(conn, get_job_row(conn, job_id))


def list_jobs(
    conn: Connection,
    *,
    agent: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Jobs, newest first (without output and records: get one job for those)."""
    if status is not None and status not in _JOB_STATUSES:
        raise Invalid(f"status {status!r} is not one of {', '.join(JobStatus)}")
    if not 1 <= limit <= LIST_LIMIT:
        raise Invalid(f"limit must be between 1 and {LIST_LIMIT}")
    job = t.jobs.c
    query = select(t.jobs).order_by(job.created_at.desc(), job.id).limit(limit)
    if agent:
        query = query.where(job.agent_id == agent)
    if status:
        query = query.where(job.status == status)
    return [job_dict(j, full=False) for j in conn.execute(query)]


def cancel_job(conn: Connection, job_id: str, *, now: float | None = None) -> CancelResult:
    """Cancel a job: a queued one ends ``cancelled`` at once; a running one is asked to stop
    (the agent kills its commands and reports ``cancelled``); a finished one is a 409."""
    now = time.time() if now is None else now
    job = get_job_row(conn, job_id, lock=True)
    if job.status in FINAL_JOB_STATUSES:
        raise Conflict(f"job {job.id} already ended {job.status}; only queued or running jobs "
                       "can be cancelled")
    if job.status == JobStatus.QUEUED:
        job.cancel_requested_at = now
        finish(job, JobStatus.CANCELLED, "cancelled before it started", now)
        notify = job.dispatched_at is not None
    else:
        if job.cancel_requested_at is None:
            job.cancel_requested_at = now
        job.updated_at = now
        notify = True
    save(conn, [job])
    return CancelResult(job_view(conn, job), job.agent_id, notify)


def purge(conn: Connection, *, before: float, keep_rows: int) -> int:
    """Jobs' retention (the server's sweep, never the API): delete finished jobs (and their
    plugin entries) that finished before ``before``, and all but the newest ``keep_rows``
    finished ones; queued and running jobs are never touched. Return how many went."""
    jobs = t.jobs
    finished = jobs.c.status.in_([str(s) for s in FINAL_JOB_STATUSES])
    old = select(jobs.c.id).where(finished, jobs.c.finished_at < before)
    excess = (select(jobs.c.id).where(finished)
              .order_by(jobs.c.finished_at.desc(), jobs.c.id.desc()).offset(keep_rows))
    ids = list(dict.fromkeys([*conn.scalars(old), *conn.scalars(excess)]))
    gone = 0
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        conn.execute(t.job_plugins.delete().where(t.job_plugins.c.job_id.in_(chunk)))
        gone += conn.execute(jobs.delete().where(jobs.c.id.in_(chunk))).rowcount or 0
    return int(gone)
