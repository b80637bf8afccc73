"""``arcade status`` (fleet and one agent), ``metrics``, ``versions`` and ``agents delete``
against a real server (in-process through the ``arcade`` dispatcher, real HTTP), and the
units they print numbers in."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest

from arcade_server.cli._status import _plugin_cells
from arcade_server.cli._units import human_value, parse_since, short
from arcade_server.runner import ServerThread
from arcade_server.services import agents, metrics
from arcade_server.services.status_reports import ReportedPlugin
from tests.server.conftest import Arcade
from tests.server.helpers import ProtocolAgent, plugin_wheel, unique


def _register(server: ServerThread, agent_id: str, labels: dict[str, str],
              *plugins: ReportedPlugin, seen: float | None = None) -> None:
    server.state.db.call(agents.register, agents.AgentInfo(
        agent_id=agent_id, labels=labels, plugins=list(plugins)), now=seen)


def test_units_are_for_people() -> None:
    assert human_value(512, "bytes") == "512 B"
    assert human_value(3 * 1024**2 + 1024**2 // 2, "bytes") == "3.5 MiB"
    assert human_value(5 * 1024**3, "B") == "5.0 GiB"
    assert human_value(12.345, "percent") == "12.3%"
    assert human_value(0.25, "seconds") == "250 ms"
    assert human_value(90, "s") == "1.5 m"
    assert human_value(1234567.0, "requests") == "1.235e+06 requests"
    assert human_value(3.0, "") == "3"
    assert parse_since("10m", now=1000.0) == 400.0
    assert parse_since("2h", now=10_000.0) == 2800.0
    assert parse_since("1764000000") == 1764000000.0
    assert parse_since("2026-12-03T10:00:00+00:00") == 1796292000.0
    with pytest.raises(ValueError, match="30s, 10m, 2h"):
        parse_since("yesterday")
    assert short("first line\nsecond", 8) == "first l…"


def test_a_plugin_row_shows_health_fields_when_the_server_sends_them() -> None:
    """The health fields come from the "truth" part; absent, they show as -."""
    now = time.time()
    row = _plugin_cells({"name": "cpu", "desired": {"version": "1.0"}, "actual": {
        "version": "1.0", "state": "degraded", "error": "collect raised ValueError: bad\n...",
        "error_at": now - 120, "errors": 4, "restarts": 2, "last_collect_at": now - 5,
        "pid": 4242, "rss": 12 * 1024**2, "stale": False}})
    texts = [c if isinstance(c, str) else c.text for c in row]
    assert texts[:6] == ["cpu", "1.0", "1.0", "degraded", "2", "4"]
    assert texts[6] == "collect raised ValueError: bad (2m ago)"
    assert texts[7] == "5s ago" and texts[8] == "4242" and texts[9] == "12.0 MiB"
    bare = _plugin_cells({"name": "cpu", "desired": None, "actual": {
        "version": "1.0", "state": "running", "error": "", "restarts": 0, "stale": True}})
    texts = [c if isinstance(c, str) else c.text for c in bare]
    assert texts[3] == "running (stale)" and texts[5] == "-" and texts[9] == "-"
    local = _plugin_cells({"name": "cpu", "desired": None, "actual": {
        "version": "1.0", "state": "running", "restarts": 0, "stale": False, "local": True}})
    cell = local[3]
    assert not isinstance(cell, str) and (cell.text, cell.style) == ("running (local)", "green")


def test_status_shows_the_fleet_with_counts_and_stale_plugins(
    arcade: Arcade, server: ServerThread,
) -> None:
    team = unique("team")
    _register(server, f"{team}-up", {"team": team}, ReportedPlugin("cpu", "1.0.0", "running"))
    _register(server, f"{team}-down", {"team": team},
              ReportedPlugin("cpu", "1.0.0", "failed", error="x" * 300),
              seen=time.time() - 3600)
    code, out, err = arcade("status", "--selector", f"team={team}")
    assert code == 0, err
    assert f"{team}-up" in out and f"{team}-down" in out
    assert "failed (stale)" in out and "running" in out
    assert "x" * 61 not in out                               # the last error is shortened
    assert out.strip().splitlines()[-1] == (
        "2 agent(s): 1 online, 1 offline; plugins: failed 1, running 1 (1 stale)")
    code, out, _ = arcade("status", "--selector", f"team={team}", "--json")
    body = json.loads(out)
    assert [a["id"] for a in body["agents"]] == [f"{team}-down", f"{team}-up"]
    assert body["agents"][0]["plugins"][0]["actual"]["error"] == "x" * 300  # raw in --json

    code, out, _ = arcade("status", "--agent", f"{team}-down")
    assert code == 0 and "failed (stale)" in out and "is offline" in out
    code, out, _ = arcade("status", "--selector", "team=nobody-has-it")
    assert code == 0 and out.startswith("no agents match team=nobody-has-it: ")
    code, _, err = arcade("status", "--selector", "novalue")
    assert code == 2 and "key=value" in err
    code, _, err = arcade("status", "--agent", "a", "--selector", "k=v")
    assert code == 2 and "not both" in err
    bare = unique("bare")
    _register(server, bare, {})
    code, out, _ = arcade("status", "--agent", bare)
    assert code == 0 and out == (f"no plugins on {bare} yet: install one with `arcade "
                                 f"install NAME --agent {bare}`\n")


def test_metrics_show_units_latest_values_and_since(arcade: Arcade, server: ServerThread
                                                    ) -> None:
    agent_id = unique("agent")
    _register(server, agent_id, {})
    now = time.time()
    server.state.db.call(metrics.store_batch, agent_id, [
        *(metrics.MetricData("mem", "memory.used", float(i * 1024**2), {}, "bytes", now - 600 + i)
          for i in range(1, 4)),
        metrics.MetricData("cpu", "cpu.percent", 42.123, {}, "percent", now - 30),
        metrics.MetricData("cpu", "cpu.busy", 0.5, {}, "seconds", now - 30),
    ], dropped=0)
    code, out, err = arcade("metrics", "--agent", agent_id)
    assert code == 0, err
    assert "1.0 MiB" in out and "3.0 MiB" in out and "42.1%" in out and "500 ms" in out
    code, out, _ = arcade("metrics", "--agent", agent_id, "--latest")
    assert "3.0 MiB" in out and "1.0 MiB" not in out and "2.0 MiB" not in out
    code, out, _ = arcade("metrics", "--agent", agent_id, "--since", "5m", "--json")
    assert sorted(m["name"] for m in json.loads(out)) == ["cpu.busy", "cpu.percent"]
    assert {m["value"] for m in json.loads(out)} == {42.123, 0.5}       # raw in --json
    code, out, _ = arcade("metrics", "--agent", agent_id, "--since", "1m", "--name", "memory.*")
    assert code == 0 and out.startswith("no metrics named memory.* since 1m from ")
    code, _, err = arcade("metrics", "--agent", agent_id, "--since", "soon")
    assert code == 2 and "--since 'soon'" in err


def test_versions_lists_and_deletes(arcade: Arcade, server: ServerThread, tmp_path: Path
                                    ) -> None:
    name = unique()
    for version in ("1.0.0", "2.0.0"):
        assert arcade("publish", str(plugin_wheel(tmp_path / version, name, version)))[0] == 0
    code, out, err = arcade("versions", name)
    assert code == 0, err
    assert out.index("2.0.0") < out.index("1.0.0")            # newest first
    code, out, _ = arcade("versions", "delete", f"{name}@1.0.0")
    assert code == 0 and out == f"deleted {name}@1.0.0\n"
    code, out, _ = arcade("versions", name, "--json")
    assert [v["version"] for v in json.loads(out)] == ["2.0.0"]
    code, _, err = arcade("versions", "delete", name)
    assert code == 2 and "NAME@VERSION" in err
    code, _, err = arcade("versions", "no-such-plugin-here")
    assert code == 1 and "no-such-plugin-here" in err


async def test_agents_delete_is_refused_online_unless_forced_and_revokes(
    arcade: Arcade, server: ServerThread,
) -> None:
    import asyncio

    agent = ProtocolAgent(server)
    try:
        await agent.connect()
        await agent.desired()
        code, _, err = await asyncio.to_thread(arcade, "agents", "delete", agent.agent_id)
        assert code == 1 and "is online" in err and "--force" in err
        code, out, err = await asyncio.to_thread(
            arcade, "agents", "delete", agent.agent_id, "--force")
        assert code == 0, err
        assert out.startswith(f"deleted agent {agent.agent_id} (") and "revoked" in out
        assert "stream closed" in out
        with pytest.raises(grpc.aio.AioRpcError) as ended:   # its stream ends: revoked
            while True:
                await agent.recv(timeout=30)
        assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
        code, out, _ = await asyncio.to_thread(arcade, "agents", "--json")
        assert agent.agent_id not in [a["id"] for a in json.loads(out)]
        # It cannot come back with its certificate.
        again = ProtocolAgent(server, agent.agent_id, credentials=agent.credentials)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await again.connect()
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        finally:
            await again.close()
    finally:
        await agent.close()
    gone = unique("gone")
    _register(server, gone, {}, seen=time.time() - 3600)
    code, out, _ = arcade("agents", "delete", gone)              # offline: no --force needed
    assert code == 0 and out.startswith(f"deleted agent {gone}")
    code, _, err = arcade("agents", "delete", gone)
    assert code == 1 and gone in err


def test_status_of_an_agent_shows_drift_stored_from_its_reports(
    arcade: Arcade, server: ServerThread,
) -> None:
    """Drift an agent reports is stored (bounded, each path clipped), served by REST and
    printed by ``arcade status --agent`` one line per plugin, repaired or still drifted."""
    agent_id = unique("drifty")
    found = time.time() - 60
    paths = tuple(f"lib/python3.11/site-packages/p/m{i}.py (changed)" for i in range(30))
    _register(server, agent_id, {},
              ReportedPlugin("edited", "1.0.0", "drifted", error="installed files changed",
                             drift=("lib/x.py (changed)", "bin/tool (added)"),
                             drift_at=found),
              ReportedPlugin("fixed", "1.0.0", "running", drift=(*paths, "y" * 5000),
                             drift_at=found),
              ReportedPlugin("clean", "1.0.0", "running"))
    code, out, _ = arcade("status", "--agent", agent_id, "--json")
    actual = {p["name"]: p["actual"] for p in json.loads(out)}
    assert actual["edited"]["drift"] == ["lib/x.py (changed)", "bin/tool (added)"]
    assert actual["edited"]["drift_at"] == pytest.approx(found)
    assert len(actual["fixed"]["drift"]) == 21                      # bounded when stored
    assert actual["clean"]["drift"] == [] and actual["clean"]["drift_at"] is None
    code, out, err = arcade("status", "--agent", agent_id)
    assert code == 0, err
    lines = out.splitlines()
    assert "drift edited (1m ago): lib/x.py (changed), bin/tool (added)" in lines
    assert any(line.startswith("drift fixed (1m ago, repaired): lib/python3.11/")
               for line in lines)
    assert not any(line.startswith("drift clean") for line in lines)
    assert "drifted" in out


def test_status_of_an_agent_shows_limits_and_malformed_lines_of_its_children(
    arcade: Arcade, server: ServerThread,
) -> None:
    """The limits in force and bad protocol lines an agent reports are stored, served by
    REST and printed under the table for process and exec plugins (inline ones cannot be
    limited: their status says so in ``--json`` and the table stays quiet)."""
    agent_id = unique("limited")
    _register(server, agent_id, {},
              ReportedPlugin("shell", "1.0.0", "running", isolation="exec",
                             limits="memory 32Mi: watchdog + rlimit", malformed=3),
              ReportedPlugin("inside", "1.0.0", "running", isolation="inline",
                             limits="none: runs inside the agent"))
    code, out, _ = arcade("status", "--agent", agent_id, "--json")
    actual = {p["name"]: p["actual"] for p in json.loads(out)}
    assert actual["shell"]["limits"] == "memory 32Mi: watchdog + rlimit"
    assert actual["shell"]["malformed"] == 3 and actual["inside"]["malformed"] == 0
    assert actual["inside"]["limits"] == "none: runs inside the agent"
    code, out, err = arcade("status", "--agent", agent_id)
    assert code == 0, err
    lines = out.splitlines()
    assert "limits shell: memory 32Mi: watchdog + rlimit" in lines
    assert (f"malformed shell: 3 protocol lines that were not messages (see `arcade logs "
            f"shell --agent {agent_id}`)") in lines
    assert not any(line.startswith(("limits inside", "malformed inside")) for line in lines)
