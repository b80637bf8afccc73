"""The job runner: a job's plugins around its shell commands, reported as it goes.

For each ``Job`` the server sends, :class:`JobRunner`:

1. waits for one of ``concurrency`` slots (a waiting job is still ``queued`` on the server);
2. reports ``running`` and prepares every plugin entry: the entry's environment is made sure
   of through the reconciler's install path (wheels from the verified cache or downloaded,
   sha256-checked; desired-state plugins are not touched), then loaded as its own instance
   under the key ``job:<job id>:<index>`` with the entry's config and isolation. An entry that
   cannot be prepared (download, install or load error, or a plugin that does not implement
   its stage's hook) is recorded ``failed`` and the job ends ``failed`` without running its
   commands or ``before`` entries; its other entries still run their ``after`` and ``notify``
   stages;
3. calls ``before`` on the ``before`` entries, by ``order`` then index, each alone
   (``host.call("before", keys=[key])``); the ``env``, ``workdir`` and ``outputs`` they return
   are merged. A ``before`` that raises (or times out, or crashes its process) fails the job:
   the remaining ``before`` entries and the commands are ``skipped``;
4. runs the commands one after another as ``/bin/sh -c`` subprocesses, each in a process
   group of its own, in the working directory (a fresh ``<home>/jobs/<job id>`` unless a
   ``before`` entry gave another), with the agent's environment plus the job's ``env`` plus
   what ``before`` returned plus ``ARCADE_JOB_ID``. The first command that exits non-zero ends
   the commands (``failed``); the job's ``timeout`` bounds all of them together, after which
   the group is sent SIGTERM, then SIGKILL (``timed_out``); a cancel does the same
   (``cancelled``). When a command ends, whatever it left running in its group is killed.
   Output (stdout and stderr, each command preceded by a ``$ command`` line) is kept as a
   bounded tail, and streamed to the server while it grows;
5. calls ``after`` with the :class:`~arcade_core.JobResult` on the ``after`` entries always,
   the ``on_success`` entries when the commands succeeded and the ``on_failure`` entries
   otherwise (merged by ``order`` then index; the others are ``skipped``). Their failures are
   recorded but do not change the job's status;
6. calls ``notify`` on the ``notify`` entries with a ``job.finished``
   :class:`~arcade_core.Event`;
7. unloads the job's plugin instances, removes the default working directory, and reports
   the final status.

Every plugin call is bounded by the agent's ``call_timeout`` and isolated: a plugin that
raises, hangs or crashes its process is recorded ``failed`` and the agent goes on.

The environments built for job plugins are left installed (like a cache: the next job using
the same version starts without an install); the wheel cache's LRU bounds the wheels.

Each status change and each record change is sent to the server as a ``JobEvent`` carrying
the whole picture (status, exit code, output tail, every record), so any one event is enough
to bring the server up to date. After a reconnect the latest event of every running job, and
of jobs finished in the last minute, is sent again; the server ignores what it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arcade_core import ArcadeError, Event, JobContext, JobResult, PluginNotFound, ProtocolError
from arcade_core.rpc.v1 import pb
from arcade_core.rpc.v1.convert import from_pb, to_pb
from arcade_core.states import Isolation, JobStatus, RecordStatus, Stage

if TYPE_CHECKING:
    from arcade_core import Environment, PluginHost

__all__ = ["JobRunner", "OutputTail"]

log = logging.getLogger(__name__)

#: The hook each stage calls.
STAGE_HOOKS = {"before": "before", "after": "after", "on_success": "after",
               "on_failure": "after", "notify": "notify"}
AFTER_STAGES = ("after", "on_success", "on_failure")
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "timed_out"})

#: Bytes of output kept per job (the end of it).
OUTPUT_LIMIT = 64 * 1024
#: Output tail sent with the ``job.finished`` event to ``notify`` plugins.
NOTIFY_OUTPUT = 4096
#: Seconds between output updates sent while commands run.
PROGRESS_INTERVAL = 0.5
#: Seconds between SIGTERM and SIGKILL when a command group is stopped.
KILL_GRACE = 2.0
#: Finished jobs remembered (to answer a job sent again with its final event).
FINISHED_KEEP = 256
#: Finished jobs whose final event is sent again after a reconnect, and listed in Register.
RESEND_WINDOW = 60.0

_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

EnsureEnvironment = Callable[[str, str, Sequence[pb.WheelRef]], Awaitable["Environment"]]
Send = Callable[[pb.AgentMessage], Awaitable[bool]]


class OutputTail:
    """The last ``limit`` bytes of a job's output, and how many bytes there were in all."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self.limit = limit
        self.size = 0
        self._buf = bytearray()

    def add(self, data: bytes) -> None:
        self.size += len(data)
        self._buf += data
        if len(self._buf) > self.limit:
            del self._buf[: len(self._buf) - self.limit]

    def text(self, limit: int | None = None) -> str:
        data = bytes(self._buf if limit is None else self._buf[-limit:])
        return data.decode("utf-8", "replace")


