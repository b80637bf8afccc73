"""Drift detection end to end: a real ``arcade agent`` process notices files changed, added
or deleted inside an installed environment, reports it (REST shows ``drifted`` and the
paths), tells its ``notify`` plugins, and repairs it (policy ``repair``: the file is back,
the plugin ``running`` again, the drift kept visible) or leaves it (policy ``report``).
Bytecode: the agent never writes any into an environment, so a planted ``.pyc`` is drift."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.agent.plugkit import probe_wheel
from tests.wheelmaker import make_wheel

from .harness import AGENT_CONFIG, TRUST_HARNESS_KEY, AgentProc, Server, wait_until

#: Checks every 0.2 s (stat pass), hashes every 1 s: seconds, not an hour, for the test.
FAST = AGENT_CONFIG + "\n[drift]\ncheck_interval = 0.2\nhash_interval = 1\n"

LISTENER = '''\
import json
from arcade_core import hookimpl


class Plugin:
    def __init__(self, config):
        self.path = config["path"]

    @hookimpl
    def notify(self, event):
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"kind": event.kind, "data": event.data}) + "\\n")
'''


def _listener_wheel(directory: Path) -> Path:
    return make_wheel(directory, "listener", "1.0.0",
                      files={"listener/__init__.py": LISTENER},
                      manifest={"config_schema": {
                          "type": "object", "properties": {"path": {"type": "string"}},
                          "required": ["path"], "additionalProperties": False}})


def _actual(server: Server, agent: str, name: str) -> dict[str, Any]:
    return (server.plugins(agent).get(name) or {}).get("actual") or {}


def _online(server: Server, agent: str) -> bool:
    info = server.agent(agent)
    return bool(info and info["online"])


def _module(agent: AgentProc, name: str) -> Path:
    [env] = agent.env_dirs(name)
    site = next((agent.home / "envs" / name / env / "lib").glob("python*/site-packages"))
    return site / name / "__init__.py"


def _drifted_with(server: Server, agent: str, name: str, fragment: str) -> dict[str, Any] | None:
    actual = _actual(server, agent, name)
    if any(fragment in path for path in actual.get("drift") or []):
        return actual
    return None


def test_an_edited_added_or_deleted_file_is_detected_reported_and_repaired(
    shared_server: Server, start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    server = shared_server
    server.publish(probe_wheel(tmp_path / "w", name="drifter", metric="drifter.major"))
    server.publish(_listener_wheel(tmp_path / "w"))
    events = tmp_path / "events.jsonl"
    # The agent trusts the key the harness signs with: a repair is an install, and must carry
    # the version's signatures like one.
    agent = start_agent(server, "e2e-drift", config=FAST + TRUST_HARNESS_KEY)
    wait_until(lambda: _online(server, "e2e-drift"), what="the agent to come online")
    assert server.install("e2e-drift", "listener@1.0.0",
                          config={"path": str(events)}).json()["state"]["state"] == "running"
    assert server.install("e2e-drift", "drifter@1.0.0",
                          isolation="process").json()["state"]["state"] == "running"
    module = _module(agent, "drifter")
    original = module.read_bytes()

    # 1. Edit a file: detected, reported with its path, notify told, repaired.
    module.write_bytes(original + b"\nraise SystemExit('tampered')\n")
    seen = wait_until(lambda: _drifted_with(server, "e2e-drift", "drifter",
                                            "drifter/__init__.py (changed)"),
                      what="the edit reported as drift")
    assert seen["drift_at"] is not None
    wait_until(lambda: _actual(server, "e2e-drift", "drifter").get("state") == "running"
               and module.exists() and module.read_bytes() == original,
               what="the environment repaired and the plugin running again")
    assert "drifter/__init__.py (changed)" in " ".join(
        _actual(server, "e2e-drift", "drifter")["drift"])  # the event stays visible
    told = wait_until(lambda: [e for e in _lines(events) if e["kind"] == "plugin.drifted"],
                      what="the notify plugin to hear of the drift")
    assert told[0]["data"]["name"] == "drifter" and told[0]["data"]["policy"] == "repair"
    assert any("drifter/__init__.py (changed)" in p for p in told[0]["data"]["paths"])

    # 2. An added file (a planted bytecode cache too: never written by the agent itself).
    planted = module.parent / "__pycache__" / "__init__.cpython-311.pyc"
    planted.parent.mkdir()
    planted.write_bytes(b"not bytecode")
    wait_until(lambda: _drifted_with(server, "e2e-drift", "drifter", "__pycache__/"),
               what="the planted .pyc reported as drift")
    wait_until(lambda: _actual(server, "e2e-drift", "drifter").get("state") == "running"
               and not planted.exists(), what="the planted file gone after repair")

    # 3. A deleted file.
    module.unlink()
    wait_until(lambda: _drifted_with(server, "e2e-drift", "drifter",
                                     "drifter/__init__.py (missing)"),
               what="the deleted file reported as drift")
    wait_until(lambda: _actual(server, "e2e-drift", "drifter").get("state") == "running"
               and module.exists() and module.read_bytes() == original,
               what="the deleted file restored")
    # The listener (inline, imported into the agent) never drifted: no bytecode written.
    listener = _actual(server, "e2e-drift", "listener")
    assert listener["state"] == "running" and listener["drift"] == []
    assert not list((agent.home / "envs").rglob("*.pyc"))


def test_policy_report_leaves_the_plugin_drifted_and_the_file_as_it_is(
    shared_server: Server, start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    server = shared_server
    server.publish(probe_wheel(tmp_path / "w", name="reported", metric="reported.major"))
    agent = start_agent(server, "e2e-drift-report",
                        config=FAST.replace("hash_interval = 1\n",
                                            'hash_interval = 1\npolicy = "report"\n'))
    wait_until(lambda: _online(server, "e2e-drift-report"), what="the agent to come online")
    assert server.install("e2e-drift-report",
                          "reported@1.0.0").json()["state"]["state"] == "running"
    module = _module(agent, "reported")
    edited = module.read_bytes() + b"\n# edited\n"
    module.write_bytes(edited)
    actual = wait_until(lambda: _drifted_with(server, "e2e-drift-report", "reported",
                                              "reported/__init__.py (changed)"),
                        what="the edit reported as drift")
    assert actual["state"] == "drifted"
    assert "installed files changed" in actual["error"]
    # Several more check rounds (stat every 0.2 s, full hash every 1 s) change nothing.
    wait_until(lambda: "checked" if agent.log().count("drifted:") == 1
               and _checks_after(server, "e2e-drift-report") else None,
               what="more check rounds")
    assert _actual(server, "e2e-drift-report", "reported")["state"] == "drifted"
    assert module.read_bytes() == edited
    # A config change (the same version again, reconfigured in place) does not hide it.
    changed = server.http.put("/agents/e2e-drift-report/plugins/reported/config",
                              params={"wait": 30}, json={"scale": 2})
    assert changed.status_code == 200, changed.text
    assert _actual(server, "e2e-drift-report", "reported")["state"] == "drifted"
    assert "repaired" not in agent.log()


def _checks_after(server: Server, agent: str) -> bool:
    """True once the agent reported a heartbeat at least 2 s after its drift report (its
    drift watch went round many times meanwhile)."""
    actual = _actual(server, agent, "reported")
    info = server.agent(agent) or {}
    return bool(actual.get("drift_at") and info.get("last_seen")
                and info["last_seen"] - actual["drift_at"] >= 2.5)


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
