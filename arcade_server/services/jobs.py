"""Jobs: commands run on one agent, with plugin entries around them.

A job is created ``queued`` (:func:`create_job` validates everything first: the agent exists,
every ``name@spec`` resolves to an enabled version, every config validates against that
version's schema, every stage is known, the commands and the timeout are sane). It is handed
to the agent's open stream at once, or when the agent next connects (:func:`agent_connected`),
so a job for an offline agent simply waits. The agent reports ``running`` and then the final
status (``succeeded``, ``failed``, ``cancelled``, ``timed_out``) with per-entry records as
:class:`JobEventData`, stored by :func:`record_event`. A final status never changes again:
late reports for a job that already ended are ignored.

Jobs that lose their agent end ``failed`` with the reason: at once when the agent reconnects
without the job (it restarted mid-job; :func:`agent_connected`), or from the periodic
:func:`sweep` when the agent has not been seen for ``job_lost_after`` seconds, or has not
reported the end of the job by its timeout plus ``job_timeout_grace``.

The sync functions take a connection (run by :meth:`Database.run`, one transaction each); the
async ones at the end deliver jobs and cancels to the streams of the agents connected to this
process (:func:`deliver`, :func:`send_cancel`, :func:`on_connect`, :func:`sweep`).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, select, update

from arcade_core import ArcadeError, InvalidConfig
from arcade_core.rpc.v1 import pb
from arcade_core.rpc.v1.convert import to_pb
from arcade_core.states import Isolation, JobStatus, RecordStatus, Stage

from ..db import tables as t
from ..db.tables import AnyRow
from ..errors import Conflict, Invalid, NotFound, ServiceError
from ..rpc.convert import wire_word
from . import registry
from .agents import get_agent_row

if TYPE_CHECKING:
    from ..state import ServerState

__all__ = [
    "FINAL_STATUSES",
    "JOB_STATUSES",
    "RECORD_STATUSES",
    "STAGES",
    "CancelResult",
    "ConnectResult",
    "CreateResult",
    "Dispatch",
    "DispatchEntry",
    "EventOutcome",
    "JobEventData",
    "JobRequest",
    "PluginEntryRequest",
    "RecordData",
    "SweepResult",
    "agent_connected",
    "cancel_job",
    "create_job",
    "deliver",
    "event_from_pb",
    "fail_lost_jobs",
    "get_job",
    "handle_event",
    "job_wheel_allowed",
    "list_jobs",
    "mark_dispatched",
    "on_connect",
    "record_event",
    "send_cancel",
    "sweep",
    "sweep_needed",
    "undispatched",
    "with_open_jobs",
]

log = logging.getLogger("arcade.server.jobs")

STAGES = ("before", "after", "on_success", "on_failure", "notify")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "timed_out")
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
RECORD_STATUSES = frozenset({"pending", "running", "succeeded", "failed", "skipped"})
#: What the agent may report as a job's status.
REPORTED_STATUSES = frozenset({"running"}) | FINAL_STATUSES

MAX_COMMANDS = 100
MAX_COMMAND_CHARS = 64 * 1024
MAX_ENV = 256
MAX_ENV_VALUE = 32 * 1024
MAX_PLUGINS = 32
MAX_ORDER = 1_000_000
#: Characters of output kept per job (the end of it), and of error text.
OUTPUT_LIMIT = 64 * 1024
ERROR_LIMIT = 8000
LIST_LIMIT = 1000

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class PluginEntryRequest:
    """One plugin entry of a job request: ``plugin`` is ``name``, ``name@1.0`` or a range."""

    plugin: str
    stage: str
    order: int = 0
    config: Mapping[str, Any] | None = None
    isolation: str | None = None


@dataclass(frozen=True)
class JobRequest:
    """What ``POST /api/v1/jobs`` asks for (``timeout`` ``None``: the server's default)."""

    agent: str
    commands: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    plugins: Sequence[PluginEntryRequest] = ()


@dataclass(frozen=True)
class DispatchEntry:
    """One job plugin entry as the agent receives it (wheels: plugin first, then deps)."""

    index: int
    name: str
    version: str
    stage: str
    order: int
    config: Mapping[str, Any]
    isolation: str
    wheels: tuple[tuple[str, str, int], ...]


@dataclass(frozen=True)
class Dispatch:
    """A job ready to be sent to its agent."""

    job_id: str
    agent_id: str
    commands: tuple[str, ...]
    env: Mapping[str, str]
    timeout: float
    plugins: tuple[DispatchEntry, ...]

    def to_pb(self) -> pb.ServerMessage:
        return pb.ServerMessage(job=pb.Job(
            job_id=self.job_id,
            commands=list(self.commands),
            env=dict(self.env),
            timeout=self.timeout,
            plugins=[
                pb.JobPlugin(
                    index=e.index, name=e.name, version=e.version,
                    stage=to_pb(Stage(e.stage)), order=e.order,
                    isolation=to_pb(Isolation(e.isolation) if e.isolation else None),
                    config_json=json.dumps(e.config, sort_keys=True, separators=(",", ":")),
                    wheels=[pb.WheelRef(filename=f, sha256=s, size=n) for f, s, n in e.wheels],
                )
                for e in self.plugins
            ],
        ))


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


@dataclass(frozen=True)
class ConnectResult:
    """What to send an agent that just registered, and the jobs that were failed because
    the agent came back without them."""

    dispatches: tuple[Dispatch, ...]
    cancels: tuple[str, ...]
    failed: tuple[str, ...]


@dataclass(frozen=True)
class RecordData:
    """One job plugin record as the agent reports it."""

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


# ---------------------------------------------------------------- helpers


def _clip_tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[-limit:]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


def _check_commands(commands: Any) -> list[str]:
    if isinstance(commands, str) or not isinstance(commands, Sequence):
        raise Invalid('commands must be a list of shell commands, e.g. ["make test"]')
    if not commands:
        raise Invalid('commands is empty: give at least one shell command, e.g. ["make test"]')
    if len(commands) > MAX_COMMANDS:
        raise Invalid(f"{len(commands)} commands given; at most {MAX_COMMANDS} per job")
    out: list[str] = []
    for i, command in enumerate(commands):
        if not isinstance(command, str) or not command.strip():
            raise Invalid(f"commands[{i}] is empty: each command must be a non-empty string")
        if "\0" in command:
            raise Invalid(f"commands[{i}] contains a NUL character")
        if len(command) > MAX_COMMAND_CHARS:
            raise Invalid(f"commands[{i}] is longer than {MAX_COMMAND_CHARS} characters; "
                          "put long scripts in a file and run that")
        out.append(command)
    return out


def _check_env(env: Any) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise Invalid('env must be an object of variable names to strings, e.g. {"CI": "1"}')
    if len(env) > MAX_ENV:
        raise Invalid(f"env has {len(env)} variables; at most {MAX_ENV} per job")
    out: dict[str, str] = {}
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise Invalid(f"env: {key!r} is not a variable name (letters, digits and _, "
                          "not starting with a digit)")
        if not isinstance(value, str):
            raise Invalid(f"env: the value of {key} must be a string")
        if "\0" in value or len(value) > MAX_ENV_VALUE:
            raise Invalid(f"env: the value of {key} must be at most {MAX_ENV_VALUE} characters "
                          "without NUL")
        out[key] = value
    return out


def _check_timeout(timeout: Any, default: float, maximum: float) -> float:
    if timeout is None:
        return default
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
            or not math.isfinite(timeout) or not 0 < timeout <= maximum:
        raise Invalid(f"timeout must be a number of seconds above 0 and at most {maximum:g}, "
                      f"not {timeout!r}")
    return float(timeout)


def _resolve_entry(conn: Connection, i: int, entry: PluginEntryRequest
                   ) -> tuple[AnyRow, dict[str, Any], str]:
    where = f"plugins[{i}] ({entry.plugin!r})"
    if entry.stage not in STAGES:
        raise Invalid(f"{where}: stage {entry.stage!r} is not one of {', '.join(STAGES)}")
    if isinstance(entry.order, bool) or not isinstance(entry.order, int) \
            or abs(entry.order) > MAX_ORDER:
        raise Invalid(f"{where}: order must be a whole number between -{MAX_ORDER} and "
                      f"{MAX_ORDER}")
    try:
        version = registry.resolve(conn, entry.plugin)
    except ServiceError as exc:  # unknown plugin, bad spec, no match, disabled: fix the spec
        raise Invalid(f"{where}: {exc.message}") from None
    if entry.config is not None and not isinstance(entry.config, Mapping):
        raise Invalid(f"{where}: config must be a JSON object")
    try:
        manifest = registry.manifest_of(version)
        config = manifest.validate_config(entry.config)
    except InvalidConfig as exc:
        raise Invalid(
            f"{where}: invalid config for {version.plugin_name}@{version.version}: {exc}",
            {"schema": (version.manifest or {}).get("config_schema")},
        ) from None
    except ArcadeError as exc:
        raise Invalid(f"{where}: cannot validate config for {version.plugin_name}: {exc}") \
            from None
    isolation = entry.isolation or manifest.isolation or "inline"
    if isolation not in tuple(Isolation):
        raise Invalid(f"{where}: isolation {entry.isolation!r} is not supported; use one of "
                      f"{', '.join(Isolation)}")
    return version, config, isolation


class _Loaded:
    """A row read for an update: its columns as attributes, which may be set; :attr:`changed`
    holds the columns set to a new value, which :func:`_save` writes back."""

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


class _LoadedJob(_Loaded):
    """A ``jobs`` row and its ``job_plugins`` records (in order), read for an update."""

    plugins: list[_Loaded]

    def __init__(self, values: Mapping[str, Any], plugins: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(values)
        self.__dict__["plugins"] = [_Loaded(p) for p in plugins]


def _load_jobs(conn: Connection, query: Select[Any]) -> list[_LoadedJob]:
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
    return [_LoadedJob(dict(row._mapping), records[row.id]) for row in rows]


def _save(conn: Connection, jobs: Iterable[_LoadedJob]) -> None:
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


def _record_dict(row: Any) -> dict[str, Any]:
    return {
        "index": row.position, "plugin": row.plugin_name, "version": row.version,
        "stage": row.stage, "order": row.stage_order, "config": row.config,
        "isolation": row.isolation, "status": row.status, "result": row.result,
        "error": row.error, "started_at": row.started_at, "completed_at": row.completed_at,
    }


def _job_dict(job: Any, *, full: bool = True) -> dict[str, Any]:
    """A job (a ``jobs`` row, with its records when ``full``) as the API shows it."""
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
        data["env"] = dict(job.env)
        data["output_tail"] = job.output_tail
        data["plugins"] = [_record_dict(p) for p in job.plugins]
    return data


def _get_job_row(conn: Connection, job_id: str, *, lock: bool = False) -> _LoadedJob:
    query = select(t.jobs).where(t.jobs.c.id == job_id)
    found = _load_jobs(conn, query.with_for_update() if lock else query) if job_id else []
    if not found:
        raise NotFound(f"no job with id {job_id!r}; list jobs with GET /api/v1/jobs")
    return found[0]


def _finish(job: _LoadedJob, status: str, error: str, now: float) -> None:
    """End ``job`` on the server's authority: open records are closed as well."""
    job.status = status
    job.error = _clip(error, ERROR_LIMIT)
    job.finished_at = now
    job.updated_at = now
    for record in job.plugins:
        if record.status == "pending":
            record.status = "skipped"
        elif record.status == "running":
            record.status = "failed"
            record.error = _clip(f"interrupted: {error}", ERROR_LIMIT)
            record.completed_at = now


def _dispatches(conn: Connection, jobs: Sequence[_LoadedJob], now: float) -> list[Dispatch]:
    """Build what to send for ``jobs`` (queued); a job whose plugin version was deleted since
    it was created ends ``failed`` instead (the caller saves that)."""
    version_ids = {p.version_id for j in jobs for p in j.plugins if p.version_id is not None}
    wheels: dict[int, list[tuple[str, str, int]]] = {}
    if version_ids:
        w = t.plugin_version_wheels.c
        for wheel in conn.execute(
            select(w.version_id, w.filename, w.sha256, w.size)
            .where(w.version_id.in_(version_ids)).order_by(w.version_id, w.position)
        ):
            wheels.setdefault(wheel.version_id, []).append(
                (wheel.filename, wheel.sha256, wheel.size))
    out: list[Dispatch] = []
    for job in jobs:
        gone = [p for p in job.plugins if p.version_id is None or p.version_id not in wheels]
        if gone:
            names = ", ".join(f"{p.plugin_name}@{p.version}" for p in gone)
            _finish(job, "failed", f"{names} was deleted from the registry after the job was "
                    "created; create the job again", now)
            continue
        out.append(Dispatch(
            job_id=job.id, agent_id=job.agent_id, commands=tuple(job.commands),
            env=dict(job.env), timeout=job.timeout,
            plugins=tuple(
                DispatchEntry(p.position, p.plugin_name, p.version, p.stage, p.stage_order,
                              dict(p.config), p.isolation, tuple(wheels[p.version_id or 0]))
                for p in job.plugins
            ),
        ))
    return out


# ---------------------------------------------------------------- API operations


def create_job(
    conn: Connection,
    request: JobRequest,
    *,
    default_timeout: float = 3600.0,
    max_timeout: float = 7 * 86400.0,
    now: float | None = None,
) -> CreateResult:
    """Validate ``request`` and store the job ``queued``; return it and what to send."""
    now = time.time() if now is None else now
    get_agent_row(conn, request.agent)
    commands = _check_commands(request.commands)
    env = _check_env(request.env)
    timeout = _check_timeout(request.timeout, default_timeout, max_timeout)
    if len(request.plugins) > MAX_PLUGINS:
        raise Invalid(f"{len(request.plugins)} plugin entries given; at most {MAX_PLUGINS}")
    resolved = [_resolve_entry(conn, i, e) for i, e in enumerate(request.plugins)]
    job_id = _new_id()
    values = {
        "id": job_id, "agent_id": request.agent, "status": "queued", "commands": commands,
        "env": env, "timeout": timeout, "exit_code": None, "error": "", "output_tail": "",
        "output_size": 0, "created_at": now, "dispatched_at": None, "started_at": None,
        "finished_at": None, "cancel_requested_at": None, "updated_at": now,
    }
    records = [
        {"job_id": job_id, "position": i, "plugin_name": version.plugin_name,
         "version": version.version, "version_id": version.id, "stage": entry.stage,
         "stage_order": entry.order, "config": config, "isolation": isolation,
         "status": "pending", "result": None, "error": "", "started_at": None,
         "completed_at": None}
        for i, (entry, (version, config, isolation))
        in enumerate(zip(request.plugins, resolved, strict=True))
    ]
    conn.execute(t.jobs.insert(), values)
    if records:
        conn.execute(t.job_plugins.insert(), records)
    job = _LoadedJob(values, records)
    [dispatch] = _dispatches(conn, [job], now)
    return CreateResult(_job_dict(job), dispatch)


def get_job(conn: Connection, job_id: str) -> dict[str, Any]:
    """One job with its output tail and per-plugin records."""
    return _job_dict(_get_job_row(conn, job_id))


def list_jobs(
    conn: Connection,
    *,
    agent: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Jobs, newest first (without output and records: get one job for those)."""
    if status is not None and status not in JOB_STATUSES:
        raise Invalid(f"status {status!r} is not one of {', '.join(JOB_STATUSES)}")
    if not 1 <= limit <= LIST_LIMIT:
        raise Invalid(f"limit must be between 1 and {LIST_LIMIT}")
    job = t.jobs.c
    query = select(t.jobs).order_by(job.created_at.desc(), job.id).limit(limit)
    if agent:
        query = query.where(job.agent_id == agent)
    if status:
        query = query.where(job.status == status)
    return [_job_dict(j, full=False) for j in conn.execute(query)]


def cancel_job(conn: Connection, job_id: str, *, now: float | None = None) -> CancelResult:
    """Cancel a job: a queued one ends ``cancelled`` at once; a running one is asked to stop
    (the agent kills its commands and reports ``cancelled``); a finished one is a 409."""
    now = time.time() if now is None else now
    job = _get_job_row(conn, job_id, lock=True)
    if job.status in FINAL_STATUSES:
        raise Conflict(f"job {job.id} already ended {job.status}; only queued or running jobs "
                       "can be cancelled")
    if job.status == "queued":
        job.cancel_requested_at = now
        _finish(job, "cancelled", "cancelled before it started", now)
        notify = job.dispatched_at is not None
    else:
        if job.cancel_requested_at is None:
            job.cancel_requested_at = now
        job.updated_at = now
        notify = True
    _save(conn, [job])
    return CancelResult(_job_dict(job), job.agent_id, notify)


# ---------------------------------------------------------------- agent side


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
    open_jobs = _load_jobs(
        conn,
        select(t.jobs).where(job.agent_id == agent_id, job.status.in_(("queued", "running")))
        .order_by(job.created_at, job.id)
        .with_for_update()
    )
    failed: list[str] = []
    cancels: list[str] = []
    queued: list[_LoadedJob] = []
    for loaded in open_jobs:
        if loaded.status == "queued":
            queued.append(loaded)
        elif loaded.id not in known_ids:
            _finish(loaded, "failed", f"agent {agent_id} connected again without this job: it "
                    "was restarted (or lost the job) while the job ran, so the job's outcome "
                    "is unknown", now)
            failed.append(loaded.id)
        elif loaded.cancel_requested_at is not None:
            cancels.append(loaded.id)
    if known_ids:
        cancels.extend(conn.scalars(select(job.id).where(
            job.agent_id == agent_id, job.id.in_(sorted(known_ids)),
            job.status.in_(sorted(FINAL_STATUSES)),
        )))
    dispatches = _dispatches(conn, queued, now)
    sent = {d.job_id for d in dispatches}
    for loaded in queued:
        if loaded.id in sent:
            loaded.dispatched_at = now
    _save(conn, open_jobs)
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
    job = _get_job_row(conn, event.job_id, lock=True)
    if job.agent_id != agent_id:
        raise Invalid(f"job {job.id} belongs to agent {job.agent_id}, not {agent_id}")
    if job.status in FINAL_STATUSES:
        return EventOutcome(applied=False, cancel=event.status == "running")
    job.status = event.status
    if job.started_at is None:
        job.started_at = event.started_at or now
    if event.status in FINAL_STATUSES:
        job.finished_at = event.finished_at or now
    if event.exit_code is not None:
        job.exit_code = event.exit_code
    job.output_tail = _clip_tail(event.output_tail, OUTPUT_LIMIT)
    job.output_size = max(0, event.output_size)
    job.error = _clip(event.error, ERROR_LIMIT)
    job.updated_at = now
    records = {r.position: r for r in job.plugins}
    for data in event.plugins:
        row = records.get(data.index)
        if row is None or data.status not in RECORD_STATUSES:
            log.warning("job %s: ignoring a record for entry %d with status %r", job.id,
                        data.index, data.status)
            continue
        row.status = data.status
        row.result = _parse_result(data.result_json)
        row.error = _clip(data.error, ERROR_LIMIT)
        row.started_at = data.started_at or None
        row.completed_at = data.completed_at or None
    if event.status in FINAL_STATUSES:
        for row in job.plugins:  # an entry the agent never got to
            if row.status == "pending":
                row.status = "skipped"
    _save(conn, [job])
    return EventOutcome(applied=True)


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
    agents_seen: dict[str, float | None] = dict(conn.execute(
        select(t.agents.c.id, t.agents.c.last_seen)
        .where(t.agents.c.id.in_(select(t.jobs.c.agent_id).where(t.jobs.c.status == "running")))
    ).all())
    running = _load_jobs(conn, select(t.jobs).where(t.jobs.c.status == "running")
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
            _finish(job, "failed", f"agent {agent} has not been seen {ago} (more than "
                    f"job_lost_after, {lost_after:g}s) while the job ran; its outcome is "
                    "unknown", now)
            out.append((job.id, agent, False))
        elif job.timeout and now > started + job.timeout + grace:
            _finish(job, "failed", f"agent {agent} did not report the end of the job within "
                    f"its timeout ({job.timeout:g}s) plus {grace:g}s", now)
            out.append((job.id, agent, True))
        elif job.cancel_requested_at is not None and agent in here:
            cancels.append((job.id, agent))
    _save(conn, running)
    return SweepResult(tuple(out), tuple(cancels))


def undispatched(conn: Connection, agent_ids: Iterable[str], *, now: float | None = None
                 ) -> list[Dispatch]:
    """Queued jobs never handed to a stream whose agent is one of ``agent_ids`` (connected
    here: the job was created on another replica). :func:`deliver` marks the ones it sends."""
    now = time.time() if now is None else now
    wanted = set(agent_ids)
    if not wanted:
        return []
    job = t.jobs.c
    jobs = [j for j in _load_jobs(
        conn,
        select(t.jobs).where(job.status == "queued", job.dispatched_at.is_(None))
        .order_by(job.created_at, job.id).limit(LIST_LIMIT)
        .with_for_update()
    ) if j.agent_id in wanted]
    dispatches = _dispatches(conn, jobs, now)
    _save(conn, jobs)
    return dispatches


def sweep_needed(conn: Connection) -> tuple[bool, bool]:
    """``(undispatched queued jobs exist, running jobs exist)``: two cheap reads, so the
    periodic sweep takes no write lock while there is nothing to do."""
    job = t.jobs.c
    undispatched_exist = conn.scalar(
        select(job.id).where(job.status == "queued", job.dispatched_at.is_(None)).limit(1)
    ) is not None
    running_exist = conn.scalar(
        select(job.id).where(job.status == "running").limit(1)
    ) is not None
    return undispatched_exist, running_exist


def job_wheel_allowed(conn: Connection, agent_id: str, sha256: str) -> bool:
    """True when a wheel with ``sha256`` belongs to a plugin of a queued or running job of
    the agent (DownloadWheel's permission for job plugins)."""
    w, jp, job = t.plugin_version_wheels.c, t.job_plugins.c, t.jobs.c
    found = conn.scalar(
        select(w.sha256)
        .join(t.job_plugins, jp.version_id == w.version_id)
        .join(t.jobs, job.id == jp.job_id)
        .where(job.agent_id == agent_id, job.status.in_(("queued", "running")),
               w.sha256 == sha256)
        .limit(1)
    )
    return found is not None


def event_from_pb(message: Any) -> JobEventData:
    """Decode a ``JobEvent`` protobuf message."""
    return JobEventData(
        job_id=message.job_id,
        status=wire_word(JobStatus, message.status),
        exit_code=message.exit_code if message.has_exit_code else None,
        output_tail=message.output_tail,
        output_size=message.output_size,
        started_at=message.started_at,
        finished_at=message.finished_at,
        error=message.error,
        plugins=tuple(
            RecordData(index=r.index, status=wire_word(RecordStatus, r.status),
                       result_json=r.result_json, error=r.error, started_at=r.started_at,
                       completed_at=r.completed_at)
            for r in message.plugins
        ),
    )


# ---------------------------------------------------------------- delivery (event loop)


def _cancel_message(job_id: str) -> pb.ServerMessage:
    return pb.ServerMessage(cancel_job=pb.CancelJob(job_id=job_id))


async def deliver(state: ServerState, dispatches: Iterable[Dispatch]) -> list[str]:
    """Hand each job to its agent's stream if that agent is connected to this process;
    mark the ones sent dispatched and return their ids."""
    sent: list[str] = []
    for dispatch in dispatches:
        stream = state.hub.stream(dispatch.agent_id)
        if stream is not None and not stream.closed:
            stream.send(dispatch.to_pb())
            sent.append(dispatch.job_id)
    if sent:
        await state.db.run(mark_dispatched, sent)
    return sent


def send_cancel(state: ServerState, agent_id: str, job_id: str) -> bool:
    """Tell the agent (if connected here) to cancel ``job_id``; True if it was sent."""
    stream = state.hub.stream(agent_id)
    if stream is None or stream.closed:
        return False
    stream.send(_cancel_message(job_id))
    return True


async def on_connect(state: ServerState, agent_id: str, known: Iterable[str]
                     ) -> list[pb.ServerMessage]:
    """Settle an agent's jobs as it registers; return the jobs and cancels to send it."""
    result = await state.db.run(agent_connected, agent_id, list(known))
    for job_id in result.failed:
        log.warning("job %s failed: agent %s came back without it", job_id, agent_id)
    messages = [d.to_pb() for d in result.dispatches]
    messages.extend(_cancel_message(job_id) for job_id in result.cancels)
    return messages


async def handle_event(state: ServerState, agent_id: str, message: Any) -> None:
    """Store a ``JobEvent``; a running report for a job that already ended gets a cancel."""
    outcome = await state.db.run(record_event, agent_id, event_from_pb(message))
    if outcome.cancel:
        send_cancel(state, agent_id, message.job_id)


async def sweep(state: ServerState) -> int:
    """The periodic job check: send queued jobs created on other replicas to agents connected
    here, and fail running jobs whose agent is gone or overdue. Returns how many changed."""
    settings = state.settings
    waiting, running = await state.db.read(sweep_needed)
    connected = state.hub.connected_ids()
    sent = await deliver(state, await state.db.run(undispatched, connected)) \
        if waiting and connected else []
    if not running:
        return len(sent)
    failed = await state.db.run(
        fail_lost_jobs, last_seen=state.presence.snapshot(), connected=connected,
        lost_after=settings.job_lost_after, grace=settings.job_timeout_grace,
    )
    for job_id, agent_id, present in failed.failed:
        log.warning("job %s on agent %s failed: the agent is gone or overdue", job_id, agent_id)
        if present:
            send_cancel(state, agent_id, job_id)
    for job_id, agent_id in failed.cancels:
        send_cancel(state, agent_id, job_id)
    return len(sent) + len(failed.failed)


def with_open_jobs(conn: Connection, agent_ids: Sequence[str]) -> list[bool]:
    """For each agent, whether it has a queued or running job: one query for all the agents
    connecting at once, so the (write) :func:`agent_connected` runs only for those that do
    (or that report jobs of their own) — not once per agent of a reconnecting fleet."""
    ids = sorted(set(agent_ids))
    job = t.jobs.c
    found = set(conn.scalars(
        select(job.agent_id).where(job.agent_id.in_(ids), job.status.in_(("queued", "running")))
        .distinct()
    )) if ids else set()
    return [agent_id in found for agent_id in agent_ids]
