"""A job's stages: its plugin entries prepared and called around its commands.

:class:`JobStages` is the part of the :class:`~arcade_agent.jobs.JobRunner` that runs one job
once it has a slot and may run (see :mod:`arcade_agent.jobs` for the order of stages and what
each does): it installs and loads the entries as instances of their own, calls their hooks
bounded and isolated, runs the commands (:mod:`arcade_agent.job_commands`) and records every
outcome on the :class:`~arcade_agent.job_run.Run`; ``emit`` sends the run's event after each
change.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arcade_core import ArcadeError, Event, JobContext, JobResult, PluginNotFound
from arcade_core.states import JobStatus, RecordStatus, Stage

from ._transitions import EnsureEnvironment
from .errors import InvalidBeforeResult
from .job_commands import run_commands
from .job_run import Entry, Run, merge_before, result_json, sorted_entries

if TYPE_CHECKING:
    from arcade_core import PluginHost

__all__ = ["AFTER_STAGES", "NOTIFY_OUTPUT", "EnsureEnvironment", "JobStages"]

log = logging.getLogger("arcade_agent.jobs")

#: The stages that call ``after`` (``on_success``/``on_failure`` only for that outcome).
AFTER_STAGES = (Stage.AFTER, Stage.ON_SUCCESS, Stage.ON_FAILURE)

#: Output tail sent with the ``job.finished`` event to ``notify`` plugins.
NOTIFY_OUTPUT = 4096

Emit = Callable[[Run], Awaitable[None]]


class JobStages:
    """Runs the stages of jobs on ``host``: ``ensure_environment(name, version, refs)`` makes a
    plugin version's environment exist, ``emit(run)`` reports the run's progress."""

    def __init__(
        self,
        host: PluginHost,
        ensure_environment: EnsureEnvironment,
        emit: Emit,
        *,
        agent_id: str,
        call_timeout: float,
        progress_interval: float,
        kill_grace: float,
    ) -> None:
        self.host = host
        self._ensure = ensure_environment
        self._emit = emit
        self.agent_id = agent_id
        self.call_timeout = call_timeout
        self.progress_interval = progress_interval
        self.kill_grace = kill_grace

    async def run(self, run: Run, workdir: str) -> JobResult:
        """Prepare the entries, then before → commands → after → notify (steps 2-6 of
        :mod:`arcade_agent.jobs`); the result of the commands."""
        setup_error = await self._prepare(run)
        env: dict[str, str] = dict(run.env)
        outputs: dict[str, Any] = {}
        abort = setup_error

        # before
        for entry in sorted_entries([e for e in run.entries if e.stage is Stage.BEFORE]):
            record = run.records[entry.index]
            if record.status is not RecordStatus.PENDING:
                continue  # failed while being prepared
            if abort or run.cancel.is_set():
                record.status = RecordStatus.SKIPPED
                continue
            ctx = JobContext(job_id=run.job_id, commands=list(run.commands), env=dict(env),
                             workdir=workdir, stage=Stage.BEFORE, plugin_config=dict(entry.config),
                             outputs=dict(outputs))
            value, error = await self._call_entry(run, entry, Stage.BEFORE.hook, job=ctx)
            if error is None:
                try:
                    workdir = merge_before(value, env, outputs, workdir)
                except InvalidBeforeResult as exc:
                    error = str(exc)
                    self._complete(run, entry, error=error)
            if error is not None:
                abort = (f"before plugin {entry.name} (entry {entry.index}) failed: {error}; "
                         "the commands were skipped")
            await self._emit(run)

        # commands
        if run.cancel.is_set():
            now = time.time()
            result = JobResult(run.job_id, JobStatus.CANCELLED, None, run.output.text(), now, now,
                               run.cancel_reason or "cancelled")
        elif abort:
            now = time.time()
            result = JobResult(run.job_id, JobStatus.FAILED, None, "", now, now, abort)
        else:
            command_env = {**os.environ, **env, "ARCADE_JOB_ID": run.job_id}
            result = await run_commands(
                run, command_env, workdir, kill_grace=self.kill_grace,
                progress_interval=self.progress_interval, emit=lambda: self._emit(run),
            )
        run.exit_code = result.exit_code
        run.error = result.error
        await self._emit(run)

        # after / on_success / on_failure
        applicable = {Stage.AFTER, Stage.ON_SUCCESS if result.succeeded else Stage.ON_FAILURE}
        for entry in sorted_entries([e for e in run.entries if e.stage in AFTER_STAGES]):
            record = run.records[entry.index]
            if record.status is not RecordStatus.PENDING:
                continue
            if entry.stage not in applicable:
                record.status = RecordStatus.SKIPPED
                continue
            assert entry.stage is not None
            ctx = JobContext(job_id=run.job_id, commands=list(run.commands), env=dict(env),
                             workdir=workdir, stage=entry.stage,
                             plugin_config=dict(entry.config), outputs=dict(outputs))
            await self._call_entry(run, entry, entry.stage.hook, job=ctx, result=result)
            await self._emit(run)

        # notify
        notify = [e for e in sorted_entries(run.entries) if e.stage is Stage.NOTIFY
                  and run.records[e.index].status is RecordStatus.PENDING]
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
                            if r.stage is not Stage.NOTIFY],
            })
            for entry in notify:
                await self._call_entry(run, entry, Stage.NOTIFY.hook, event=event)
                await self._emit(run)
        return result

    # ------------------------------------------------------------------ plugins

    async def _prepare(self, run: Run) -> str:
        """Install and load every entry; return why the job cannot run ("" when it can)."""

        async def prepare(entry: Entry) -> str:
            if entry.problem:
                return entry.problem
            try:
                await self._ensure(entry.name, entry.version, entry.refs,
                                   signatures=entry.signatures)
                status = await asyncio.to_thread(
                    self.host.load, entry.name, entry.version, entry.config,
                    entry.isolation, key=entry.key,
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

    async def _call_entry(self, run: Run, entry: Entry, hook: str, **kwargs: Any
                          ) -> tuple[Any, str | None]:
        """Call one entry's hook (bounded, isolated); record and return (value, error)."""
        record = run.records[entry.index]
        record.status = RecordStatus.RUNNING
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

    def _complete(self, run: Run, entry: Entry, *, error: str | None = None,
                  value: Any = None, now: float | None = None) -> None:
        record = run.records[entry.index]
        record.completed_at = time.time() if now is None else now
        if error is not None:
            record.status = RecordStatus.FAILED
            record.error = error
        else:
            record.status = RecordStatus.SUCCEEDED
            record.result_json = result_json(value)

    def skip_pending(self, run: Run) -> None:
        """Close the records of a job that stopped early: pending ones ``skipped``, running
        ones ``failed``."""
        for record in run.records.values():
            if record.status is RecordStatus.PENDING:
                record.status = RecordStatus.SKIPPED
            elif record.status is RecordStatus.RUNNING:
                record.status = RecordStatus.FAILED
                record.error = record.error or "interrupted: the job stopped during this call"
                record.completed_at = time.time()

    async def cleanup(self, run: Run, workdir: Path | None) -> None:
        """Unload the job's plugin instances and remove its default working directory."""
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
