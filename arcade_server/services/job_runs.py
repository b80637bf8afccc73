"""A job's run on its agent: handing it over, the agent's reports, and losing the agent.

A queued job is handed to its agent's stream when it is created (:func:`deliver`) or when
the agent next connects (:func:`agent_connected`), so a job for an offline agent simply
waits. The agent reports ``running`` and then the final status with per-entry records
(:class:`JobEventData`, stored by :func:`record_event`). A final status never changes again:
late reports for a job that already ended are ignored (and a ``running`` one gets a cancel).

Jobs that lose their agent end ``failed`` with the reason: at once when the agent reconnects
without the job (it restarted mid-job; :func:`agent_connected`), or from the periodic sweep
(:mod:`.job_sweep`).

The sync functions take a connection (run by :meth:`Database.run`, one transaction each);
the async ones (:func:`deliver`, :func:`send_cancel`) run them and announce
what agents must hear through the :class:`~arcade_server.services.notifier.Notifier`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from arcade_core.states import FINAL_JOB_STATUSES, JobStatus, RecordStatus

from ..db import tables as t
from ..errors import Invalid
from ._jobrows import (
    ERROR_LIMIT,
    LoadedJob,
    finish,
    get_job_row,
    load_jobs,
    save,
)
from ._text import clip, clip_tail
from .dispatch import Dispatch, build_dispatches
from .notifier import Wiring

__all__ = [
    "OUTPUT_LIMIT",
    "REPORTED_STATUSES",
    "ConnectResult",
    "EventOutcome",
    "JobEventData",
    "RecordData",
    "agent_connected",
    "deliver",
    "job_wheel_allowed",
    "mark_dispatched",
    "record_event",
    "send_cancel",
    "with_open_jobs",
]

log = logging.getLogger("arcade.server.jobs")

#: Characters of output kept per job (the end of it).
OUTPUT_LIMIT = 64 * 1024
#: What the agent may report as a job's status.
REPORTED_STATUSES = frozenset({JobStatus.RUNNING}) | FINAL_JOB_STATUSES
#: A job the agent may hold (and so may download the wheels of).
_OPEN = (JobStatus.QUEUED, JobStatus.RUNNING)
_RECORD_STATUSES = frozenset(RecordStatus)


@dataclass(frozen=True)
class ConnectResult:
    """What to send an agent that just registered, and the jobs that were failed because
    the agent came back without them."""

    dispatches: tuple[Dispatch, ...]
    cancels: tuple[str, ...]
    failed: tuple[str, ...]


@dataclass(frozen=True)
class RecordData:
    """One job plugin record as the agent reports it (``status``: a
    :class:`~arcade_core.states.RecordStatus` word)."""

    index: int
    status: str
    result_json: str = ""
    error: str = ""
    started_at: float = 0.0
    completed_at: float = 0.0


@dataclass(frozen=True)
class JobEventData:
    """A job's status as the agent reports it (all records, every time)."""

    job_id: str
    status: str
    exit_code: int | None = None
    output_tail: str = ""
    output_size: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    error: str = ""
    plugins: tuple[RecordData, ...] = ()


@dataclass(frozen=True)
class EventOutcome:
    """``applied``: the event changed the job; ``cancel``: the agent runs a job the server
    already considers over (send it a cancel)."""

    applied: bool
    cancel: bool = False


# ---------------------------------------------------------------- transactions


def mark_dispatched(conn: Connection, job_ids: Sequence[str], *, now: float | None = None
                    ) -> None:
    """Record that these jobs were handed to their agent's stream."""
    if not job_ids:
        return
    now = time.time() if now is None else now
    conn.execute(update(t.jobs).where(t.jobs.c.id.in_(list(job_ids))).values(dispatched_at=now))


def agent_connected(
    conn: Connection, agent_id: str, known: Iterable[str], *, now: float | None = None
) -> ConnectResult:
    """An agent registered, saying which jobs it knows (running, waiting, just finished).

    Its running jobs that it does not know end ``failed`` (it restarted mid-job); cancels go
    out for jobs it knows that were asked to stop or already ended here; every queued job is
    (re)sent, oldest first, and marked dispatched.
    """
    now = time.time() if now is None else now
    known_ids = set(known)
    job = t.jobs.c
    open_jobs = load_jobs(
        conn,
        select(t.jobs).where(job.agent_id == agent_id, job.status.in_(_OPEN))
        .order_by(job.created_at, job.id)
        .with_for_update()
    )
    failed: list[str] = []
    cancels: list[str] = []
    queued: list[LoadedJob] = []
    for loaded in open_jobs:
        if loaded.status == JobStatus.QUEUED:
            queued.append(loaded)
        elif loaded.id not in known_ids:
            finish(loaded, JobStatus.FAILED, f"agent {agent_id} connected again without this "
                   "job: it was restarted (or lost the job) while the job ran, so the job's "
                   "outcome is unknown", now)
            failed.append(loaded.id)
        elif loaded.cancel_requested_at is not None:
            cancels.append(loaded.id)
    if known_ids:
        cancels.extend(conn.scalars(select(job.id).where(
            job.agent_id == agent_id, job.id.in_(sorted(known_ids)),
            job.status.in_(sorted(FINAL_JOB_STATUSES)),
        )))
    dispatches = build_dispatches(conn, queued, now)
    sent = {d.job_id for d in dispatches}
    for loaded in queued:
        if loaded.id in sent:
            loaded.dispatched_at = now
    save(conn, open_jobs)
    return ConnectResult(tuple(dispatches), tuple(cancels), tuple(failed))