@dataclass(slots=True)
class _Entry:
    """One plugin entry of a job, decoded from the wire (``problem``: why it cannot run)."""

    index: int
    name: str
    version: str
    stage: str
    order: int
    config: dict[str, Any]
    isolation: str
    refs: tuple[pb.WheelRef, ...]
    key: str
    problem: str = ""

    @property
    def hook(self) -> str:
        return STAGE_HOOKS.get(self.stage, "")


@dataclass(slots=True)
class _Record:
    """What happened to one entry, as reported to the server."""

    index: int
    plugin: str
    version: str
    stage: str
    order: int
    status: str = "pending"
    result_json: str = ""
    error: str = ""
    started_at: float = 0.0
    completed_at: float = 0.0

    def to_pb(self) -> pb.JobPluginRecord:
        return pb.JobPluginRecord(
            index=self.index, plugin=self.plugin, version=self.version,
            stage=to_pb(Stage(self.stage)), order=self.order,
            status=to_pb(RecordStatus(self.status)), result_json=self.result_json,
            error=self.error, started_at=self.started_at, completed_at=self.completed_at,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "plugin": self.plugin, "version": self.version,
            "stage": self.stage, "order": self.order, "status": self.status,
            "result": json.loads(self.result_json) if self.result_json else None,
            "error": self.error, "started_at": self.started_at or None,
            "completed_at": self.completed_at or None,
        }


@dataclass(eq=False)
class _Run:
    """One job on this agent, from arrival to its final event."""

    job_id: str
    commands: list[str]
    env: dict[str, str]
    timeout: float
    entries: list[_Entry]
    records: dict[int, _Record]
    output: OutputTail
    status: str = "queued"
    exit_code: int | None = None
    error: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    finished_mono: float = 0.0
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str = ""
    delivered: bool = False
    task: asyncio.Task[None] | None = None
    loaded: dict[int, str] = field(default_factory=dict)
    emit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def event(self) -> pb.JobEvent:
        return pb.JobEvent(
            job_id=self.job_id, status=to_pb(JobStatus(self.status)),
            exit_code=self.exit_code or 0, has_exit_code=self.exit_code is not None,
            output_tail=self.output.text(), output_size=self.output.size,
            started_at=self.started_at, finished_at=self.finished_at, error=self.error,
            plugins=[self.records[i].to_pb() for i in sorted(self.records)],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "status": self.status, "exit_code": self.exit_code,
            "error": self.error, "started_at": self.started_at or None,
            "finished_at": self.finished_at or None, "output_size": self.output.size,
            "plugins": [self.records[i].to_dict() for i in sorted(self.records)],
        }


def _sorted(entries: Sequence[_Entry]) -> list[_Entry]:
    return sorted(entries, key=lambda e: (e.order, e.index))


def _to_json(value: Any) -> str:
    if value is None:
        return ""
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError) as exc:
        return json.dumps(f"<result not JSON: {exc}>")


