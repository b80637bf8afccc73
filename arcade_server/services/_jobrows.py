"""Job rows read for an update, written back column by column, and shown as the API shows them.

:func:`load_jobs` reads ``jobs`` rows and their ``job_plugins`` records in two queries;
the rules in :mod:`~arcade_server.services.jobs` and :mod:`~arcade_server.services.job_runs`
change attributes of the :class:`LoadedJob` and :func:`save` writes back only what changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select, select, update

from arcade_core.states import JobStatus, RecordStatus

from ..db import tables as t
from ..errors import Hint, NotFound
from . import secrets
from ._text import clip

__all__ = [
    "ERROR_LIMIT",
    "LoadedJob",
    "LoadedRow",
    "finish",
    "get_job_row",
    "job_dict",
    "job_view",
    "load_jobs",
    "save",
]

#: Characters of error text kept per job and per record.
ERROR_LIMIT = 8000


class LoadedRow:
    """A row read for an update: its columns as attributes, which may be set; :attr:`changed`
    holds the columns set to a new value, which :func:`save` writes back."""

    changed: dict[str, Any]

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "changed", {})

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        values = self.__dict__["_values"]
        if name not in values:
            raise AttributeError(f"no column {name!r}")
        if values[name] != value:
            values[name] = value
            self.__dict__["changed"][name] = value


class LoadedJob(LoadedRow):
    """A ``jobs`` row and its ``job_plugins`` records (in order), read for an update."""

    plugins: list[LoadedRow]

    def __init__(self, values: Mapping[str, Any], plugins: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(values)
        self.__dict__["plugins"] = [LoadedRow(p) for p in plugins]


def load_jobs(conn: Connection, query: Select[Any]) -> list[LoadedJob]:
    """Run ``query`` (a select of ``jobs`` rows) and read the jobs' records in one more."""
    rows = conn.execute(query).all()
    records: dict[str, list[Mapping[str, Any]]] = {row.id: [] for row in rows}
    if records:
        jp = t.job_plugins.c
        for record in conn.execute(
            select(t.job_plugins).where(jp.job_id.in_(list(records)))
            .order_by(jp.job_id, jp.position)
        ):
            records[record.job_id].append(dict(record._mapping))
    return [LoadedJob(dict(row._mapping), records[row.id]) for row in rows]


def save(conn: Connection, jobs: Iterable[LoadedJob]) -> None:
    """Write back the columns changed on ``jobs`` and their records."""
    jp = t.job_plugins.c
    for job in jobs:
        if job.changed:
            conn.execute(update(t.jobs).where(t.jobs.c.id == job.id).values(**job.changed))
            job.changed.clear()
        for record in job.plugins:
            if record.changed:
                conn.execute(
                    update(t.job_plugins)
                    .where(jp.job_id == job.id, jp.position == record.position)
                    .values(**record.changed)
                )
                record.changed.clear()


def get_job_row(conn: Connection, job_id: str, *, lock: bool = False) -> LoadedJob:
    """The job and its records (locked for update when ``lock``); 404 if there is none."""
    query = select(t.jobs).where(t.jobs.c.id == job_id)
    found = load_jobs(conn, query.with_for_update() if lock else query) if job_id else []
    if not found:
        hint = Hint("GET /api/v1/jobs", "arcade jobs")
        raise NotFound(f"no job with id {job_id!r}; list jobs with {hint}", hints=[hint])
    return found[0]


def finish(job: LoadedJob, status: JobStatus, error: str, now: float) -> None:
    """End ``job`` on the server's authority: open records are closed as well."""
    job.status = status
    job.error = clip(error, ERROR_LIMIT)
    job.finished_at = now
    job.updated_at = now
    for record in job.plugins:
        if record.status == RecordStatus.PENDING:
            record.status = RecordStatus.SKIPPED
        elif record.status == RecordStatus.RUNNING:
            record.status = RecordStatus.FAILED
            record.error = clip(f"interrupted: {error}", ERROR_LIMIT)
            record.completed_at = now


def _record_dict(row: Any, schemas: Mapping[int, Any]) -> dict[str, Any]:
    config = secrets.redact(row.config, schemas.get(row.version_id),
                            known=row.version_id in schemas)
    return {
        "index": row.position, "plugin": row.plugin_name, "version": row.version,
        "stage": row.stage, "order": row.stage_order, "config": config,
        "isolation": row.isolation, "status": row.status, "result": row.result,
        "error": row.error, "started_at": row.started_at, "completed_at": row.completed_at,
    }


def job_dict(job: Any, *, full: bool = True, schemas: Mapping[int, Any] | None = None
             ) -> dict[str, Any]:
    """A job (a ``jobs`` row, with its records when ``full``) as the API shows it: env values
    and the secret fields of each record's config (``schemas``: config schema by version id;
    a record whose version is not in it has every config value hidden) redacted."""
    duration = (job.finished_at - job.started_at
                if job.finished_at is not None and job.started_at is not None else None)
    data: dict[str, Any] = {
        "id": job.id, "agent": job.agent_id, "status": job.status,
        "commands": list(job.commands), "timeout": job.timeout, "exit_code": job.exit_code,
        "error": job.error, "output_size": job.output_size, "created_at": job.created_at,
        "dispatched_at": job.dispatched_at, "started_at": job.started_at,
        "finished_at": job.finished_at, "duration": duration,
        "cancel_requested_at": job.cancel_requested_at,
    }
    if full:
        data["env"] = secrets.redact_env(job.env)
        data["output_tail"] = job.output_tail
        data["plugins"] = [_record_dict(p, schemas or {}) for p in job.plugins]
    return data


def job_view(conn: Connection, job: LoadedJob) -> dict[str, Any]:
    """:func:`job_dict` of a full job, with its records' config schemas read for redaction."""
    ids = {p.version_id for p in job.plugins if p.version_id is not None}
    schemas: dict[int, Any] = {}
    if ids:
        v = t.plugin_versions.c
        schemas = {
            version_id: (manifest or {}).get("config_schema")
            for version_id, manifest in conn.execute(
                select(v.id, v.manifest).where(v.id.in_(list(ids))))
        }
    return job_dict(job, schemas=schemas)
