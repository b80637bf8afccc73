"""The JobRunner with a real PluginHost, real plugin wheels and real shell subprocesses.

Only the two edges of the runner are stand-ins: environments are built from local wheel
files (the agent's Reconciler downloads them; the e2e tests cover that path), and the
events go to a list instead of the gRPC stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest

from arcade_agent.jobs import JobRunner, OutputTail
from arcade_core import Environment, PluginHost
from arcade_core.job_policy import JobPolicy
from arcade_core.rpc.v1 import pb
from arcade_core.rpc.v1.convert import from_pb, to_pb
from arcade_core.signing import Signature
from arcade_core.states import Isolation, JobStatus, Stage
from tests.waiting import DEADLINE, until

from .jobkit import hookless_wheel, stager_wheel
from .plugkit import wheel_ref


class Harness:
    """A JobRunner over a real host; events are collected, wheels installed from disk."""

    def __init__(self, host: PluginHost, tmp_path: Path, **runner: Any) -> None:
        self.host = host
        self.tmp_path = tmp_path
        self.log = tmp_path / "calls.jsonl"
        self.events: list[pb.JobEvent] = []
        self.connected = True
        self.stager = stager_wheel(tmp_path / "wheels")
        self.hookless = hookless_wheel(tmp_path / "wheels")
        self._wheels = {hashlib.sha256(p.read_bytes()).hexdigest(): p
                        for p in (self.stager, self.hookless)}
        self.installs = 0
        self.signatures: list[tuple[Signature, ...]] = []
        # The runner runs jobs only because this harness opts in, as an agent's config would.
        options = {"concurrency": 2, "call_timeout": DEADLINE, "progress_interval": 0.05,
                   "kill_grace": 0.3, "policy": JobPolicy(enabled=True), **runner}
        self.runner = JobRunner(host, self._ensure, self._send, home=tmp_path / "jobs",
                                agent_id="agent-1", **options)

    async def _ensure(self, name: str, version: str, refs: Sequence[pb.WheelRef], *,
                      on_download: Callable[[], None] | None = None,
                      signatures: Sequence[Signature] = ()) -> Environment:
        # The agent's Reconciler.ensure_environment checks the signatures against its trusted
        # keys (tests/e2e/test_trust_e2e.py); here they are only recorded.
        self.signatures.append(tuple(signatures))
        self.installs += 1
        paths = [self._wheels[r.sha256] for r in refs]
        return await asyncio.to_thread(
            self.host.install, paths, expected_sha256={r.filename: r.sha256 for r in refs})

    async def _send(self, message: pb.AgentMessage) -> bool:
        self.events.append(message.job_event)
        return self.connected

    def entry(self, index: int, stage: str, *, order: int = 0, isolation: str = "inline",
              wheel: Path | None = None, **config: Any) -> pb.JobPlugin:
        wheel = wheel or self.stager
        name = wheel.name.split("-")[0]
        return pb.JobPlugin(
            index=index, name=name, version="1.0.0", stage=to_pb(Stage(stage)), order=order,
            isolation=to_pb(Isolation(isolation)), wheels=[wheel_ref(wheel)],
            config_json=json.dumps({"log": str(self.log), "tag": f"{stage}{index}", **config}),
        )

    async def run(self, *commands: str, timeout: float = DEADLINE, job_id: str = "job1",
                  plugins: Sequence[pb.JobPlugin] = (), env: dict[str, str] | None = None,
                  wait: float = DEADLINE) -> dict[str, Any]:
        self.runner.submit(self.job(*commands, timeout=timeout, job_id=job_id,
                                    plugins=plugins, env=env))
        return await self.runner.wait(job_id, wait)

    def job(self, *commands: str, timeout: float = DEADLINE, job_id: str = "job1",
            plugins: Sequence[pb.JobPlugin] = (), env: dict[str, str] | None = None) -> pb.Job:
        return pb.Job(job_id=job_id, commands=list(commands), env=env or {}, timeout=timeout,
                      plugins=list(plugins))

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def final(self, job_id: str = "job1") -> pb.JobEvent:
        return [e for e in self.events if e.job_id == job_id][-1]


@pytest.fixture
def host(tmp_path: Path) -> Iterator[PluginHost]:
    with PluginHost(tmp_path / "home", call_timeout=DEADLINE, restart_backoff=0.05,
                    max_restarts=1) as plugin_host:
        yield plugin_host


@pytest.fixture
async def jobs(host: PluginHost, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(host, tmp_path)
    yield harness
    await harness.runner.close(grace=5)


def _statuses(job: dict[str, Any]) -> dict[str, str]:
    return {f"{p['stage']}{p['index']}": p["status"] for p in job["plugins"]}


async def test_the_signatures_a_job_entry_carries_reach_the_environment_check(
    jobs: Harness,
) -> None:
    entry = jobs.entry(0, "before")
    entry.signatures.add(key_id="0123456789abcdef", signature=b"s" * 64)
    job = await jobs.run("true", plugins=[entry])
    assert job["status"] == JobStatus.SUCCEEDED, job
    assert jobs.signatures == [(Signature("0123456789abcdef", b"s" * 64),)]


async def test_succeeding_job_runs_before_commands_after_on_success_and_notify(
    jobs: Harness,
) -> None:
    plugins = [
        jobs.entry(0, "before", order=2, env={"FROM_SECOND": "2"}),
        jobs.entry(1, "before", order=1, env={"FROM_FIRST": "1"}),
        jobs.entry(2, "after"),
        jobs.entry(3, "on_success"),
        jobs.entry(4, "on_failure"),
        jobs.entry(5, "notify"),
    ]
    job = await jobs.run('echo "$FROM_FIRST$FROM_SECOND $JOB_VAR $ARCADE_JOB_ID"; pwd',
                         "echo second", plugins=plugins, env={"JOB_VAR": "v"})
    assert job["status"] == "succeeded" and job["exit_code"] == 0 and job["error"] == ""
    assert _statuses(job) == {"before0": "succeeded", "before1": "succeeded",
                              "after2": "succeeded", "on_success3": "succeeded",
                              "on_failure4": "skipped", "notify5": "succeeded"}
    calls = jobs.calls()
    assert [(c["hook"], c["tag"]) for c in calls] == [
        ("before", "before1"), ("before", "before0"), ("after", "after2"),
        ("after", "on_success3"), ("notify", "notify5")]
    # The second before entry saw the first one's env and outputs.
    assert calls[1]["env"] == {"JOB_VAR": "v", "FROM_FIRST": "1"}
    assert calls[1]["outputs"] == {"before1": True}
    workdir = jobs.tmp_path / "jobs" / "job1"
    assert calls[0]["workdir"] == str(workdir)
    output = jobs.final().output_tail
    assert f"12 v job1\n{workdir}\n$ echo second\nsecond\n" in output
    assert output.startswith("$ echo")
    assert calls[2]["status"] == "succeeded" and calls[3]["stage"] == "on_success"
    assert job["plugins"][2]["result"] == {"saw": "succeeded", "exit_code": 0}
    notify = calls[4]
    assert notify["kind"] == "job.finished"
    assert notify["data"]["status"] == "succeeded" and notify["data"]["agent_id"] == "agent-1"
    assert notify["data"]["job_id"] == "job1" and "second" in notify["data"]["output_tail"]
    assert not workdir.exists()                       # the default workdir is removed
    assert [p.key for p in jobs.host.plugins()] == []  # every job instance was unloaded
    statuses = [from_pb(JobStatus, e.status) for e in jobs.events]
    assert statuses[0] == "running" and statuses[-1] == "succeeded"
    assert set(statuses[:-1]) == {"running"}


async def test_failing_command_stops_the_commands_and_runs_on_failure(jobs: Harness) -> None:
    plugins = [jobs.entry(0, "after"), jobs.entry(1, "on_success"),
               jobs.entry(2, "on_failure")]
    job = await jobs.run("echo one", "echo oops >&2; exit 3", "echo never",
                         plugins=plugins)
    assert job["status"] == "failed" and job["exit_code"] == 3
    assert job["error"] == "command 2 of 3 exited with code 3: echo oops >&2; exit 3"
    assert _statuses(job) == {"after0": "succeeded", "on_success1": "skipped",
                              "on_failure2": "succeeded"}
    output = jobs.final().output_tail
    assert "oops\n" in output and "never" not in output.replace("$ echo never", "")
    assert "$ echo never" not in output
    assert [c["exit_code"] for c in jobs.calls()] == [3, 3]


async def test_raising_before_fails_the_job_and_skips_the_commands(jobs: Harness,
                                                                   tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    plugins = [jobs.entry(0, "before", order=1, fail="no database for you"),
               jobs.entry(1, "before", order=2),
               jobs.entry(2, "after"), jobs.entry(3, "on_failure"),
               jobs.entry(4, "on_success")]
    job = await jobs.run(f"touch {marker}", plugins=plugins)
    assert job["status"] == "failed" and job["exit_code"] is None
    assert "before plugin stager (entry 0) failed: RuntimeError: no database for you" \
        in job["error"] and "the commands were skipped" in job["error"]
    assert not marker.exists()
    assert _statuses(job) == {"before0": "failed", "before1": "skipped", "after2": "succeeded",
                              "on_failure3": "succeeded", "on_success4": "skipped"}
    assert "no database for you" in job["plugins"][0]["error"]
    assert [(c["hook"], c["tag"], c.get("status")) for c in jobs.calls()] == [
        ("before", "before0", None), ("after", "after2", "failed"),
        ("after", "on_failure3", "failed")]


async def test_timeout_kills_the_whole_process_group(jobs: Harness, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # The shell starts a child that ignores SIGTERM: only SIGKILL of the group ends it. It
    # would sleep past the wait's deadline: the job ends only if the timeout kills it.
    command = (f"(trap '' TERM; sleep {3 * DEADLINE:g}) & echo $! > {pids}; echo started; "
               "wait")
    try:
        job = await jobs.run(command, timeout=2, plugins=[jobs.entry(0, "on_failure")])
        assert job["status"] == "timed_out" and job["exit_code"] is None
        assert "did not finish within the job's timeout of 2s" in job["error"]
        assert "started" in jobs.final().output_tail
        child = int(pids.read_text())
        assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"
        assert jobs.calls()[0]["status"] == "timed_out"
    finally:
        if pids.exists() and psutil.pid_exists(child := int(pids.read_text())):
            psutil.Process(child).kill()  # only when the test failed


async def test_cancel_kills_a_running_command_and_runs_on_failure(jobs: Harness) -> None:
    jobs.runner.submit(jobs.job("echo go; sleep 30", plugins=[jobs.entry(0, "on_failure"),
                                                               jobs.entry(1, "notify")]))

    await until(lambda: any("go" in e.output_tail for e in jobs.events),
                what="the command's output")
    assert jobs.runner.known() == ["job1"]
    assert jobs.runner.cancel("job1", "cancelled by the operator")
    job = await jobs.runner.wait("job1", DEADLINE)
    assert job["status"] == "cancelled" and job["error"] == "cancelled by the operator"
    assert _statuses(job) == {"on_failure0": "succeeded", "notify1": "succeeded"}
    assert jobs.calls()[-1]["data"]["status"] == "cancelled"
    assert not jobs.runner.cancel("job1")  # finished: nothing to cancel


async def test_crashing_process_plugin_is_recorded_failed_and_the_runner_goes_on(
    jobs: Harness,
) -> None:
    plugins = [jobs.entry(0, "after", isolation="process", crash=True),
               jobs.entry(1, "after", order=1)]
    job = await jobs.run("true", plugins=plugins)
    assert job["status"] == "succeeded"              # after failures do not change it
    assert _statuses(job) == {"after0": "failed", "after1": "succeeded"}
    assert "exited with code 7" in job["plugins"][0]["error"]
    calls = jobs.calls()
    assert calls[0]["pid"] != os.getpid() and calls[1]["pid"] == os.getpid()
    again = await jobs.run("echo fine", job_id="job2", plugins=[jobs.entry(0, "after")])
    assert again["status"] == "succeeded"
    assert [p.key for p in jobs.host.plugins()] == []


async def test_entry_whose_plugin_lacks_the_stage_hook_fails_the_setup(jobs: Harness,
                                                                       tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    plugins = [jobs.entry(0, "before", wheel=jobs.hookless), jobs.entry(1, "on_failure"),
               jobs.entry(2, "before")]
    job = await jobs.run(f"touch {marker}", plugins=plugins)
    assert job["status"] == "failed" and not marker.exists()
    assert "hookless@1.0.0 does not implement before()" in job["error"]
    assert _statuses(job) == {"before0": "failed", "on_failure1": "succeeded",
                              "before2": "skipped"}


async def test_workdir_from_before_is_where_commands_run(jobs: Harness, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    job = await jobs.run("pwd", plugins=[jobs.entry(0, "before", workdir=str(elsewhere))])
    assert job["status"] == "succeeded"
    assert f"$ pwd\n{elsewhere}\n" == jobs.final().output_tail
    missing = await jobs.run("pwd", job_id="job2",
                             plugins=[jobs.entry(0, "before", workdir=str(tmp_path / "nope"))])
    assert missing["status"] == "failed" and "could not start" in missing["error"]


async def test_output_is_a_bounded_tail_with_the_total_size(host: PluginHost,
                                                            tmp_path: Path) -> None:
    harness = Harness(host, tmp_path, output_limit=1000)
    try:
        job = await harness.run("head -c 5000 /dev/zero | tr '\\0' x; echo; echo end")
    finally:
        await harness.runner.close()
    event = harness.final()
    assert job["status"] == "succeeded"
    assert len(event.output_tail) == 1000 and event.output_tail.endswith("x\nend\n")
    assert event.output_size == len("$ head -c 5000 /dev/zero | tr '\\0' x; echo; echo end\n") \
        + 5000 + 1 + 4


def test_output_tail_keeps_the_end_and_counts_everything() -> None:
    tail = OutputTail(limit=4)
    for chunk in (b"ab", b"cdef", b"g"):
        tail.add(chunk)
    assert (tail.text(), tail.size) == ("defg", 7)


async def test_jobs_beyond_the_concurrency_wait_for_a_slot(host: PluginHost,
                                                          tmp_path: Path) -> None:
    harness = Harness(host, tmp_path, concurrency=1)
    try:
        for n in range(3):
            harness.runner.submit(harness.job("sleep 0.2", job_id=f"j{n}"))
        assert sorted(harness.runner.known()) == ["j0", "j1", "j2"]
        results = [await harness.runner.wait(f"j{n}", DEADLINE) for n in range(3)]
    finally:
        await harness.runner.close()
    spans = sorted((r["started_at"], r["finished_at"]) for r in results)
    assert all(r["status"] == "succeeded" for r in results)
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))


async def test_a_job_sent_twice_runs_once_and_a_finished_one_is_answered_again(
    jobs: Harness,
) -> None:
    job = jobs.job("echo once", plugins=[jobs.entry(0, "before")])
    jobs.runner.submit(job)
    jobs.runner.submit(job)
    await jobs.runner.wait("job1", DEADLINE)
    assert [c["hook"] for c in jobs.calls()] == ["before"]
    assert jobs.installs == 1
    count = len(jobs.events)
    jobs.runner.submit(job)
    await until(lambda: len(jobs.events) > count, what="the finished job's event again")
    assert from_pb(JobStatus, jobs.events[-1].status) == "succeeded" and len(jobs.calls()) == 1
    assert jobs.runner.known() == ["job1"]  # finished a moment ago: listed at Register


async def test_undelivered_final_event_is_sent_again_after_reconnect(jobs: Harness) -> None:
    jobs.connected = False
    await jobs.run("true")
    jobs.connected = True
    count = len(jobs.events)
    jobs.runner.resend()
    await until(lambda: len(jobs.events) > count, what="the final event sent again")
    assert from_pb(JobStatus, jobs.events[-1].status) == "succeeded"


async def test_close_cancels_running_jobs_and_drops_waiting_ones(host: PluginHost,
                                                                 tmp_path: Path) -> None:
    harness = Harness(host, tmp_path, concurrency=1)
    harness.runner.submit(harness.job("echo go; sleep 30", job_id="running"))
    harness.runner.submit(harness.job("true", job_id="waiting"))
    try:
        await until(lambda: any(e.job_id == "running" and "go" in e.output_tail
                                for e in harness.events), what="the running job's output")
    finally:
        await harness.runner.close(grace=5)
    final = harness.final("running")
    assert from_pb(JobStatus, final.status) == "cancelled"
    assert final.error == "cancelled: the agent is stopping"
    assert not any(e.job_id == "waiting" for e in harness.events)
    assert harness.runner.known() == ["running"]
    harness.runner.submit(harness.job("true", job_id="late"))  # refused once closing
    assert "late" not in harness.runner.known()


async def test_invalid_entry_config_and_unknown_stage_fail_the_setup(jobs: Harness) -> None:
    bad_json = jobs.entry(0, "after")
    bad_json.config_json = "{nope"
    bad_stage = jobs.entry(1, "after")
    bad_stage.stage = 99  # a stage this agent does not know (a newer server's)
    job = await jobs.run("true", plugins=[bad_json, bad_stage])
    assert job["status"] == "failed"
    assert "config_json is not valid JSON" in job["plugins"][0]["error"]
    assert "unknown Stage value 99" in job["plugins"][1]["error"]


@pytest.mark.parametrize(("policy", "reason"), [
    (JobPolicy(), "refused by the agent: this agent does not run jobs: set `[jobs] enabled = "
                  "true` in the agent's config file"),
    (JobPolicy(True, ("echo *",)), "refused by the agent: commands[1] 'touch ran; echo x' is "
                                   "not allowed on this agent: it matches none of its [jobs] "
                                   "allow patterns ['echo *']"),
])
async def test_a_job_the_agent_does_not_allow_fails_and_nothing_of_it_runs(
    host: PluginHost, tmp_path: Path, policy: JobPolicy, reason: str
) -> None:
    harness = Harness(host, tmp_path, policy=policy)
    try:
        job = await harness.run("echo hello", "touch ran; echo x",
                                plugins=[harness.entry(0, "before"), harness.entry(1, "after")])
    finally:
        await harness.runner.close(grace=5)
    assert job["status"] == "failed" and job["error"].startswith(reason), job["error"]
    assert _statuses(job) == {"before0": "skipped", "after1": "skipped"}
    assert harness.calls() == [] and harness.installs == 0
    assert not (tmp_path / "jobs").exists()  # no working directory, so no command ran
    final = harness.final()
    assert final.status == to_pb(JobStatus.FAILED) and final.error.startswith(reason)
