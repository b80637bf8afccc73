"""``arcade install --interval/--memory/--cpu/--disk``, ``arcade config`` changing them in
place (with or without a config) and the interval column of ``arcade status --agent``, against
a real server (in-process through the ``arcade`` dispatcher, real HTTP)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcade_server.runner import ServerThread
from arcade_server.services import agents
from tests.server.conftest import Arcade
from tests.server.helpers import plugin_wheel, unique


def _setup(arcade: Arcade, server: ServerThread, tmp_path: Path) -> tuple[str, str]:
    name, agent_id = unique(), unique("agent")
    server.state.db.call(agents.register, agents.AgentInfo(agent_id=agent_id))
    code, _, err = arcade("publish", str(plugin_wheel(tmp_path, name)))
    assert code == 0, err
    return name, agent_id


def _desired(arcade: Arcade, agent_id: str) -> dict[str, object]:
    code, out, err = arcade("status", "--agent", agent_id, "--json")
    assert code == 0, err
    [plugin] = json.loads(out)
    desired: dict[str, object] = plugin["desired"]
    return desired


def test_install_and_config_set_interval_and_limits(arcade: Arcade, server: ServerThread,
                                                     tmp_path: Path) -> None:
    name, agent_id = _setup(arcade, server, tmp_path)
    code, out, err = arcade("install", name, "--agent", agent_id, "--interval", "5",
                            "--memory", "128Mi", "--cpu", "100m")
    assert code == 0, err
    assert f"{name}@1.0.0 assigned to {agent_id} (revision 1); interval 5s; limits " \
           "cpu=100m memory=128Mi" in out
    code, out, _ = arcade("status", "--agent", agent_id)
    assert code == 0
    header = next(line for line in out.splitlines() if "interval" in line)
    row = next(line for line in out.splitlines() if name in line)
    cells = [cell.strip() for cell in row.strip("│┃ ").split("│")]
    assert header.strip("│┃ ").split()[-1] == "interval" and cells[-1] == "5s", out
    # Only the interval: no config needed, the limits and the config are kept.
    code, out, err = arcade("config", name, "--agent", agent_id, "--interval", "10")
    assert code == 0, err
    assert "interval 10s; limits cpu=100m memory=128Mi (revision 2)" in out
    assert _desired(arcade, agent_id)["config"] == {"threshold": 10, "label": "x"}
    # CONFIG may come after the options too (as docs/plugin-authoring.md writes it).
    code, out, err = arcade("config", name, "--agent", agent_id, "--disk", "1Gi",
                            '{"threshold": 3}')
    assert code == 0, err
    assert _desired(arcade, agent_id)["resources"] == {"disk": "1Gi"}
    assert _desired(arcade, agent_id)["interval"] == 10
    # An upgrade-style install without flags keeps them; --interval default and --no-limits
    # drop them (the manifest's interval, 5, is what the agent is sent then).
    code, _, err = arcade("install", name, "--agent", agent_id)
    assert code == 0, err
    assert _desired(arcade, agent_id)["interval"] == 10
    code, out, err = arcade("config", name, "--agent", agent_id, "--interval", "default",
                            "--no-limits", "--json")
    assert code == 0, err
    body = json.loads(out)
    assert (body["interval"], body["resources"], body["desired"]["effective_interval"]) == (
        None, {}, 5)
    assert body["config"] == {"threshold": 3, "label": "x"}


@pytest.mark.parametrize(("args", "code", "message"), [
    (["install", "x", "--agent", "a", "--interval", "soon"], 2, "not a number of seconds"),
    (["install", "x", "--agent", "a", "--interval", "0"], 2, "positive number of seconds"),
    (["install", "x", "--agent", "a", "--interval", "inf"], 2, "positive number of seconds"),
    (["install", "x", "--agent", "a", "--interval", "default"], 2, "not a number of seconds"),
    (["config", "x", "--agent", "a"], 2, "nothing to change: give CONFIG"),
    (["config", "x", "--agent", "a", "--no-limits", "--cpu", "1"], 2,
     "--no-limits or --memory/--cpu/--disk, not both"),
])
def test_bad_flags_are_usage_errors_before_any_request(
    arcade: Arcade, args: list[str], code: int, message: str
) -> None:
    status, _, err = arcade(*args)
    assert status == code
    assert message in err


def test_limits_and_intervals_the_server_refuses_are_one_line_errors(
    arcade: Arcade, server: ServerThread, tmp_path: Path
) -> None:
    name, agent_id = _setup(arcade, server, tmp_path)
    code, _, err = arcade("install", name, "--agent", agent_id, "--memory", "lots")
    assert code == 1
    assert err.startswith("error: ") and "resources.memory: " in err and "lots" in err
    code, _, err = arcade("install", name, "--agent", agent_id, "--interval", "100000")
    assert code == 1 and "give from 0.1 s to 86400 s" in err
    code, _, err = arcade("install", name, "--agent", agent_id, "--isolation", "exec")
    assert code == 1 and "is a Python plugin" in err
    code, _, err = arcade("config", name, "--agent", agent_id, "--interval", "3")
    assert code == 1 and "install it first" in err
    assert "Traceback" not in err