def _parse_result(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def record_event(
    conn: Connection, agent_id: str, event: JobEventData, *, now: float | None = None
) -> EventOutcome:
    """Store what the agent reports about one of its jobs (ignored once the job ended)."""
    now = time.time() if now is None else now
    if event.status not in REPORTED_STATUSES:
        raise Invalid(f"job {event.job_id}: unknown status {event.status!r}; expected one of "
                      f"{', '.join(sorted(REPORTED_STATUSES))}")
    job = get_job_row(conn, event.job_id, lock=True)
    if job.agent_id != agent_id:
        raise Invalid(f"job {job.id} belongs to agent {job.agent_id}, not {agent_id}")
    if job.status in FINAL_JOB_STATUSES:
        return EventOutcome(applied=False, cancel=event.status == JobStatus.RUNNING)
    job.status = event.status
    if job.started_at is None:
        job.started_at = event.started_at or now
    if event.status in FINAL_JOB_STATUSES:
        job.finished_at = event.finished_at or now
    if event.exit_code is not None:
        job.exit_code = event.exit_code
    job.output_tail = clip_tail(event.output_tail, OUTPUT_LIMIT)
    job.output_size = max(0, event.output_size)
    job.error = clip(event.error, ERROR_LIMIT)
    job.updated_at = now
    records = {r.position: r for r in job.plugins}
    for data in event.plugins:
        row = records.get(data.index)
        if row is None or data.status not in _RECORD_STATUSES:
            log.warning("job %s: ignoring a record for entry %d with status %r", job.id,
                        data.index, data.status)
            continue
        row.status = data.status
        row.result = _parse_result(data.result_json)
        row.error = clip(data.error, ERROR_LIMIT)
        row.started_at = data.started_at or None
        row.completed_at = data.completed_at or None
    if event.status in FINAL_JOB_STATUSES:
        for row in job.plugins:  # an entry the agent never got to
            if row.status == RecordStatus.PENDING:
                row.status = RecordStatus.SKIPPED
    save(conn, [job])
    return EventOutcome(applied=True)


def job_wheel_allowed(conn: Connection, agent_id: str, sha256: str) -> bool:
    """True when a wheel with ``sha256`` belongs to a plugin of a queued or running job of
    the agent (DownloadWheel's permission for job plugins)."""
    w, jp, job = t.plugin_version_wheels.c, t.job_plugins.c, t.jobs.c
    found = conn.scalar(
        select(w.sha256)
        .join(t.job_plugins, jp.version_id == w.version_id)
        .join(t.jobs, job.id == jp.job_id)
        .where(job.agent_id == agent_id, job.status.in_(_OPEN), w.sha256 == sha256)
        .limit(1)
    )
    return found is not None


def with_open_jobs(conn: Connection, agent_ids: Sequence[str]) -> list[bool]:
    """For each agent, whether it has a queued or running job: one query for all the agents
    connecting at once, so the (write) :func:`agent_connected` runs only for those that do
    (or that report jobs of their own) — not once per agent of a reconnecting fleet."""
    ids = sorted(set(agent_ids))
    job = t.jobs.c
    found = set(conn.scalars(
        select(job.agent_id).where(job.agent_id.in_(ids), job.status.in_(_OPEN)).distinct()
    )) if ids else set()
    return [agent_id in found for agent_id in agent_ids]


# ---------------------------------------------------------------- announcing (event loop)


async def deliver(wiring: Wiring, dispatches: Iterable[Dispatch]) -> list[str]:
    """Hand each job to its agent through the notifier; mark the ones a stream here took
    dispatched and return their ids."""
    sent = await wiring.notifier.jobs_dispatched(list(dispatches))
    if sent:
        await wiring.db.run(mark_dispatched, sent)
    return sent


def send_cancel(wiring: Wiring, agent_id: str, job_id: str) -> bool:
    """Ask the agent to cancel ``job_id``; True if a stream here took the request."""
    return wiring.notifier.job_cancelled(agent_id, job_id)
