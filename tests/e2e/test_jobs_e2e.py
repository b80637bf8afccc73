"""The jobs issue's end-to-end scenarios: real ``arcade server`` and ``arcade agent``
processes, real plugin wheels (the built-in job plugins and a test plugin whose behaviour per
stage is set by its config), real shell commands, a real local HTTP server for the webhook.

One server and one agent serve most scenarios (each job is independent); the offline-agent
scenario starts an agent of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.agent.jobkit import stager_wheel
from tests.waiting import DEADLINE

from .harness import ARCADE, JOBS_AGENT_CONFIG, REPO, AgentProc, Server, wait_until

FINAL = ("succeeded", "failed", "cancelled", "timed_out")
AGENT_ID = "e2e-jobs"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, builtin_wheels: dict[str, Path]
          ) -> Iterator[tuple[Server, AgentProc, Path]]:
    """A server with the job plugins published and one connected agent; yields them and a
    scratch directory."""
    base = tmp_path_factory.mktemp("e2e-jobs")
    server = Server(base / "server-home", base / "server.log").start()
    agent = AgentProc(base / AGENT_ID, server.grpc_target, AGENT_ID, base / "agent.log",
                      config=JOBS_AGENT_CONFIG)
    try:
        server.publish(stager_wheel(base / "wheels"))
        server.publish(builtin_wheels["arcade-workspace"])
        server.publish(builtin_wheels["arcade-notify-webhook"])
        agent.start()
        wait_until(lambda: (server.agent(AGENT_ID) or {}).get("connected"),
                   what="the agent to connect")
        yield server, agent, base
    finally:
        code = agent.stop()
        server.close()
        print(f"--- agent log (exit {code}) ---\n{agent.log()[-8000:]}")
        print(f"--- server log ---\n{server.log()[-4000:]}")


def _create(server: Server, *commands: str, agent: str = AGENT_ID, **body: Any
            ) -> dict[str, Any]:
    response = server.http.post("/jobs", json={"agent": agent, "commands": list(commands),
                                               **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _job(server: Server, job_id: str) -> dict[str, Any]:
    response = server.http.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def _finished(server: Server, job_id: str, timeout: float = DEADLINE) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = _job(server, job_id)
        return job if job["status"] in FINAL else None

    return wait_until(done, timeout, what=f"job {job_id} to finish")


def _stager(stage: str, log: Path, tag: str, order: int = 0, **config: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"plugin": "stager@1.0.0", "stage": stage, "order": order,
                             "config": {"log": str(log), "tag": tag, **config}}
    if config.pop("process", False):
        entry["isolation"] = "process"
        entry["config"].pop("process")
    return entry


def _calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _statuses(job: dict[str, Any]) -> dict[str, str]:
    return {p["stage"]: p["status"] for p in job["plugins"]}


def test_succeeding_and_failing_commands_run_and_skip_the_right_stages(
    setup: tuple[Server, AgentProc, Path],
) -> None:
    server, _agent, base = setup
    outcomes = {}
    for name, command in (("ok", "echo all good"), ("bad", "echo broken >&2; exit 4")):
        log = base / f"stages-{name}.jsonl"
        plugins = [_stager(stage, log, stage)
                   for stage in ("before", "after", "on_success", "on_failure", "notify")]
        created = _create(server, command, plugins=plugins, timeout=60)
        assert created["status"] == "queued" and created["connected"] is True
        outcomes[name] = (_finished(server, created["id"]), _calls(log))

    ok, ok_calls = outcomes["ok"]
    assert (ok["status"], ok["exit_code"]) == ("succeeded", 0)
    assert _statuses(ok) == {"before": "succeeded", "after": "succeeded",
                             "on_success": "succeeded", "on_failure": "skipped",
                             "notify": "succeeded"}
    assert [c["tag"] for c in ok_calls] == ["before", "after", "on_success", "notify"]
    assert ok["output_tail"] == "$ echo all good\nall good\n"
    assert ok["plugins"][1]["result"] == {"saw": "succeeded", "exit_code": 0}
    assert all(p["started_at"] and p["completed_at"] for p in ok["plugins"]
               if p["status"] == "succeeded")
    assert ok["started_at"] <= ok["finished_at"] and ok["duration"] >= 0

    bad, bad_calls = outcomes["bad"]
    assert (bad["status"], bad["exit_code"]) == ("failed", 4)
    assert "exited with code 4" in bad["error"]
    assert _statuses(bad) == {"before": "succeeded", "after": "succeeded",
                              "on_success": "skipped", "on_failure": "succeeded",
                              "notify": "succeeded"}
    assert [c["tag"] for c in bad_calls] == ["before", "after", "on_failure", "notify"]
    assert bad_calls[-1]["data"]["status"] == "failed"
    assert "broken" in bad["output_tail"]


def test_raising_before_plugin_skips_the_commands(setup: tuple[Server, AgentProc, Path]
                                                  ) -> None:
    server, _agent, base = setup
    log, marker = base / "raising.jsonl", base / "raising-ran"
    created = _create(server, f"touch {marker}", plugins=[
        _stager("before", log, "b", fail="the database is down"),
        _stager("on_failure", log, "f"),
    ])
    job = _finished(server, created["id"])
    assert job["status"] == "failed" and job["exit_code"] is None
    assert "RuntimeError: the database is down" in job["error"]
    assert "the commands were skipped" in job["error"]
    assert not marker.exists()
    assert _statuses(job) == {"before": "failed", "on_failure": "succeeded"}
    assert "the database is down" in job["plugins"][0]["error"]


def test_job_timeout_kills_the_command_and_ends_timed_out(
    setup: tuple[Server, AgentProc, Path],
) -> None:
    server, _agent, base = setup
    pid_file = base / "timeout.pid"
    # The command would outlast the wait for the job: it finishes only if it is killed.
    created = _create(server, f"sleep {3 * DEADLINE:g} & echo $! > {pid_file}; wait",
                      timeout=2)
    job = _finished(server, created["id"])
    assert job["status"] == "timed_out" and job["exit_code"] is None
    assert "timeout of 2s" in job["error"]
    pid = int(pid_file.read_text())
    wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie",
               what="the command's process to be killed")


def test_cancel_kills_the_running_command(setup: tuple[Server, AgentProc, Path]) -> None:
    server, _agent, base = setup
    log = base / "cancel.jsonl"
    created = _create(server, f"echo started; sleep {3 * DEADLINE:g}",
                      plugins=[_stager("on_failure", log, "f")])
    wait_until(lambda: "started" in _job(server, created["id"])["output_tail"],
               what="the command to start")
    response = server.http.post(f"/jobs/{created['id']}/cancel")
    assert response.status_code == 202 and response.json()["cancel_sent"] is True
    job = _finished(server, created["id"])
    assert job["status"] == "cancelled"  # before the command's end, past the deadline
    assert _statuses(job) == {"on_failure": "succeeded"}
    assert _calls(log)[0]["status"] == "cancelled"
    again = server.http.post(f"/jobs/{created['id']}/cancel")
    assert again.status_code == 409


def test_crashing_process_job_plugin_is_recorded_failed_and_the_agent_lives_on(
    setup: tuple[Server, AgentProc, Path],
) -> None:
    server, agent, base = setup
    log = base / "crash.jsonl"
    created = _create(server, "echo fine", plugins=[
        _stager("after", log, "crasher", crash=True, process=True),
        _stager("notify", log, "n"),
    ])
    job = _finished(server, created["id"])
    assert job["status"] == "succeeded"
    assert _statuses(job) == {"after": "failed", "notify": "succeeded"}
    assert "exited with code 7" in job["plugins"][0]["error"]
    assert job["plugins"][0]["isolation"] == "process"
    crash_pid = _calls(log)[0]["pid"]
    assert agent.proc is not None and crash_pid != agent.proc.pid
    assert agent.alive
    follow_up = _finished(server, _create(server, "echo still here")["id"])
    assert follow_up["status"] == "succeeded"


class _Hooks(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length))
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhook_plugin_delivers_job_finished_and_workspace_gives_the_workdir(
    setup: tuple[Server, AgentProc, Path],
) -> None:
    server, _agent, base = setup
    hooks = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    thread = threading.Thread(target=hooks.serve_forever, daemon=True)
    thread.start()
    root = base / "workspaces"
    try:
        url = f"http://127.0.0.1:{hooks.server_address[1]}/hook"
        created = _create(server, "pwd", "echo $ARCADE_WORKSPACE > seen.txt; ls", plugins=[
            {"plugin": "arcade-workspace@1", "stage": "before", "config": {"root": str(root)}},
            {"plugin": "arcade-workspace@1", "stage": "after", "config": {"root": str(root)}},
            {"plugin": "arcade-notify-webhook@1", "stage": "notify",
             "config": {"url": url, "headers": {"X-Test": "yes"}, "retries": 1}},
        ])
        job = _finished(server, created["id"])
        workspace = root / created["id"]
        assert job["status"] == "succeeded", job
        assert job["output_tail"].startswith(f"$ pwd\n{workspace}\n")
        assert "seen.txt" in job["output_tail"]
        assert job["plugins"][0]["result"]["workdir"] == str(workspace)
        assert job["plugins"][1]["result"] == {"removed": True, "path": str(workspace)}
        assert not workspace.exists()
        assert job["plugins"][2]["status"] == "succeeded"
        wait_until(lambda: _Hooks.received, what="the webhook to be called")
        [(headers, event)] = _Hooks.received
        assert headers["X-Test"] == "yes" and headers["X-Arcade-Event"] == "job.finished"
        assert event["kind"] == "job.finished"
        assert event["data"]["job_id"] == created["id"]
        assert event["data"]["status"] == "succeeded" and event["data"]["exit_code"] == 0
        assert event["data"]["agent_id"] == AGENT_ID
        assert event["data"]["workdir"] == str(workspace)
    finally:
        hooks.shutdown()
        hooks.server_close()


def test_cli_run_follows_the_job_and_exits_with_its_exit_code(
    setup: tuple[Server, AgentProc, Path],
) -> None:
    server, _agent, base = setup
    log = base / "cli.jsonl"

    def arcade(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ARCADE), *args], capture_output=True, text=True,
                              timeout=timeout, check=False, cwd=REPO,
                              env={**os.environ, "ARCADE_API": server.url, "COLUMNS": "200",
                                   "ARCADE_TOKEN": server.admin_token})

    done = arcade("run", "--agent", AGENT_ID, "--plugin", "stager@1:before:1",
                  "--plugin", "stager:on_failure", "--config-for", "stager",
                  json.dumps({"log": str(log), "env": {"GREETING": "hello"}}),
                  "--env", "WHO=world", "--", 'echo "$GREETING $WHO"; exit 3')
    assert done.returncode == 3, done.stderr
    assert 'hello world\n' in done.stdout
    assert "$ echo" in done.stdout
    assert "failed (exit code 3)" in done.stderr and "Traceback" not in done.stderr
    assert "stager@1.0.0 (before, order 1): succeeded" in done.stderr
    assert [c["hook"] for c in _calls(log)] == ["before", "after"]

    timed = arcade("run", "--agent", AGENT_ID, "--timeout", "0.5", "--", "sleep", "30")
    assert timed.returncode == 124, timed.stderr
    assert "timed_out" in timed.stderr

    listed = json.loads(arcade("jobs", "--agent", AGENT_ID, "--status", "timed_out",
                               "--json").stdout)
    assert listed and listed[0]["commands"] == ["sleep 30"]
    job_id = listed[0]["id"]
    shown = arcade("job", job_id)
    assert shown.returncode == 0 and f"job {job_id}" in shown.stdout
    assert "timed_out" in shown.stdout and "command 1: sleep 30" in shown.stdout
    assert json.loads(arcade("job", job_id, "--json").stdout)["status"] == "timed_out"
    missing = arcade("job", "nope")
    assert missing.returncode == 1 and "no job with id 'nope'" in missing.stderr
    bad = arcade("run", "--agent", AGENT_ID, "--plugin", "stager:during", "--", "true")
    assert bad.returncode == 2 and "stage 'during' is not one of" in bad.stderr


def test_job_queued_for_an_offline_agent_runs_when_it_connects(
    setup: tuple[Server, AgentProc, Path], start_agent: Callable[..., AgentProc],
) -> None:
    server, _agent, base = setup
    agent = start_agent(server.grpc_target, "e2e-jobs-later", config=JOBS_AGENT_CONFIG)
    wait_until(lambda: (server.agent("e2e-jobs-later") or {}).get("connected"),
               what="the second agent to connect")
    assert agent.stop() == 0
    wait_until(lambda: not (server.agent("e2e-jobs-later") or {}).get("connected"),
               what="the server to see it gone")
    log = base / "offline.jsonl"
    created = _create(server, "echo ran late", agent="e2e-jobs-later",
                      plugins=[_stager("before", log, "b")])
    assert created["connected"] is False
    assert _job(server, created["id"])["status"] == "queued"
    again = start_agent(server.grpc_target, "e2e-jobs-later", home=agent.home,
                        config=JOBS_AGENT_CONFIG)
    job = _finished(server, created["id"])
    assert job["status"] == "succeeded" and "ran late" in job["output_tail"]
    assert again.alive
    # The plugin's wheel was downloaded on demand into the same verified cache.
    assert "downloaded stager" in again.log()


def test_an_agent_without_jobs_enabled_is_refused_at_creation_and_refuses_itself(
    setup: tuple[Server, AgentProc, Path], start_agent: Callable[..., AgentProc],
) -> None:
    """The server refuses a job for an agent that did not opt in (409); and an agent that
    turned jobs off after a job was queued for it fails that job without running it."""
    server, _agent, base = setup
    agent = start_agent(server.grpc_target, "e2e-no-jobs")
    wait_until(lambda: (server.agent("e2e-no-jobs") or {}).get("connected"),
               what="the agent without jobs to connect")
    refused = server.http.post("/jobs", json={"agent": "e2e-no-jobs", "commands": ["id"]})
    assert refused.status_code == 409, refused.text
    assert "`[jobs] enabled = true`" in refused.json()["error"]

    # Queued while it allowed jobs and was offline; it comes back with jobs off.
    assert agent.stop() == 0
    enabled = start_agent(server.grpc_target, "e2e-no-jobs", home=agent.home,
                          config=JOBS_AGENT_CONFIG)
    wait_until(lambda: (server.agent("e2e-no-jobs") or {}).get("jobs", {}).get("enabled"),
               what="the agent to register with jobs enabled")
    assert enabled.stop() == 0
    wait_until(lambda: not (server.agent("e2e-no-jobs") or {}).get("connected"),
               what="the server to see it gone")
    marker = base / "must-not-exist"
    created = _create(server, f"touch {marker}", agent="e2e-no-jobs")
    start_agent(server.grpc_target, "e2e-no-jobs", home=agent.home)
    job = _finished(server, created["id"])
    assert job["status"] == "failed", job
    assert job["error"].startswith("refused by the agent: this agent does not run jobs"), job
    assert not marker.exists()