def _decode(job: pb.Job) -> tuple[list[_Entry], dict[int, _Record]]:
    entries: list[_Entry] = []
    records: dict[int, _Record] = {}
    for plugin in job.plugins:
        problem = ""
        config: dict[str, Any] = {}
        try:
            loaded = json.loads(plugin.config_json) if plugin.config_json else {}
        except ValueError as exc:
            problem = f"config_json is not valid JSON: {exc}"
        else:
            if isinstance(loaded, dict):
                config = loaded
            else:
                problem = "config_json is not a JSON object"
        try:
            stage = str(from_pb(Stage, plugin.stage) or "")
            isolation = str(from_pb(Isolation, plugin.isolation) or "")
        except ProtocolError as exc:
            stage, isolation, problem = "", "", str(exc)
        if stage not in STAGE_HOOKS:
            problem = problem or f"unknown stage {plugin.stage!r}"
        elif not plugin.wheels:
            problem = "the job lists no wheels for it"
        if plugin.index in records:
            problem = f"entry index {plugin.index} appears twice"
        entry = _Entry(
            index=plugin.index, name=plugin.name, version=plugin.version, stage=stage,
            order=plugin.order, config=config, isolation=isolation,
            refs=tuple(plugin.wheels), key=f"job:{job.job_id}:{plugin.index}", problem=problem,
        )
        entries.append(entry)
        records.setdefault(plugin.index, _Record(plugin.index, plugin.name, plugin.version,
                                                 stage or Stage.BEFORE, plugin.order))
    return entries, records


