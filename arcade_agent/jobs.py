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

Jobs are opt-in: the runner runs a job only when the agent's own ``[jobs]`` policy
(:class:`~arcade_core.job_policy.JobPolicy`: ``enabled``, then the ``allow`` patterns)
allows every one of its commands. The server refuses such jobs already (the agent told it its
policy in ``Register``); a job that arrives anyway ends ``failed`` with the reason before
anything of it runs: no plugin entry is installed or called, no command started.

A run's data (entries, records, its ``JobEvent``) is in :mod:`arcade_agent.job_run`; its
stages (plugin entries around the commands) in :mod:`arcade_agent.job_stages`; running its
commands is :mod:`arcade_agent.job_commands`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arcade_core.job_policy import JobPolicy
from arcade_core.rpc.v1 import pb
from arcade_core.states import JobStatus

from .errors import AgentConfigError, AgentError
from .job_run import OUTPUT_LIMIT, OutputTail, Run, decode
from .job_stages import EnsureEnvironment, JobStages

if TYPE_CHECKING:
    from arcade_core import PluginHost

__all__ = ["JobRunner", "OutputTail"]

log = logging.getLogger(__name__)

#: Seconds between output updates sent while commands run.
PROGRESS_INTERVAL = 0.5
#: Seconds between SIGTERM and SIGKILL when a command group is stopped.
KILL_GRACE = 2.0
#: Finished jobs remembered (to answer a job sent again with its final event).
FINISHED_KEEP = 256
#: Finished jobs whose final event is sent again after a reconnect, and listed in Register.
RESEND_WINDOW = 60.0

_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

Send = Callable[[pb.AgentMessage], Awaitable[bool]]


class JobRunner:
    """Runs the jobs the server sends, at most ``concurrency`` at a time.

    ``ensure_environment(name, version, refs)`` makes a plugin version's environment exist
    (the reconciler's install path); ``send`` writes a message on the agent's stream (False
    when there is none). Job working directories are made under ``home``. ``policy`` is the
    agent's ``[jobs]`` policy (default: jobs disabled).
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
        policy: JobPolicy | None = None,
    ) -> None:
        if concurrency < 1:
            raise AgentConfigError("concurrency must be at least 1")
        self.host = host
        self._send = send
        self.home = Path(home)
        self.agent_id = agent_id
        self.concurrency = concurrency
        self.output_limit = output_limit
        self.policy = policy or JobPolicy()
        self._stages = JobStages(host, ensure_environment, self._emit, agent_id=agent_id,
                                 call_timeout=call_timeout,
                                 progress_interval=progress_interval, kill_grace=kill_grace)
        self._slots = asyncio.Semaphore(concurrency)
        self._active: dict[str, Run] = {}
        self._finished: OrderedDict[str, Run] = OrderedDict()
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
            if run.status is not JobStatus.QUEUED:
                self._spawn_emit(run)
            return
        if job_id in self._finished:
            self._spawn_emit(self._finished[job_id])
            return
        entries, records = decode(job)
        run = Run(job_id=job_id, commands=list(job.commands), env=dict(job.env),
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
            if run.status is not JobStatus.QUEUED:
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
        waiting = [r for r in self._active.values() if r.status is JobStatus.QUEUED]
        running = [r for r in self._active.values() if r.status is not JobStatus.QUEUED]
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

    async def _main(self, run: Run) -> None:
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

    async def _run(self, run: Run) -> None:
        run.status = JobStatus.RUNNING
        run.started_at = time.time()
        log.info("job %s started (%d command(s), %d plugin entr%s)", run.job_id,
                 len(run.commands), len(run.entries), "y" if len(run.entries) == 1 else "ies")
        workdir_default = self.home / run.job_id
        own_workdir = False
        try:
            if not _JOB_ID.match(run.job_id):
                raise _JobAbort(f"invalid job id {run.job_id!r}")
            refusal = self.policy.refusal(run.commands)
            if refusal is not None:  # the server should not have sent it: nothing runs
                log.warning("job %s refused: %s", run.job_id, refusal)
                raise _JobAbort(f"refused by the agent: {refusal}")
            if run.cancel.is_set():  # cancelled while it waited for a slot
                run.status, run.error = JobStatus.CANCELLED, run.cancel_reason or "cancelled"
                self._stages.skip_pending(run)
                return
            await self._emit(run)
            own_workdir = await asyncio.to_thread(_fresh_dir, workdir_default)
            result = await self._stages.run(run, str(workdir_default))
            run.status = JobStatus(result.status)
            run.exit_code = result.exit_code
            run.error = result.error
        except _JobAbort as exc:
            run.status, run.error = JobStatus.FAILED, str(exc)
            self._stages.skip_pending(run)
        except asyncio.CancelledError:
            run.status = JobStatus.CANCELLED
            run.error = run.error or "cancelled: the agent stopped before the job ended"
            self._stages.skip_pending(run)
            raise
        except Exception as exc:  # a bug or the host closing: the job fails, the agent goes on
            log.exception("job %s failed inside the agent", run.job_id)
            run.status = JobStatus.FAILED
            run.error = f"the agent could not run the job: {type(exc).__name__}: {exc}"
            self._stages.skip_pending(run)
        finally:
            await self._stages.cleanup(run, workdir_default if own_workdir else None)
            run.finished_at = time.time()
            run.finished_mono = time.monotonic()
            log.info("job %s %s%s", run.job_id, run.status,
                     f" (exit code {run.exit_code})" if run.exit_code is not None else "")
            with contextlib.suppress(Exception):
                await self._emit(run)

    # ------------------------------------------------------------------ events

    async def _emit(self, run: Run) -> None:
        async with run.emit_lock:
            message = pb.AgentMessage(job_event=run.event())
            run.delivered = await self._send(message)

    def _spawn_emit(self, run: Run) -> None:
        task = asyncio.ensure_future(self._emit(run))
        task.add_done_callback(_log_failure)


class _JobAbort(AgentError):
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
