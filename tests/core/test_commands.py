"""The ``arcade`` dispatcher (:mod:`arcade_core.commands`): commands found through the
``arcade.commands`` entry points, only the one that runs imported, one help style, and a
one-line error naming the extra when a command's dependencies are not installed."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from arcade_core.commands import SUMMARIES, find_commands, main, parser

PROBE = """
import sys
from arcade_core.commands import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("EXIT", code)
print("LOADED", *sorted(m for m in ("typer", "rich", "httpx", "arcade_agent", "arcade_server",
                                   "arcade_server.cli", "fastapi", "sqlalchemy", "grpc")
                         if m in sys.modules))
"""


def _run(*args: str) -> tuple[list[str], str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, timeout=60, check=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = proc.stdout.strip().splitlines()
    return lines[-1].split()[1:], proc.stdout + proc.stderr


def test_the_entry_points_read_without_importlib_metadata_are_the_same() -> None:
    ours = find_commands()
    theirs = {ep.name: ep for ep in entry_points(group="arcade.commands")}
    assert set(ours) == set(theirs)
    for name, command in ours.items():
        assert f"{command.module}:{command.attr}" == theirs[name].value.split(" [")[0].strip()
        assert command.extras == tuple(theirs[name].extras)
        assert command.dist == "arcade-fleet"
    assert set(SUMMARIES) == set(ours)  # every built-in command is declared, with its line


def test_arcade_agent_loads_only_the_agent() -> None:
    loaded, out = _run("agent", "--help")
    assert "usage: arcade agent" in out and "--label KEY=VALUE" in out
    assert loaded == ["arcade_agent"]


def test_arcade_server_loads_only_the_server_front_end() -> None:
    loaded, out = _run("server", "--help")
    assert "usage: arcade server" in out and "--grpc-port PORT" in out
    assert loaded == ["arcade_server"]


def test_an_operator_command_loads_only_its_module() -> None:
    loaded, out = _run("status", "--help")
    assert "usage: arcade status" in out and "--agent ID" in out
    assert loaded == ["arcade_server", "arcade_server.cli"]


def test_help_lists_every_command_with_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: arcade COMMAND [ARGS]...")
    for name, summary in SUMMARIES.items():
        assert f"  {name} " in out and summary in out
    assert main([]) == 2  # no command: the help, on stderr
    assert "commands:" in capsys.readouterr().err


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nope"]) == 2
    assert "error: no such command 'nope'" in capsys.readouterr().err


def test_every_command_s_help_is_formatted_alike() -> None:
    for command in ("agent", "server", "status", "run", "quickstart"):
        _, out = _run(command, "--help")
        assert out.startswith(f"usage: arcade {command} [-h]")
        assert "\noptions:\n  -h, --help " in out
        assert ("--api URL" in out) == (command in ("status", "run"))


def test_defaults_worth_saying_are_shown() -> None:
    p = parser("arcade x", "X.")
    p.add_argument("--limit", type=int, default=50, help="at most")
    p.add_argument("--flag", action="store_true", help="a flag")
    p.add_argument("--name", help="a name")
    text = p.format_help()
    assert "at most [default: 50]" in text
    assert "a flag\n" in text and "a name\n" in text


def _fake_command(tmp_path: Path, value: str) -> Path:
    """A distribution declaring one arcade command, on a path of its own."""
    site = tmp_path / "site"
    info = site / "fake_tool-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "entry_points.txt").write_text(f"[arcade.commands]\nfake = {value}\n")
    (site / "fake_cmd.py").write_text(
        "import definitely_not_installed_dependency\n"
        "def main(argv, *, prog):\n    return 0\n"
    )
    return site


def test_a_missing_dependency_names_the_extra_in_one_line(tmp_path: Path) -> None:
    site = _fake_command(tmp_path, "fake_cmd:main [fancy]")
    proc = subprocess.run([sys.executable, "-c", PROBE, "fake"], capture_output=True,
                          text=True, timeout=60, check=True,
                          env={**os.environ, "PYTHONPATH": f"{site}{os.pathsep}"
                               f"{os.environ.get('PYTHONPATH', '')}"})
    assert proc.stderr == ("error: arcade fake needs the 'fancy' extra: pip install "
                           "'fake-tool[fancy]' (definitely_not_installed_dependency is not "
                           "installed)\n")
    assert "EXIT 2" in proc.stdout


def test_a_command_without_a_declared_extra_says_what_is_missing(tmp_path: Path) -> None:
    site = _fake_command(tmp_path, "fake_cmd:main")
    commands = find_commands([str(site)])
    assert commands["fake"].extras == () and commands["fake"].dist == "fake-tool"
    proc = subprocess.run([sys.executable, "-c", PROBE, "fake"], capture_output=True,
                          text=True, timeout=60, check=True,
                          env={**os.environ, "PYTHONPATH": str(site)})
    assert proc.stderr == ("error: arcade fake cannot run: definitely_not_installed_dependency "
                           "is not installed\n")
