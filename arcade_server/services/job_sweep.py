"""The periodic job check: hand queued jobs created on another replica to the agents
connected here, and end ``failed`` the running jobs whose agent is gone or overdue.

Run by the server's background loop every ``job_sweep_interval`` seconds (:func:`sweep`). A
running job fails when its agent has not been seen for ``job_lost_after`` seconds, or has not
reported the end of the job by its timeout plus ``job_timeout_grace``. Two cheap reads
(:func:`sweep_needed`) come first, so an idle server takes no write lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from arcade_core.states import JobStatus

from ..db import tables as t
from ..db.engine import Database
from ._jobrows import finish, load_jobs, save
from .dispatch import Dispatch, build_dispatches
from .job_runs import mark_dispatched
from .jobs import LIST_LIMIT
from .notifier import Notifier

__all__ = ["SweepResult", "fail_lost_jobs", "sweep", "sweep_needed", "undispatched"]

log = logging.getLogger("arcade.server.jobs")


@dataclass(frozen=True)
class SweepResult:
    """``failed``: ``(job_id, agent_id, agent_present)`` of the jobs ended here (a present
    agent should be told to cancel); ``cancels``: ``(job_id, agent_id)`` of running jobs of
    agents connected here that were asked to stop (the request may have reached another
    replica)."""

    failed: tuple[tuple[str, str, bool], ...]
    cancels: tuple[tuple[str, str], ...]


def fail_lost_jobs(
    conn: Connection,
    *,
    last_seen: Mapping[str, float],
    connected: Iterable[str],
    lost_after: float,
    grace: float,
    now: float | None = None,
) -> SweepResult:
    """End ``failed`` the running jobs whose agent is gone or overdue.

    An agent is gone when neither this process (``last_seen``, ``connected``) nor the database
    has seen it for ``lost_after`` seconds; a job is overdue when its agent has not reported
    its end ``grace`` seconds after its timeout.
    """
    now = time.time() if now is None else now
    here = set(connected)
    running_ids = select(t.jobs.c.agent_id).where(t.jobs.c.status == JobStatus.RUNNING)
    agents_seen: dict[str, float | None] = dict(conn.execute(
        select(t.agents.c.id, t.agents.c.last_seen).where(t.agents.c.id.in_(running_ids))
    ).all())
    running = load_jobs(conn, select(t.jobs).where(t.jobs.c.status == JobStatus.RUNNING)
                        .with_for_update())
    out: list[tuple[str, str, bool]] = []
    cancels: list[tuple[str, str]] = []
    for job in running:
        agent = job.agent_id
        db_seen = agents_seen.get(agent)
        if agent in here:
            seen: float | None = now
        else:
            seen = max(filter(None, (db_seen, last_seen.get(agent))), default=None)
        started = job.started_at or job.dispatched_at or job.created_at
        if seen is None or now - seen > lost_after:
            ago = f"for {now - seen:.0f}s" if seen is not None else "since the job started"
            finish(job, JobStatus.FAILED, f"agent {agent} has not been seen {ago} (more than "
                   f"job_lost_after, {lost_after:g}s) while the job ran; its outcome is "
                   "unknown", now)
            out.append((job.id, agent, False))
        elif job.timeout and now > started + job.timeout + grace:
            finish(job, JobStatus.FAILED, f"agent {agent} did not report the end of the job "
                   f"within its timeout ({job.timeout:g}s) plus {grace:g}s", now)
            out.append((job.id, agent, True))
        elif job.cancel_requested_at is not None and agent in here:
            cancels.append((job.id, agent))
    save(conn, running)
    return SweepResult(tuple(out), tuple(cancels))


def undispatched(conn: Connection, agent_ids: Iterable[str], *, now: float | None = None
                 ) -> list[Dispatch]:
    """Queued jobs never handed to a stream whose agent is one of ``agent_ids`` (connected
    here: the job was created on another replica). :func:`~.job_runs.deliver` marks the ones
    it sends."""
    now = time.time() if now is None else now
    wanted = set(agent_ids)
    if not wanted:
        return []
    job = t.jobs.c
    jobs = [j for j in load_jobs(
        conn,
        select(t.jobs).where(job.status == JobStatus.QUEUED, job.dispatched_at.is_(None))
        .order_by(job.created_at, job.id).limit(LIST_LIMIT)
        .with_for_update()
    ) if j.agent_id in wanted]
    dispatches = build_dispatches(conn, jobs, now)
    save(conn, jobs)
    return dispatches


def sweep_needed(conn: Connection) -> tuple[bool, bool]:
    """``(undispatched queued jobs exist, running jobs exist)``: two cheap reads, so the
    periodic sweep takes no write lock while there is nothing to do."""
    job = t.jobs.c
    undispatched_exist = conn.scalar(
        select(job.id).where(job.status == JobStatus.QUEUED, job.dispatched_at.is_(None))
        .limit(1)
    ) is not None
    running_exist = conn.scalar(
        select(job.id).where(job.status == JobStatus.RUNNING).limit(1)
    ) is not None
    return undispatched_exist, running_exist


async def sweep(
    db: Database,
    notifier: Notifier,
    *,
    connected: Sequence[str],
    last_seen: Mapping[str, float],
    lost_after: float,
    grace: float,
) -> int:
    """The periodic job check: send queued jobs created on other replicas to the agents
    ``connected`` here, and fail running jobs whose agent is gone or overdue (see
    :func:`fail_lost_jobs`). Returns how many jobs changed."""
    waiting, running = await db.read(sweep_needed)
    sent: list[str] = []
    if waiting and connected:
        sent = await notifier.jobs_dispatched(await db.run(undispatched, connected))
        if sent:
            await db.run(mark_dispatched, sent)
    if not running:
        return len(sent)
    failed = await db.run(fail_lost_jobs, last_seen=last_seen, connected=connected,
                          lost_after=lost_after, grace=grace)
    for job_id, agent_id, present in failed.failed:
        log.warning("job %s on agent %s failed: the agent is gone or overdue", job_id, agent_id)
        if present:
            notifier.job_cancelled(agent_id, job_id)
    for job_id, agent_id in failed.cancels:
        notifier.job_cancelled(agent_id, job_id)
    return len(sent) + len(failed.failed)