def _merge_before(value: Any, env: dict[str, str], outputs: dict[str, Any], workdir: str
                  ) -> str:
    """Apply what a ``before`` hook returned; raise ``ValueError`` for a wrong shape."""
    if value is None:
        return workdir
    if not isinstance(value, Mapping):
        raise ValueError(f"before() returned a {type(value).__name__}; it must return None or "
                         "a dict with any of env, workdir and outputs")
    extra = value.get("env") or {}
    if not isinstance(extra, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
    ):
        raise ValueError("before() returned an env that is not a mapping of str to str")
    new_workdir = value.get("workdir")
    if new_workdir is not None and (not isinstance(new_workdir, str) or not new_workdir):
        raise ValueError("before() returned a workdir that is not a non-empty path string")
    more = value.get("outputs") or {}
    if not isinstance(more, Mapping):
        raise ValueError("before() returned outputs that are not a mapping")
    env.update(extra)
    outputs.update(more)
    # A relative workdir is taken from the current one (an absolute one replaces it).
    return os.path.join(workdir, new_workdir) if new_workdir else workdir


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class JobRunner:
    """Runs the jobs the server sends, at most ``concurrency`` at a time.

    ``ensure_environment(name, version, refs)`` makes a plugin version's environment exist
    (the reconciler's install path); ``send`` writes a message on the agent's stream (False
    when there is none). Job working directories are made under ``home``.
    """

    def __init__(
        self,
        host: PluginHost,
        ensure_environment: EnsureEnvironment,
        send: Send,
        *,
        home: Path,
        agent_id: str = "",
        concurrency: int = 2,
        call_timeout: float = 30.0,
        output_limit: int = OUTPUT_LIMIT,
        progress_interval: float = PROGRESS_INTERVAL,
        kill_grace: float = KILL_GRACE,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.host = host
        self._ensure = ensure_environment
        self._send = send
        self.home = Path(home)
        self.agent_id = agent_id
        self.concurrency = concurrency
        self.call_timeout = call_timeout
        self.output_limit = output_limit
        self.progress_interval = progress_interval
        self.kill_grace = kill_grace
        self._slots = asyncio.Semaphore(concurrency)
        self._active: dict[str, _Run] = {}
        self._finished: OrderedDict[str, _Run] = OrderedDict()
        self._done = asyncio.Condition()
        self._closing = False
        self.started_total = 0

    # ------------------------------------------------------------------ public

    def submit(self, job: pb.Job) -> None:
        """Take a job from the server (never blocks; the job runs in a task of its own).

        A job already running or waiting is not started twice; a job that already finished
        is answered with its final event again (the server may have missed it).
        """
        if self._closing:
            return  # the server keeps it queued and sends it again after the restart
        job_id = job.job_id
        if job_id in self._active:
            run = self._active[job_id]
            if run.status != "queued":
                self._spawn_emit(run)
            return
        if job_id in self._finished:
            self._spawn_emit(self._finished[job_id])
            return
        entries, records = _decode(job)
        run = _Run(job_id=job_id, commands=list(job.commands), env=dict(job.env),
                   timeout=job.timeout, entries=entries, records=records,
                   output=OutputTail(self.output_limit))
        self._active[job_id] = run
        run.task = asyncio.create_task(self._main(run), name=f"job-{job_id}")

    def cancel(self, job_id: str, reason: str = "cancelled on request") -> bool:
        """Stop a job: its commands are killed (or never started) and it ends ``cancelled``;
        its ``after``/``on_failure``/``notify`` entries still run. False for an unknown job."""
        run = self._active.get(job_id)
        if run is None:
            return False
        if not run.cancel.is_set():
            run.cancel_reason = reason
            run.cancel.set()
            log.info("job %s: %s", job_id, reason)
        return True

    def known(self) -> list[str]:
        """Ids for ``Register``: jobs running or waiting, and jobs finished a moment ago (or
        whose final event may not have reached the server)."""
        now = time.monotonic()
        recent = [job_id for job_id, run in self._finished.items()
                  if not run.delivered or now - run.finished_mono < RESEND_WINDOW]
        return sorted(self._active) + recent

    def resend(self) -> None:
        """Send the latest event of running and recently finished jobs again (on reconnect)."""
        now = time.monotonic()
        for run in self._active.values():
            if run.status != "queued":
                self._spawn_emit(run)
        for run in self._finished.values():
            if not run.delivered or now - run.finished_mono < RESEND_WINDOW:
                self._spawn_emit(run)

    def jobs(self) -> list[dict[str, Any]]:
        """Running and waiting jobs, then the ones finished most recently (newest last)."""
        return [r.to_dict() for r in self._active.values()] + \
            [r.to_dict() for r in list(self._finished.values())[-20:]]

    def get(self, job_id: str) -> dict[str, Any] | None:
        run = self._active.get(job_id) or self._finished.get(job_id)
        return run.to_dict() if run is not None else None

    async def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait until ``job_id`` has finished here; return its snapshot."""
        async with asyncio.timeout(timeout), self._done:
            await self._done.wait_for(lambda: job_id in self._finished)
        return self._finished[job_id].to_dict()

    async def close(self, grace: float = 10.0) -> None:
        """Stop taking jobs, cancel running ones (their after/notify entries get ``grace``
        seconds), and drop waiting ones (the server still has them queued)."""
        self._closing = True
        waiting = [r for r in self._active.values() if r.status == "queued"]
        running = [r for r in self._active.values() if r.status != "queued"]
        for run in waiting:
            if run.task is not None:
                run.task.cancel()
        for run in running:
            self.cancel(run.job_id, "cancelled: the agent is stopping")
        tasks = [r.task for r in waiting + running if r.task is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ one job

    async def _main(self, run: _Run) -> None:
        started = False
        try:
            async with self._slots:
                started = True
                self.started_total += 1
                await self._run(run)
        finally:
            # A job dropped while waiting (the agent is stopping) is simply forgotten: the
            # server still has it queued.
            self._active.pop(run.job_id, None)
            if started:
                self._finished[run.job_id] = run
                while len(self._finished) > FINISHED_KEEP:
                    self._finished.popitem(last=False)
                async with self._done:
                    self._done.notify_all()

    async def _run(self, run: _Run) -> None:
        run.status = "running"
        run.started_at = time.time()
        log.info("job %s started (%d command(s), %d plugin entr%s)", run.job_id,
                 len(run.commands), len(run.entries), "y" if len(run.entries) == 1 else "ies")
        workdir_default = self.home / run.job_id
        own_workdir = False
        try:
            if not _JOB_ID.match(run.job_id):
                raise _JobAbort(f"invalid job id {run.job_id!r}")
            if run.cancel.is_set():  # cancelled while it waited for a slot
                run.status, run.error = "cancelled", run.cancel_reason or "cancelled"
                self._skip_pending(run)
                return
            await self._emit(run)
            own_workdir = await asyncio.to_thread(_fresh_dir, workdir_default)
            result = await self._stages(run, str(workdir_default))
            run.status = result.status
            run.exit_code = result.exit_code
            run.error = result.error
        except _JobAbort as exc:
            run.status, run.error = "failed", str(exc)
            self._skip_pending(run)
        except asyncio.CancelledError:
            run.status = "cancelled"
            run.error = run.error or "cancelled: the agent stopped before the job ended"
            self._skip_pending(run)
            raise
        except Exception as exc:  # a bug or the host closing: the job fails, the agent goes on
            log.exception("job %s failed inside the agent", run.job_id)
            run.status = "failed"
            run.error = f"the agent could not run the job: {type(exc).__name__}: {exc}"
            self._skip_pending(run)
        finally:
            await self._cleanup(run, workdir_default if own_workdir else None)
            run.finished_at = time.time()
            run.finished_mono = time.monotonic()
            log.info("job %s %s%s", run.job_id, run.status,
                     f" (exit code {run.exit_code})" if run.exit_code is not None else "")
            with contextlib.suppress(Exception):
                await self._emit(run)

    async def _stages(self, run: _Run, workdir: str) -> JobResult:
        setup_error = await self._prepare(run)
        env: dict[str, str] = dict(run.env)
        outputs: dict[str, Any] = {}
        abort = setup_error

        # before
        for entry in _sorted([e for e in run.entries if e.stage == "before"]):
            record = run.records[entry.index]
            if record.status != "pending":
                continue  # failed while being prepared
            if abort or run.cancel.is_set():
                record.status = "skipped"
                continue
            ctx = JobContext(job_id=run.job_id, commands=list(run.commands), env=dict(env),
                             workdir=workdir, stage="before", plugin_config=dict(entry.config),
                             outputs=dict(outputs))
            value, error = await self._call_entry(run, entry, "before", job=ctx)
            if error is None:
                try:
                    workdir = _merge_before(value, env, outputs, workdir)
                except ValueError as exc:
                    error = str(exc)
                    self._complete(run, entry, error=error)
            if error is not None:
                abort = (f"before plugin {entry.name} (entry {entry.index}) failed: {error}; "
                         "the commands were skipped")
            await self._emit(run)

        # commands
        if run.cancel.is_set():
            now = time.time()
            result = JobResult(run.job_id, "cancelled", None, run.output.text(), now, now,
                               run.cancel_reason or "cancelled")
        elif abort:
            now = time.time()
            result = JobResult(run.job_id, "failed", None, "", now, now, abort)
        else:
            command_env = {**os.environ, **env, "ARCADE_JOB_ID": run.job_id}
            result = await self._commands(run, command_env, workdir)
        run.exit_code = result.exit_code
        run.error = result.error
        await self._emit(run)

        # after / on_success / on_failure
        applicable = {"after", "on_success" if result.succeeded else "on_failure"}
        for entry in _sorted([e for e in run.entries if e.stage in AFTER_STAGES]):
            record = run.records[entry.index]
            if record.status != "pending":
                continue
            if entry.stage not in applicable:
                record.status = "skipped"
                continue
            ctx = JobContext(job_id=run.job_id, commands=list(run.commands), env=dict(env),
                             workdir=workdir, stage=entry.stage,
                             plugin_config=dict(entry.config), outputs=dict(outputs))
            await self._call_entry(run, entry, "after", job=ctx, result=result)
            await self._emit(run)

        # notify
        notify = [e for e in _sorted(run.entries) if e.stage == "notify"
                  and run.records[e.index].status == "pending"]
        if notify:
            event = Event("job.finished", {
                "job_id": run.job_id, "agent_id": self.agent_id, "status": result.status,
                "exit_code": result.exit_code, "error": result.error,
                "started_at": run.started_at, "finished_at": result.finished_at,
                "duration": max(0.0, result.finished_at - run.started_at),
                "commands": list(run.commands), "workdir": workdir,
                "output_tail": run.output.text(NOTIFY_OUTPUT),
                "plugins": [{"index": r.index, "plugin": r.plugin, "stage": r.stage,
                             "status": r.status, "error": r.error}
                            for r in (run.records[i] for i in sorted(run.records))
                            if r.stage != "notify"],
            })
            for entry in notify:
                await self._call_entry(run, entry, "notify", event=event)
                await self._emit(run)
        return result

    # ------------------------------------------------------------------ plugins

    async def _prepare(self, run: _Run) -> str:
        """Install and load every entry; return why the job cannot run ("" when it can)."""

        async def prepare(entry: _Entry) -> str:
            if entry.problem:
                return entry.problem
            try:
                await self._ensure(entry.name, entry.version, entry.refs)
                status = await asyncio.to_thread(
                    self.host.load, entry.name, entry.version, entry.config,
                    entry.isolation or None, key=entry.key,
                )
            except ArcadeError as exc:
                return str(exc)
            except Exception as exc:  # a full disk, a bug: this entry fails, the agent goes on
                log.exception("job %s: preparing %s@%s failed", run.job_id, entry.name,
                              entry.version)
                return f"{type(exc).__name__}: {exc}"
            run.loaded[entry.index] = entry.key
            if entry.hook not in status.hooks:
                return (f"{entry.name}@{entry.version} does not implement {entry.hook}(), which "
                        f"its {entry.stage} stage calls (it implements: "
                        f"{', '.join(status.hooks) or 'no hooks'})")
            return ""

        problems = await asyncio.gather(*(prepare(e) for e in run.entries))
        failures = []
        for entry, problem in zip(run.entries, problems, strict=True):
            if problem:
                self._complete(run, entry, error=f"setup failed: {problem}", now=time.time())
                failures.append(f"{entry.name}@{entry.version} (entry {entry.index}): {problem}")
        if not failures:
            return ""
        await self._emit(run)
        return ("job plugin setup failed, so the commands were skipped: "
                + "; ".join(failures))

    async def _call_entry(self, run: _Run, entry: _Entry, hook: str, **kwargs: Any
                          ) -> tuple[Any, str | None]:
        """Call one entry's hook (bounded, isolated); record and return (value, error)."""
        record = run.records[entry.index]
        record.status = "running"
        record.started_at = time.time()
        await self._emit(run)
        try:
            outcome = await asyncio.to_thread(
                self.host.call, hook, keys=[entry.key], timeout=self.call_timeout, **kwargs
            )
        except ArcadeError as exc:
            error: str | None = str(exc)
            value = None
        else:
            error = outcome.errors.get(entry.key)
            value = outcome.results.get(entry.key)
        if error is not None:
            log.warning("job %s: %s entry %d (%s) failed: %s", run.job_id, entry.stage,
                        entry.index, entry.name, error)
        self._complete(run, entry, error=error, value=value)
        return value, error

    def _complete(self, run: _Run, entry: _Entry, *, error: str | None = None,
                  value: Any = None, now: float | None = None) -> None:
        record = run.records[entry.index]
        record.completed_at = time.time() if now is None else now
        if error is not None:
            record.status = "failed"
            record.error = error
        else:
            record.status = "succeeded"
            record.result_json = _to_json(value)

    def _skip_pending(self, run: _Run) -> None:
        for record in run.records.values():
            if record.status == "pending":
                record.status = "skipped"
            elif record.status == "running":
                record.status = "failed"
                record.error = record.error or "interrupted: the job stopped during this call"
                record.completed_at = time.time()

    async def _cleanup(self, run: _Run, workdir: Path | None) -> None:
        for key in run.loaded.values():
            try:
                await asyncio.to_thread(self.host.unload, key)
            except PluginNotFound:
                pass
            except Exception:
                log.exception("job %s: unloading %s failed", run.job_id, key)
        run.loaded.clear()
        if workdir is not None:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    # ------------------------------------------------------------------ commands

    async def _commands(self, run: _Run, env: dict[str, str], workdir: str) -> JobResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + run.timeout if run.timeout > 0 else None
        started = time.time()
        status, error = "succeeded", ""
        exit_code: int | None = 0
        progress = asyncio.create_task(self._progress(run))
        try:
            for number, command in enumerate(run.commands, 1):
                run.output.add(f"$ {command}\n".encode())
                try:
                    proc = await asyncio.create_subprocess_shell(
                        command, stdin=asyncio.subprocess.DEVNULL,
                        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                        cwd=workdir, env=env, start_new_session=True,
                    )
                except OSError as exc:
                    status, exit_code = "failed", None
                    error = f"command {number} could not start in {workdir}: {exc}"
                    break
                stopped = await self._wait_command(run, proc, deadline)
                if stopped == "cancelled":
                    status, exit_code = "cancelled", None
                    error = run.cancel_reason or "cancelled"
                    break
                if stopped == "timed_out":
                    status, exit_code = "timed_out", None
                    error = (f"the commands did not finish within the job's timeout of "
                             f"{run.timeout:g}s; command {number} was killed")
                    break
                code = proc.returncode if proc.returncode is not None else -1
                exit_code = code if code >= 0 else 128 - code
                if exit_code != 0:
                    status = "failed"
                    error = (f"command {number} of {len(run.commands)} exited with code "
                             f"{exit_code}: {command}")
                    break
        finally:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress
        return JobResult(run.job_id, status, exit_code, run.output.text(), started,
                         time.time(), error)

    async def _wait_command(self, run: _Run, proc: asyncio.subprocess.Process,
                            deadline: float | None) -> str:
        """Wait for one command, pumping its output; return "" when it exited by itself, or
        ``cancelled``/``timed_out`` when its group had to be stopped."""
        loop = asyncio.get_running_loop()
        assert proc.stdout is not None
        reader = asyncio.create_task(self._pump(proc.stdout, run.output))
        exited = asyncio.create_task(proc.wait())
        cancelled = asyncio.create_task(run.cancel.wait())
        outcome = ""
        try:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait({exited, cancelled}, timeout=remaining,
                                         return_when=asyncio.FIRST_COMPLETED)
            if exited not in done:
                outcome = "cancelled" if run.cancel.is_set() else "timed_out"
                _kill_group(proc.pid, signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(exited), self.kill_grace)
        finally:
            cancelled.cancel()
            # Whatever the command left running in its group goes with it (and so the
            # pipe closes and the reader ends).
            _kill_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await exited
            try:
                await asyncio.wait_for(reader, 5.0)
            except TimeoutError:  # a process outside the group holds the pipe open
                log.warning("job %s: output of a command still open after it ended; "
                            "stopped reading it", run.job_id)
        return outcome

    @staticmethod
    async def _pump(stream: asyncio.StreamReader, output: OutputTail) -> None:
        while data := await stream.read(65536):
            output.add(data)

    async def _progress(self, run: _Run) -> None:
        sent = run.output.size
        while True:
            await asyncio.sleep(self.progress_interval)
            if run.output.size != sent:
                sent = run.output.size
                await self._emit(run)

    # ------------------------------------------------------------------ events

    async def _emit(self, run: _Run) -> None:
        async with run.emit_lock:
            message = pb.AgentMessage(job_event=run.event())
            run.delivered = await self._send(message)

    def _spawn_emit(self, run: _Run) -> None:
        task = asyncio.ensure_future(self._emit(run))
        task.add_done_callback(_log_failure)


class _JobAbort(Exception):
    """The job cannot run at all (reported as its error)."""


def _fresh_dir(path: Path) -> bool:
    """Create ``path`` empty (removing what an earlier run left); True when created."""
    if path.exists() or path.is_symlink():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    path.mkdir(parents=True)
    return True


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("could not send a job event: %r", task.exception())
