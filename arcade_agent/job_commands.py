"""A job's shell commands: run one after another as ``/bin/sh -c`` subprocesses, each in a
process group of its own, bounded together by the job's timeout and stoppable by a cancel
(SIGTERM to the group, SIGKILL after a grace period); their output kept as a bounded tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable

from arcade_core import JobResult
from arcade_core.states import JobStatus

from .job_run import OutputTail, Run

__all__ = ["run_commands"]

log = logging.getLogger("arcade_agent.jobs")

def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def run_commands(
    run: Run,
    env: dict[str, str],
    workdir: str,
    *,
    kill_grace: float,
    progress_interval: float,
    emit: Callable[[], Awaitable[None]],
) -> JobResult:
    """Run ``run``'s commands in ``workdir`` with ``env``; stop at the first failure.

    ``emit()`` is awaited every ``progress_interval`` seconds while the output grows.
    Returns the :class:`~arcade_core.JobResult` (status ``succeeded``, ``failed``,
    ``timed_out`` or ``cancelled``).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + run.timeout if run.timeout > 0 else None
    started = time.time()
    status, error = JobStatus.SUCCEEDED, ""
    exit_code: int | None = 0
    progress = asyncio.create_task(_progress(run, progress_interval, emit))
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
                status, exit_code = JobStatus.FAILED, None
                error = f"command {number} could not start in {workdir}: {exc}"
                break
            stopped = await _wait_command(run, proc, deadline, kill_grace)
            if stopped is JobStatus.CANCELLED:
                status, exit_code = JobStatus.CANCELLED, None
                error = run.cancel_reason or "cancelled"
                break
            if stopped is JobStatus.TIMED_OUT:
                status, exit_code = JobStatus.TIMED_OUT, None
                error = (f"the commands did not finish within the job's timeout of "
                         f"{run.timeout:g}s; command {number} was killed")
                break
            code = proc.returncode if proc.returncode is not None else -1
            exit_code = code if code >= 0 else 128 - code
            if exit_code != 0:
                status = JobStatus.FAILED
                error = (f"command {number} of {len(run.commands)} exited with code "
                         f"{exit_code}: {command}")
                break
    finally:
        progress.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await progress
    return JobResult(run.job_id, status, exit_code, run.output.text(), started,
                     time.time(), error)


async def _wait_command(run: Run, proc: asyncio.subprocess.Process, deadline: float | None,
                        kill_grace: float) -> JobStatus | None:
    """Wait for one command, pumping its output; return ``None`` when it exited by itself,
    or ``CANCELLED``/``TIMED_OUT`` when its group had to be stopped."""
    loop = asyncio.get_running_loop()
    assert proc.stdout is not None
    reader = asyncio.create_task(_pump(proc.stdout, run.output))
    exited = asyncio.create_task(proc.wait())
    cancelled = asyncio.create_task(run.cancel.wait())
    outcome: JobStatus | None = None
    try:
        remaining = None if deadline is None else max(0.0, deadline - loop.time())
        done, _ = await asyncio.wait({exited, cancelled}, timeout=remaining,
                                     return_when=asyncio.FIRST_COMPLETED)
        if exited not in done:
            outcome = JobStatus.CANCELLED if run.cancel.is_set() else JobStatus.TIMED_OUT
            _kill_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), kill_grace)
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


async def _pump(stream: asyncio.StreamReader, output: OutputTail) -> None:
    while data := await stream.read(65536):
        output.add(data)


async def _progress(run: Run, interval: float, emit: Callable[[], Awaitable[None]]) -> None:
    sent = run.output.size
    while True:
        await asyncio.sleep(interval)
        if run.output.size != sent:
            sent = run.output.size
            await emit()
