"""``arcade plugin new`` end to end, exactly as an author goes: the new project's own tests
pass, its wheel publishes to a real server and runs on a real agent, all without edits."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.waiting import DEADLINE

from .harness import ARCADE, AgentProc, Server, wait_until


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=DEADLINE * 3, check=False)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout + proc.stderr


def test_new_project_tests_publishes_and_runs_on_an_agent_without_edits(
    shared_server: Server, start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    server = shared_server
    start_agent(server, "e2e-template")
    env = {**os.environ, "ARCADE_API": server.url, "ARCADE_TOKEN": server.admin_token}

    _run([str(ARCADE), "plugin", "new", "hello-arcade"], tmp_path, env)
    project = tmp_path / "hello-arcade"
    assert "6 passed" in _run([sys.executable, "-m", "pytest", "-q"], project, env)
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation"], project, env)
    [wheel] = (project / "dist").glob("*.whl")
    assert wheel.name == "hello_arcade-0.1.0-py3-none-any.whl"
    _run([str(ARCADE), "keys", "generate", "release", "--dir", str(tmp_path / "keys"),
          "--no-passphrase"], project, env)
    published = _run([str(ARCADE), "publish", str(wheel), "--sign",
                      str(tmp_path / "keys" / "release.key")], project, env)
    assert "published: hello-arcade@0.1.0" in published and "signed by: " in published
    wait_until(lambda: (server.agent("e2e-template") or {}).get("online"),
               what="the agent to come online")
    out = _run([str(ARCADE), "install", "hello-arcade", "--agent", "e2e-template",
                "--config", f'{{"directory": "{project}"}}', "--wait", str(DEADLINE)],
               project, env)
    assert "e2e-template: running" in out
    metrics = wait_until(lambda: server.metrics("e2e-template", name="hello_arcade.entries"),
                         what="the new plugin's metric in the REST API")
    # pyproject.toml, README.md, hello_arcade/, tests/, dist/ and build leftovers, at least 5
    assert metrics[0]["value"] >= 5
    assert metrics[0]["labels"] == {"directory": str(project)}


def test_new_exec_project_tests_publishes_and_runs_on_an_agent_without_edits(
    shared_server: Server, start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    """``--exec``: the sh plugin project's own tests pass, ``python -m build`` makes its wheel
    (arcade_core.exec_backend), a signed publish takes it and an agent runs it: its pushed
    uptime reaches the server."""
    server = shared_server
    start_agent(server, "e2e-template-exec")
    env = {**os.environ, "ARCADE_API": server.url, "ARCADE_TOKEN": server.admin_token}
    _run([str(ARCADE), "plugin", "new", "hello-exec", "--exec"], tmp_path, env)
    project = tmp_path / "hello-exec"
    assert "2 passed" in _run([sys.executable, "-m", "pytest", "-q"], project, env)
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation"], project, env)
    [wheel] = (project / "dist").glob("*.whl")
    assert wheel.name == "hello_exec-0.1.0-py3-none-any.whl"
    _run([str(ARCADE), "keys", "generate", "release", "--dir", str(tmp_path / "keys"),
          "--no-passphrase"], project, env)
    published = _run([str(ARCADE), "publish", str(wheel), "--sign",
                      str(tmp_path / "keys" / "release.key")], project, env)
    assert "published: hello-exec@0.1.0" in published and "signed by: " in published
    wait_until(lambda: (server.agent("e2e-template-exec") or {}).get("online"),
               what="the agent to come online")
    out = _run([str(ARCADE), "install", "hello-exec", "--agent", "e2e-template-exec",
                "--wait", str(DEADLINE)], project, env)
    assert "e2e-template-exec: running" in out
    metrics = wait_until(lambda: server.metrics("e2e-template-exec", name="hello_exec.uptime"),
                         what="the exec plugin's pushed uptime in the REST API")
    assert metrics[0]["value"] > 0 and metrics[0]["plugin"] == "hello-exec"
