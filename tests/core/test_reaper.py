"""The per-plugin reaper on its own: it exits as its command did, forwards SIGTERM, says
when the command cannot run, and leaves nothing behind."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from arcade_core._limits import Limits
from arcade_core._reaper import EXEC_FAILED
from tests.core.hostkit import pid_alive, wait_for

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="subreaper and /proc: Linux")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(Limits("t").command(list(argv)), capture_output=True, text=True,
                          timeout=60, check=False)


def test_it_exits_as_its_command_did() -> None:
    assert _run("sh", "-c", "exit 3").returncode == 3
    assert _run("sh", "-c", "kill -9 $$").returncode == -signal.SIGKILL
    assert _run("sh", "-c", "echo out; echo err >&2").stdout == "out\n"
    missing = _run("no-such-command-here")
    assert missing.returncode == EXEC_FAILED
    assert "cannot run no-such-command-here: No such file or directory" in missing.stderr


def test_sigterm_is_forwarded_and_leftovers_are_killed() -> None:
    script = ('trap "echo got-term; exit 7" TERM\n'
              "setsid sleep 300 & echo $!\n"
              "echo ready\n"
              "while :; do sleep 0.05; done\n")
    proc = subprocess.Popen(Limits("t").command(["sh", "-c", script]),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        orphan = int(proc.stdout.readline())
        assert proc.stdout.readline() == "ready\n" and pid_alive(orphan)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 7
        assert proc.stdout.read() == "got-term\n"
        wait_for(lambda: not pid_alive(orphan), what="the setsid() sleeper to be killed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
