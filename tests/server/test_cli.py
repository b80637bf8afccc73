"""The ``arcade`` operator commands against a real server (in-process through the ``arcade``
dispatcher and its entry points, real HTTP)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from arcade_core.commands import main
from arcade_server.runner import ServerThread
from arcade_server.services import agents
from tests.server.helpers import SCHEMA_MANIFEST, Endpoint, ProtocolAgent, plugin_wheel, unique
from tests.wheelmaker import make_wheel

Arcade = Callable[..., tuple[int, str, str]]



@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    for name in ("ARCADE_API", "ARCADE_TOKEN", "ARCADE_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    # No credentials file but the test's own.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Arcade:
    """Run ``arcade ARGS...`` in this process: (exit status, stdout, stderr)."""

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def arcade(run: Arcade, server: ServerThread, monkeypatch: pytest.MonkeyPatch) -> Arcade:
    """``arcade ARGS... --api <the test server>``, with its admin token in ARCADE_TOKEN."""
    monkeypatch.setenv("ARCADE_TOKEN", server.admin_token)
    return lambda *args: run(*args, "--api", server.http_url)


def test_publish_then_list_and_show_plugins(arcade: Arcade, tmp_path: Path) -> None:
    name = unique()
    wheel = plugin_wheel(tmp_path, name, "1.0.0", summary="cli test plugin")
    code, out, err = arcade("publish", str(wheel))
    assert code == 0, err
    assert f"published: {name}@1.0.0" in out
    code, out, _ = arcade("publish", str(wheel))
    assert code == 0 and "already published (identical)" in out
    code, out, _ = arcade("plugins")
    assert code == 0 and name in out
    code, out, _ = arcade("plugins", name)
    assert code == 0 and "1.0.0" in out
    code, out, _ = arcade("plugins", "--json")
    assert name in [p["name"] for p in json.loads(out)]
    code, out, _ = arcade("publish", str(wheel), "--validate", "--json")
    assert code == 0 and json.loads(out)["valid"] is True


def test_publish_errors_are_one_line_without_traceback(arcade: Arcade,
                                                       tmp_path: Path) -> None:
    bad = make_wheel(tmp_path, unique(), extra_members={"../evil.py": b""})
    code, out, err = arcade("publish", str(bad))
    assert code == 1
    assert err.startswith("error: ")
    assert "evil.py" in err
    assert "Traceback" not in err + out
    code, _, err = arcade("publish", str(tmp_path / "missing.whl"))
    assert code == 2 and "is not a file" in err


def test_install_uninstall_and_config_through_the_cli(arcade: Arcade, server: ServerThread,
                                                      tmp_path: Path) -> None:
    name = unique()
    agent_id = unique("agent")
    server.state.db.call(agents.register, agents.AgentInfo(agent_id=agent_id,
                                                           labels={"team": "cli"}))
    arcade("publish", str(plugin_wheel(tmp_path, name, "1.0.0")))
    code, out, err = arcade("install", f"{name}@1.0.0", "--agent", agent_id,
                            "--config", '{"threshold": 2}', "--json")
    assert code == 0, err
    body = json.loads(out)
    assert (body["version"], body["config"]["threshold"], body["revision"]) == ("1.0.0", 2, 1)
    code, out, _ = arcade("config", name, '{"label": "z"}', "--agent", agent_id)
    assert code == 0 and '"label": "z"' in out and "revision 2" in out
    code, out, _ = arcade("status", "--agent", agent_id)
    assert code == 0 and name in out
    code, out, _ = arcade("agents")
    assert code == 0 and agent_id in out and "team=cli" in out
    code, out, _ = arcade("agents", "--json")
    assert agent_id in [a["id"] for a in json.loads(out)]
    code, out, err = arcade("install", name, "--selector", "team=cli")
    assert code == 0, err
    assert "1 agent(s)" in out
    code, out, _ = arcade("uninstall", name, "--agent", agent_id)
    assert code == 0 and "removed" in out
    code, _, err = arcade("uninstall", name, "--agent", agent_id)
    assert code == 1 and "is not assigned" in err


def test_install_with_wait_times_out_with_a_clear_error(arcade: Arcade, server: ServerThread,
                                                        tmp_path: Path) -> None:
    name = unique()
    agent_id = unique("agent")
    server.state.db.call(agents.register, agents.AgentInfo(agent_id=agent_id))
    arcade("publish", str(plugin_wheel(tmp_path, name)))
    code, _, err = arcade("install", name, "--agent", agent_id, "--wait", "0.3")
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
def test_bad_usage_exits_2_with_the_reason(arcade: Arcade, args: list[str],
                                           message: str) -> None:
    code, _, err = arcade(*args)
    assert code == 2
    assert message in err


def test_server_errors_are_printed_as_one_line(arcade: Arcade) -> None:
    code, _, err = arcade("install", "ghost-plugin", "--agent", "ghost-agent")
    assert code == 1
    assert err.strip() == "error: no agent with id 'ghost-agent' has registered; list agents " \
                          "with `arcade agents`"


def test_unreachable_api_is_reported_clearly(run: Arcade,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = run("plugins", "--api", f"http://127.0.0.1:{port}")
    assert code == 1
    assert f"cannot reach the Arcade API at http://127.0.0.1:{port}" in err
    monkeypatch.setenv("ARCADE_API", f"http://127.0.0.1:{port}")
    code, _, err = run("agents")
    assert code == 1 and "cannot reach the Arcade API" in err


def test_the_cli_imports_neither_the_server_the_agent_nor_httpx_for_help() -> None:
    code = (
        "import sys\n"
        "import arcade_server.cli._agents, arcade_server.cli._jobs, arcade_server.cli._plugins\n"
        "import arcade_server.cli._status\n"
        "from arcade_core.commands import main\n"
        "try:\n"
        "    main(['status', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('fastapi', 'sqlalchemy', 'grpc', 'uvicorn', 'arcade_agent', 'httpx', 'typer',\n"
        "         'rich', 'importlib.metadata')\n"
        "print('LOADED', *[m for m in heavy if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert "usage: arcade status" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "LOADED"


def test_help_shows_json_as_a_plain_flag(run: Arcade) -> None:
    for command in ("status", "plugins", "jobs", "install"):
        code, out, _ = run(command, "--help")
        assert code == 0 and f"usage: arcade {command}" in out
        assert re.search(r"\n  --json +print JSON \(for scripts\)\n", out), out


def test_tables_are_boxed_and_wrap_to_the_terminal(
    arcade: Arcade, server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent_id = unique("agent")
    server.state.db.call(agents.register, agents.AgentInfo(
        agent_id=agent_id, labels={"team": "a-rather-long-team-name", "zone": "eu-west"}))
    code, out, _ = arcade("agents", "--label", "zone=eu-west")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("┏━") and lines[1].startswith("┃ id")
    assert lines[2].startswith("┡━") and lines[-1].startswith("└─")
    assert f"│ {agent_id} " in out and "online" in out, out
    assert len({len(line) for line in lines}) == 1  # every line of the box is as wide
    monkeypatch.setenv("COLUMNS", "60")
    code, out, _ = arcade("agents", "--label", "zone=eu-west")
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 60


def test_run_usage_errors(arcade: Arcade) -> None:
    code, _, err = arcade("run", "--", "true")
    assert code == 2 and "--agent ID is required" in err
    code, _, err = arcade("run", "--agent", "a")
    assert code == 2 and "give the command after --" in err
    code, _, err = arcade("run", "--agent", "a", "--plugin", "p@1:before", "--config-for",
                          "q", "{}", "--", "true")
    assert code == 2 and "no --plugin entry uses 'q'" in err
    code, _, err = arcade("run", "--agent", "a", "--plugin", "p@1:before", "--config-for",
                          "p", "[1]", "--", "true")
    assert code == 2 and "must be a JSON object" in err


def test_publish_fetch_deps_adds_the_dependency_wheels(
    arcade: Arcade, tmp_path: Path, dependency_wheelhouse: Path
) -> None:
    from arcade_core.wheelhouse import download_wheels

    download_wheels(["six"], dependency_wheelhouse)  # cached after the first run
    name = unique()
    wheel = plugin_wheel(tmp_path, name, requires=["six>=1.10", "pluggy>=1"])
    code, out, err = arcade("publish", str(wheel), "--fetch-deps", "--wheelhouse",
                            str(dependency_wheelhouse), "--json")
    assert code == 0, err
    body = json.loads(out)
    assert [w["name"] for w in body["wheels"]] == [name, "six"]


# ---------------------------------------------------------------- credentials and access


def test_the_token_comes_from_the_flag_then_the_environment_then_the_credentials_file(
    run: Arcade, server: ServerThread, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    good, api = server.admin_token, server.http_url
    code, _, err = run("agents", "--api", api)
    assert code == 1 and "refused the request" in err and "arcade login" in err
    assert err.count("\n") == 1  # one line
    creds = tmp_path / "config" / "arcade" / "credentials"
    creds.parent.mkdir(parents=True)
    creds.write_text(f'api = "{api}"\ntoken = "{good}"\n')
    creds.chmod(0o600)
    assert run("agents", "--json")[0] == 0  # URL and token from the file
    monkeypatch.setenv("ARCADE_TOKEN", "arcade_bad-from-env")
    assert run("agents", "--json")[0] == 1  # the environment wins over the file
    assert run("agents", "--json", "--token", good)[0] == 0  # the flag wins over both
    monkeypatch.setenv("ARCADE_TOKEN", good)
    assert run("agents", "--json", "--token", "arcade_bad-flag")[0] == 1
    creds.chmod(0o644)
    code, _, err = run("agents", "--json")
    assert code == 0 and "readable by other users" in err
    code, _, err = run("agents", "--ca-file", str(tmp_path / "missing.pem"))
    assert code == 1 and "cannot use the CA file" in err


def test_login_checks_the_token_and_saves_it_for_the_other_commands(
    run: Arcade, server: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "config" / "arcade" / "credentials"
    code, _, err = run("login", "--api", server.http_url, "--token", "arcade_wrong")
    assert code == 1 and "refused" in err and not creds.exists()
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO(server.admin_token + "\n"))
    code, out, err = run("login", "--api", server.http_url)  # the token read from stdin
    assert code == 0, err
    assert f"logged in to {server.http_url} as admin (admin)" in out and str(creds) in out
    assert stat_mode(creds) == 0o600
    assert server.admin_token in creds.read_text()
    code, out, err = run("tokens", "list")
    assert code == 0 and "admin" in out, err


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_tokens_create_list_revoke_and_audit_commands(arcade: Arcade, server: ServerThread
                                                       ) -> None:
    code, out, err = arcade("tokens", "create", "cli-made", "--role", "viewer", "--ttl", "30d")
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("arcade_") and "shown only this once" in err
    code, out, _ = arcade("tokens", "list", "--json")
    [made] = [tok for tok in json.loads(out) if tok["name"] == "cli-made"]
    assert made["role"] == "viewer" and made["expires_at"] > made["created_at"] + 29 * 86400
    code, out, _ = arcade("tokens", "list")
    assert code == 0 and "cli-made" in out and secret not in out
    assert arcade("tokens", "create", "bad", "--role", "viewer", "--ttl", "soon")[0] == 2
    assert arcade("tokens", "create", "bad", "--role", "root")[0] == 2
    code, _, err = arcade("tokens", "create", "cli-made", "--role", "viewer")
    assert code == 1 and "exists" in err
    code, out, err = arcade("tokens", "revoke", "cli-made")
    assert code == 0 and "revoked token 'cli-made'" in out, err
    code, out, err = arcade("audit", "--since", "1h", "--target", "tokens/cli-made", "--json")
    assert code == 0, err
    assert [(r["action"], r["outcome"]) for r in json.loads(out)][:3] == [
        ("DELETE /api/v1/tokens/{ref}", "200"), ("POST /api/v1/tokens", "409"),
        ("POST /api/v1/tokens", "201")]
    code, out, err = arcade("audit", "--actor", "admin", "--limit", "5")
    assert code == 0 and "POST /api/v1/tokens" in out, err
    assert arcade("audit", "--since", "yesterday-ish")[0] == 2


def test_enroll_create_list_delete_and_agents_revoke_commands(arcade: Arcade,
                                                                server: ServerThread) -> None:
    code, out, err = arcade("enroll", "create", "--labels", "zone=eu", "--ttl", "2h",
                            "--uses", "1", "--name", "cli")
    assert code == 0, err
    secret = out.strip()
    assert f"--enroll-token {secret} --ca-hash {server.state.tls.ca_hash}" in err
    code, out, err = arcade("enroll", "list", "--json")
    [made] = [t for t in json.loads(out) if t["name"] == "cli"]
    assert made["labels"] == {"zone": "eu"} and made["max_uses"] == 1 and made["usable"]
    assert made["expires_at"] > made["created_at"] + 7100
    code, out, _ = arcade("enroll", "list")
    assert code == 0 and made["id"] in out and secret not in out
    assert arcade("enroll", "create", "--uses", "0")[0] == 2
    assert arcade("enroll", "create", "--ttl", "soon")[0] == 2
    assert arcade("enroll", "create", "--labels", "novalue")[0] == 2

    # An agent enrolled with the token, connected; revoking it ends its stream.
    end = Endpoint(server.grpc_target, server.state.tls.ca.pem, secret)

    async def connect_then_revoke() -> tuple[int, str, str]:
        agent = ProtocolAgent(end, unique("cli-agent"))
        await agent.connect()
        try:
            result = await asyncio.to_thread(arcade, "agents", "revoke", agent.agent_id)
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                while True:
                    await agent.recv()
            assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
        finally:
            await agent.close()
        return result

    code, out, err = asyncio.run(connect_then_revoke())
    assert code == 0 and "its stream was ended" in out, err
    code, _, err = arcade("agents", "revoke", "nobody-here")
    assert code == 1 and "nobody-here" in err
    code, out, err = arcade("enroll", "delete", made["id"])
    assert code == 0 and made["id"] in out, err
    code, _, err = arcade("enroll", "delete", made["id"])
    assert code == 1 and made["id"] in err
    code, out, err = arcade("agents", "--json")       # without an action: the list, as before
    assert code == 0 and isinstance(json.loads(out), list), err


def test_error_hints_name_arcade_commands_and_flags(arcade: Arcade, server: ServerThread,
                                                   tmp_path: Path) -> None:
    """The common mistakes: each error names the `arcade` command or flag that fixes it, not
    a REST route (the REST answer still names the route, with the CLI form in hints)."""
    name = unique()
    agent_id = unique("agent")
    server.state.db.call(agents.register, agents.AgentInfo(agent_id=agent_id))
    arcade("publish", str(plugin_wheel(tmp_path / "1", name, "1.0.0")))
    big = dict(SCHEMA_MANIFEST, config_schema={
        "type": "object", "additionalProperties": False,
        "properties": {"threshold": {"type": "integer", "minimum": 0, "maximum": 20,
                                     "default": 10}}})
    arcade("publish", str(plugin_wheel(tmp_path / "2", name, "2.0.0", manifest=big)))
    mistakes = {
        "unknown agent": (["install", name, "--agent", "nobody"], "`arcade agents`"),
        "unknown plugin": (["install", "never-published", "--agent", agent_id],
                           "`arcade publish WHEEL...`"),
        "unknown version": (["install", f"{name}@9.9", "--agent", agent_id],
                            f"`arcade plugins {name}`"),
        "bad spec": (["install", f"{name}@>>1", "--agent", agent_id], "`arcade plugins`"),
        "bad config": (["install", f"{name}@1.0.0", "--agent", agent_id, "--config",
                        '{"threshold": -1}'], f"`arcade plugins {name} --json`"),
        "not assigned": (["config", name, "{}", "--agent", agent_id],
                         f"`arcade install {name} --agent {agent_id}`"),
        "not installed": (["uninstall", name, "--agent", agent_id],
                          f"`arcade status --agent {agent_id}`"),
        "wait too long": (["install", name, "--agent", agent_id, "--wait", "99999"],
                          "`--wait`"),
    }
    for mistake, (args, hint) in mistakes.items():
        code, _, err = arcade(*args)
        assert code == 1, (mistake, err)
        assert hint in err, (mistake, err)
        assert "/api/v1" not in err, (mistake, err)
    # A kept config the new version refuses names both ways out, as flags.
    code, _, err = arcade("install", f"{name}@1.0.0", "--agent", agent_id,
                          "--config", '{"threshold": 50}')
    assert code == 0, err
    code, _, err = arcade("install", f"{name}@2.0.0", "--agent", agent_id)
    assert code == 1
    assert "does not fit" in err and "pass `--config JSON` or `--reset-config`" in err
    code, out, err = arcade("install", f"{name}@2.0.0", "--agent", agent_id, "--reset-config")
    assert code == 0, err
    assert "was 1.0.0" in out
    code, _, err = arcade("plugins", "never-published")
    assert code == 1 and "`arcade plugins`" in err and "/api/v1" not in err
    assert arcade("disable", name)[0] == 0
    code, _, err = arcade("install", name, "--agent", agent_id)
    assert code == 1 and f"`arcade enable {name}`" in err


def test_uninstall_and_config_wait_and_install_keeps_the_config(
    arcade: Arcade, server: ServerThread, tmp_path: Path
) -> None:
    name = unique()
    agent_id = unique("agent")
    server.state.db.call(agents.register, agents.AgentInfo(agent_id=agent_id))
    arcade("publish", str(plugin_wheel(tmp_path / "1", name, "1.0.0")))
    arcade("publish", str(plugin_wheel(tmp_path / "2", name, "2.0.0")))
    code, _, err = arcade("install", f"{name}@1.0.0", "--agent", agent_id,
                          "--config", '{"threshold": 2}', "--isolation", "process")
    assert code == 0, err
    code, out, err = arcade("install", f"{name}@2.0.0", "--agent", agent_id, "--json")
    assert code == 0, err
    body = json.loads(out)
    assert (body["desired"]["config"]["threshold"], body["isolation"]) == (2, "process")
    code, _, err = arcade("install", name, "--agent", agent_id, "--config", "{}",
                          "--reset-config")
    assert code == 2 and "not both" in err
    # Nobody runs this agent: each wait runs out, with a clear error and exit 1.
    code, _, err = arcade("config", name, '{"label": "q"}', "--agent", agent_id,
                          "--wait", "0.3")
    assert code == 1 and "timed out after 0.3s" in err and "new config applied" in err
    code, out, err = arcade("uninstall", name, "--agent", agent_id, "--wait", "0.3", "--json")
    assert code == 1 and json.loads(out)["timed_out"] is True
    assert arcade("install", name, "--agent", agent_id)[0] == 0
    code, out, err = arcade("uninstall", name, "--selector", "all", "--wait", "0.3")
    assert code == 1 and "removed from 1 agent(s)" in out
    assert "timed out after 0.3s" in err and "plugin removed" in err
