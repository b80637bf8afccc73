"""Local plugins (the agent's own ``plugins:``), with real ``arcade agent`` processes: a
standalone agent with no server runs the built-in ``cpu`` and a local wheel and logs their
metrics; with a server they are reported ``local``, their metrics arrive, a reconcile of the
server's plugins leaves them running, and a server assignment of the same name is ignored
(the local plugin wins, and says so)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

from tests.agent.plugkit import probe_wheel

from .harness import AGENT_CONFIG, ARCADE, AgentProc, Proc, Server, wait_until


def test_standalone_agent_runs_builtin_cpu_and_a_local_wheel(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    probe_wheel(wheels, name="solo", metric="solo.major")
    config = tmp_path / "agent.yaml"
    config.write_text(
        "collect_interval: 0.5\n"
        "plugins:\n"
        "  cpu: {interval: 0.3}\n"
        "  solo: {wheel: wheels, config: {scale: 3}}\n"     # a directory, relative
        "  memory: {enabled: false}\n")
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCADE_AGENT_")}
    agent = Proc([str(ARCADE), "agent", "--home", str(home), "--id", "solo-agent",
                  "--config", str(config)], tmp_path / "agent.log", env=env)
    agent.env = {**env, "PYTHONUNBUFFERED": "1"}  # Proc adds os.environ: none of the agent's
    agent.start()
    try:
        log = wait_until(lambda: (text := agent.log()) and "metric arcade-cpu cpu.percent"
                         in text and "metric solo solo.major" in text and text,
                         what="both local plugins' metrics in the standalone agent's log")
        assert "started standalone" in log and "no server" in log
        assert "metric solo solo.major{v=1.0.0} 3.0" in log  # its config applied
        assert "connecting to" not in log and "enroll" not in log.lower()
        assert not (home / "tls").exists()  # no identity needed without a server
        state = json.loads((home / "state.json").read_text())
        assert {p["name"]: p["local"] for p in state["plugins"]} == {"arcade-cpu": True,
                                                                      "solo": True}
        assert sorted(p.name for p in (home / "envs").iterdir()) == ["arcade-cpu", "solo"]

        # SIGHUP: the edited plugins: section applies (cpu gone, solo's config changed)
        config.write_text("plugins:\n  solo: {wheel: wheels, config: {scale: 7}}\n")
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "metric solo solo.major{v=1.0.0} 7.0" in agent.log(),
                   what="the new config applied without a restart")
        wait_until(lambda: "removed arcade-cpu@1.0.0" in agent.log(), what="cpu removed")
        assert not (home / "envs" / "arcade-cpu").exists() or not any(
            (home / "envs" / "arcade-cpu").iterdir())
        assert agent.alive
    finally:
        code = agent.stop()
        print(f"--- standalone agent (exit {code}) ---\n{agent.log()[-4000:]}")
    assert code == 0


def _actual(server: Server, agent: str, name: str) -> dict[str, object]:
    return (server.plugins(agent).get(name) or {}).get("actual") or {}


def test_local_plugins_reported_local_and_kept_by_the_servers_reconcile(
    shared_server: Server, start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    server = shared_server
    local_dir = tmp_path / "local"
    probe_wheel(local_dir, name="mine", metric="mine.major")
    config = AGENT_CONFIG + f'\n[plugins.mine]\nwheel = "{local_dir}"\ninterval = 0.3\n'
    agent = start_agent(server, "e2e-local", config=config)
    wait_until(lambda: _actual(server, "e2e-local", "mine").get("state") == "running",
               what="the local plugin reported running")
    mine = _actual(server, "e2e-local", "mine")
    assert mine["local"] is True and mine["version"] == "1.0.0"
    assert server.plugins("e2e-local")["mine"]["desired"] is None  # nobody assigned it
    wait_until(lambda: server.metrics("e2e-local", name="mine.major"),
               what="the local plugin's metrics on the server")

    # A reconcile: the server installs and removes another plugin; the local one stays.
    server.publish(probe_wheel(tmp_path / "published", name="theirs", metric="theirs.major"))
    assert server.install("e2e-local", "theirs@1.0.0").json()["state"]["state"] == "running"
    assert _actual(server, "e2e-local", "theirs")["local"] is False
    server.uninstall("e2e-local", "theirs")
    wait_until(lambda: "theirs" not in server.plugins("e2e-local"),
               what="the server's plugin removed")
    assert _actual(server, "e2e-local", "mine")["state"] == "running"
    assert [d.split("-")[0] for d in agent.env_dirs("mine")] == ["1.0.0"]

    # The server assigns the local plugin's name: the local one wins, and says why.
    server.publish(probe_wheel(tmp_path / "published", "2.0.0", name="mine",
                               metric="mine.major"))
    server.install("e2e-local", "mine@2.0.0", wait=0)
    conflict = wait_until(lambda: (a := _actual(server, "e2e-local", "mine")).get("error")
                          and a, what="the conflict reported on the local plugin")
    assert (conflict["state"], conflict["version"], conflict["local"]) == (
        "running", "1.0.0", True)
    assert "the server's assignment (mine 2.0.0) is ignored" in str(conflict["error"])
    assert [d.split("-")[0] for d in agent.env_dirs("mine")] == ["1.0.0"] and agent.alive
    since = wait_until(lambda: max((m["timestamp"] for m in
                                    server.metrics("e2e-local", name="mine.major")), default=0))
    wait_until(lambda: any(m["timestamp"] > since for m in
                           server.metrics("e2e-local", name="mine.major")),
               what="the local plugin still collecting after the conflict")
