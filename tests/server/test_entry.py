"""The ``arcade`` console script sends ``arcade agent`` and ``arcade server`` past the
operator CLI."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
sys.argv = ["arcade", *sys.argv[1:]]
from arcade_server._entry import main
try:
    main()
except SystemExit:
    pass
print("LOADED", *sorted(m for m in ("typer", "rich", "httpx") if m in sys.modules))
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, timeout=60, check=True)


def test_arcade_agent_does_not_load_the_operator_cli_libraries() -> None:
    out = _run("agent", "--help").stdout
    assert "usage: arcade agent" in out
    assert out.strip().splitlines()[-1] == "LOADED"


def test_arcade_server_does_not_load_the_operator_cli_libraries() -> None:
    out = _run("server", "--help").stdout
    assert "usage: arcade server" in out and "--grpc-port" in out
    assert out.strip().splitlines()[-1] == "LOADED"


def test_the_operator_cli_server_and_agent_commands_hand_over_to_the_same_parsers() -> None:
    for command, option in (("server", "--database"), ("agent", "--label")):
        proc = subprocess.run([sys.executable, "-m", "arcade_server.cli", command, "--help"],
                              capture_output=True, text=True, timeout=60, check=True)
        assert f"usage: arcade {command}" in proc.stdout and option in proc.stdout


def test_other_commands_go_to_the_operator_cli() -> None:
    out = _run("--help").stdout
    assert "publish" in out and "install" in out
    assert "typer" in out.strip().splitlines()[-1]
