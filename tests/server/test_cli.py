"""The ``arcade`` operator commands against a real server (typer's CliRunner, real HTTP)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arcade_server.cli import app
from arcade_server.runner import ServerThread
from arcade_server.services import agents
from tests.server.helpers import plugin_wheel, unique
from tests.wheelmaker import make_wheel

runner = CliRunner()


def arcade(server: ServerThread, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--api", server.http_url], env={"COLUMNS": "250"})
    return result.exit_code, result.stdout, result.stderr


def test_publish_then_list_and_show_plugins(server: ServerThread, tmp_path: Path) -> None:
    name = unique()
    wheel = plugin_wheel(tmp_path, name, "1.0.0", summary="cli test plugin")
    code, out, err = arcade(server, "publish", str(wheel))
    assert code == 0, err
    assert f"published: {name}@1.0.0" in out
    code, out, _ = arcade(server, "publish", str(wheel))
    assert code == 0 and "already published (identical)" in out
    code, out, _ = arcade(server, "plugins")
    assert code == 0 and name in out
    code, out, _ = arcade(server, "plugins", name)
    assert code == 0 and "1.0.0" in out
    code, out, _ = arcade(server, "plugins", "--json")
    assert name in [p["name"] for p in json.loads(out)]
    code, out, _ = arcade(server, "publish", str(wheel), "--validate", "--json")
    assert code == 0 and json.loads(out)["valid"] is True


def test_publish_errors_are_one_line_without_traceback(server: ServerThread,
                                                       tmp_path: Path) -> None:
    bad = make_wheel(tmp_path, unique(), extra_members={"../evil.py": b""})
    code, out, err = arcade(server, "publish", str(bad))
    assert code == 1
    assert err.startswith("error: ")
    assert "evil.py" in err
    assert "Traceback" not in err + out
    code, _, err = arcade(server, "publish", str(tmp_path / "missing.whl"))
    assert code == 2 and "is not a file" in err


def test_install_uninstall_and_config_through_the_cli(server: ServerThread,
                                                      tmp_path: Path) -> None:
    name = unique()
    agent_id = unique("agent")
    server.state.db.call(agents.register, agents.AgentInfo(agent_id=agent_id,
                                                           labels={"team": "cli"}))
    arcade(server, "publish", str(plugin_wheel(tmp_path, name, "1.0.0")))
    code, out, err = arcade(server, "install", f"{name}@1.0.0", "--agent", agent_id,
                            "--config", '{"threshold": 2}', "--json")
    assert code == 0, err
    body = json.loads(out)
    assert (body["version"], body["config"]["threshold"], body["revision"]) == ("1.0.0", 2, 1)
    code, out, _ = arcade(server, "config", name, '{"label": "z"}', "--agent", agent_id)
    assert code == 0 and '"label": "z"' in out and "revision 2" in out
    code, out, _ = arcade(server, "status", "--agent", agent_id)
    assert code == 0 and name in out
    code, out, _ = arcade(server, "agents")
    assert code == 0 and agent_id in out and "team=cli" in out
    code, out, _ = arcade(server, "agents", "--json")
    assert agent_id in [a["id"] for a in json.loads(out)]
    code, out, err = arcade(server, "install", name, "--selector", "team=cli")
    assert code == 0, err
    assert "1 agent(s)" in out
    code, out, _ = arcade(server, "uninstall", name, "--agent", agent_id)
    assert code == 0 and "removed" in out
    code, _, err = arcade(server, "uninstall", name, "--agent", agent_id)
    assert code == 1 and "is not assigned" in err


def test_install_with_wait_times_out_with_a_clear_error(server: ServerThread,
                                                        tmp_path: Path) -> None:
    name = unique()
    agent_id = unique("agent")
    server.state.db.call(agents.register, agents.AgentInfo(agent_id=agent_id))
    arcade(server, "publish", str(plugin_wheel(tmp_path, name)))
    code, _, err = arcade(server, "install", name, "--agent", agent_id, "--wait", "0.3")
    assert code == 1
    assert "timed out after 0.3s" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["install", "x@1", "--agent", "a", "--selector", "k=v"], "exactly one of"),
        (["install", "x@1"], "exactly one of"),
        (["install", "x@1", "--agent", "a", "--config", "{nope"], "not valid JSON"),
        (["install", "x@1", "--agent", "a", "--config", "[1]"], "must be a JSON object"),
        (["install", "x@1", "--agent", "a", "--isolation", "vm"], "inline"),
        (["install", "x@1", "--selector", "novalue"], "key=value"),
    ],
)
def test_bad_usage_exits_2_with_the_reason(server: ServerThread, args: list[str],
                                           message: str) -> None:
    code, _, err = arcade(server, *args)
    assert code == 2
    assert message in err


def test_server_errors_are_printed_as_one_line(server: ServerThread) -> None:
    code, _, err = arcade(server, "install", "ghost-plugin", "--agent", "ghost-agent")
    assert code == 1
    assert err.strip() == "error: no agent with id 'ghost-agent' has registered; list agents " \
                          "with GET /api/v1/agents"


def test_unreachable_api_is_reported_clearly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = runner.invoke(app, ["plugins", "--api", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert f"cannot reach the Arcade API at http://127.0.0.1:{port}" in result.stderr
    env_result = runner.invoke(app, ["agents"], env={"ARCADE_API": f"http://127.0.0.1:{port}"})
    assert "cannot reach the Arcade API" in env_result.stderr


def test_importing_the_cli_does_not_import_the_server_stack() -> None:
    code = (
        "import sys, arcade_server.cli\n"
        "heavy = [m for m in ('fastapi', 'sqlalchemy', 'grpc', 'uvicorn') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.stdout.strip() == ""


def test_publish_fetch_deps_adds_the_dependency_wheels(
    server: ServerThread, tmp_path: Path, dependency_wheelhouse: Path
) -> None:
    from arcade_server.wheelhouse import download_wheels

    download_wheels(["six"], dependency_wheelhouse)  # cached after the first run
    name = unique()
    wheel = plugin_wheel(tmp_path, name, requires=["six>=1.10", "pluggy>=1"])
    code, out, err = arcade(server, "publish", str(wheel), "--fetch-deps", "--wheelhouse",
                            str(dependency_wheelhouse), "--json")
    assert code == 0, err
    body = json.loads(out)
    assert [w["name"] for w in body["wheels"]] == [name, "six"]
