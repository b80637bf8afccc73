"""The agent issue's end-to-end scenarios, with real ``arcade server`` and ``arcade agent``
processes, real wheels (the built-in plugins and test plugins) and real SQLite/blob stores."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.agent.plugkit import crasher_wheel, probe_wheel
from tests.waiting import DEADLINE

from .harness import AgentProc, Server, wait_until


def _running(server: Server, agent: str, name: str, version: str | None = None) -> bool:
    actual = (server.plugins(agent).get(name) or {}).get("actual") or {}
    return actual.get("state") == "running" and version in (None, actual.get("version"))


def _online(server: Server, agent: str) -> bool:
    info = server.agent(agent)
    return bool(info and info["online"] and info.get("connected", True))


def _values(server: Server, agent: str, name: str, since: float) -> list[float]:
    return [m["value"] for m in server.metrics(agent, name=name, since=since)]


def test_install_cpu_runs_reports_metrics_and_uninstall_deletes_env(
    shared_server: Server, start_agent: Callable[..., AgentProc],
    builtin_wheels: dict[str, Path], psutil_wheel: Path,
) -> None:
    server = shared_server
    agent = start_agent(server, "e2e-cpu")
    wait_until(lambda: _online(server, "e2e-cpu"), what="the agent to come online")
    server.publish(builtin_wheels["arcade-cpu"], psutil_wheel)

    response = server.install("e2e-cpu", "arcade-cpu@1.0.0")
    assert response.status_code == 200, response.json()
    assert response.json()["state"]["state"] == "running"
    assert len(agent.env_dirs("arcade-cpu")) == 1
    metrics = wait_until(lambda: server.metrics("e2e-cpu", name="cpu.percent"),
                         what="cpu.percent metrics in the REST API")
    assert {m["plugin"] for m in metrics} == {"arcade-cpu"}
    assert all(0.0 <= m["value"] <= 100.0 for m in metrics)
    assert "total" in {m["labels"].get("cpu") for m in metrics}

    server.uninstall("e2e-cpu", "arcade-cpu")
    wait_until(lambda: "arcade-cpu" not in server.plugins("e2e-cpu"),
               what="the plugin to leave the agent's plugin list")
    wait_until(lambda: agent.env_dirs("arcade-cpu") == [], what="the environment to be deleted")
    assert "removed arcade-cpu@1.0.0" in agent.log()
    settled = time.time() + 0.3
    time.sleep(1.2)                       # > 2 collect intervals: an unloaded plugin is silent
    assert _values(server, "e2e-cpu", "cpu.percent", settled) == []


def test_upgrade_runs_new_code_and_broken_version_leaves_old_running(
    shared_server: Server, start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    server = shared_server
    wheels = {v: probe_wheel(tmp_path / "w", v, name="upgrader", metric="upgrader.major",
                             broken=v == "3.0.0") for v in ("1.0.0", "2.0.0", "3.0.0")}
    for wheel in wheels.values():
        server.publish(wheel)
    agent = start_agent(server, "e2e-upgrade")
    wait_until(lambda: _online(server, "e2e-upgrade"), what="the agent to come online")

    assert server.install("e2e-upgrade", "upgrader@1.0.0").json()["state"]["state"] == "running"
    wait_until(lambda: 1.0 in _values(server, "e2e-upgrade", "upgrader.major", 0),
               what="1.0's metric")
    before_upgrade = time.time()
    assert server.install("e2e-upgrade", "upgrader@2.0.0").json()["state"]["state"] == "running"
    wait_until(lambda: 2.0 in _values(server, "e2e-upgrade", "upgrader.major", before_upgrade),
               what="2.0's metric")
    assert [d.split("-")[0] for d in agent.env_dirs("upgrader")] == ["2.0.0"]

    outcome = server.install("e2e-upgrade", "upgrader@3.0.0").json()["state"]
    assert outcome["state"] == "failed" and outcome["version"] == "3.0.0"
    assert "broken on purpose" in outcome["error"] and "2.0.0 keeps running" in outcome["error"]
    after_failure = time.time()
    values = wait_until(lambda: _values(server, "e2e-upgrade", "upgrader.major", after_failure),
                        what="metrics after the failed upgrade")
    assert set(values) == {2.0}
    assert [d.split("-")[0] for d in agent.env_dirs("upgrader")] == ["2.0.0"]


def test_crashing_process_plugin_fails_after_three_restarts_others_keep_reporting(
    shared_server: Server, start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    server = shared_server
    server.publish(probe_wheel(tmp_path / "w", name="steady", metric="steady.major"))
    server.publish(crasher_wheel(tmp_path / "w"))
    agent = start_agent(server, "e2e-crash")
    wait_until(lambda: _online(server, "e2e-crash"), what="the agent to come online")
    steady = server.install("e2e-crash", "steady@1.0.0", isolation="process").json()
    assert steady["state"]["state"] == "running"
    server.install("e2e-crash", "crasher@1.0.0", isolation="process")

    def failed() -> dict[str, object] | None:
        actual = (server.plugins("e2e-crash").get("crasher") or {}).get("actual") or {}
        return actual if actual.get("state") == "failed" else None

    actual = wait_until(failed, what="the crasher to be reported failed")
    assert actual["restarts"] == 3 and actual["isolation"] == "process"
    assert actual["error"]
    after = time.time()
    wait_until(lambda: len(_values(server, "e2e-crash", "steady.major", after)) >= 2,
               what="the other plugin to keep reporting")
    assert _running(server, "e2e-crash", "steady")

    # SIGTERM stops the agent cleanly, and no plugin process outlives it.
    assert agent.proc is not None
    children = psutil.Process(agent.proc.pid).children(recursive=True)
    assert children, "the process-isolated plugin runs in a child of the agent"
    assert agent.stop() == 0
    _gone, alive = psutil.wait_procs(children, timeout=DEADLINE)
    assert alive == []


def test_altered_blob_is_refused_by_hash_and_nothing_is_installed(
    shared_server: Server, start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    server = shared_server
    wheel = probe_wheel(tmp_path / "w", name="tampered", metric="tampered.major")
    server.publish(wheel)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    blob = server.home / "blobs" / sha[:2] / sha[2:]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    agent = start_agent(server, "e2e-tamper")
    wait_until(lambda: _online(server, "e2e-tamper"), what="the agent to come online")

    outcome = server.install("e2e-tamper", "tampered@1.0.0").json()["state"]
    assert outcome["state"] == "failed"
    assert "sha256 mismatch" in outcome["error"] and sha in outcome["error"]
    assert agent.env_dirs("tampered") == []
    cache = agent.home / "cache" / "wheels"
    assert not (cache / sha).exists()
    assert list((cache / ".partial").iterdir()) == []
    assert "refused tampered-1.0.0" in agent.log() or "refused tampered_1.0.0" in agent.log()


def test_server_and_agent_restarts_end_in_the_same_state_without_downloading(
    start_server: Callable[[], Server], start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    server = start_server().start()
    server.publish(probe_wheel(tmp_path / "w", name="durable", metric="durable.major"))
    agent = start_agent(server, "e2e-durable")
    wait_until(lambda: _online(server, "e2e-durable"), what="the agent to come online")
    assert server.install("e2e-durable", "durable@1.0.0").json()["state"]["state"] == "running"

    server.kill()                                   # a crash, not a clean stop
    wait_until(lambda: "not connected" in agent.log(), what="the agent to notice")
    server.start()                                  # same home, same ports
    wait_until(lambda: _online(server, "e2e-durable"), what="the agent to reconnect")
    wait_until(lambda: _running(server, "e2e-durable", "durable", "1.0.0"),
               what="the same plugin running after the server restart")
    assert server.plugins("e2e-durable")["durable"]["in_sync"]
    back = time.time()
    wait_until(lambda: _values(server, "e2e-durable", "durable.major", back),
               what="metrics after the server restart")
    assert agent.log().count("downloaded ") == 1

    agent.kill()                                    # the agent crashes
    env_before = agent.env_dirs("durable")
    again = start_agent(server, "e2e-durable", home=agent.home)
    wait_until(lambda: "restored durable@1.0.0 from disk" in again.log(),
               what="the plugin to come back from disk")
    back = time.time()
    wait_until(lambda: _values(server, "e2e-durable", "durable.major", back),
               what="metrics from the restarted agent")
    wait_until(lambda: _running(server, "e2e-durable", "durable", "1.0.0"), what="running")
    assert "downloaded " not in again.log()
    assert "resuming download" not in again.log()
    assert again.env_dirs("durable") == env_before


def test_agent_started_before_the_server_connects_when_it_appears(
    start_server: Callable[[], Server], start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    server = start_server()
    server.start()                                  # once, for a token and the CA's pin
    enroll = server.enrollment_env()
    server.stop()
    agent = start_agent(server, "e2e-early", enroll=enroll)  # enrolls once the server is back
    wait_until(lambda: agent.log().count("retrying in") >= 3,
               what="the agent to retry several times")
    assert agent.alive
    server.start()
    wait_until(lambda: _online(server, "e2e-early"), what="the agent to connect")
    server.publish(probe_wheel(tmp_path / "w", name="late", metric="late.major"))
    assert server.install("e2e-early", "late@1.0.0").json()["state"]["state"] == "running"
