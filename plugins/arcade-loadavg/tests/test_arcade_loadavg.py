"""arcade-loadavg: its built wheel installed by a real PluginHost, and the installed sh script
run under dash (and sh) as a child, spoken to over the line protocol with every line checked
against the protocol's schemas: hello, metrics every interval, a new interval without a
restart, heartbeats, a call refused, a shutdown that leaves no process behind."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from arcade_core import Isolation
from arcade_core.testing import ExecProcess, PluginProject
from tests.waiting import until_sync

DIST = Path(__file__).resolve().parent.parent
SCRIPT = DIST / "bin" / "arcade-loadavg"
NAMES = ["loadavg.load1", "loadavg.load5", "loadavg.load15", "loadavg.running",
         "loadavg.tasks"]
SHELLS = [shell for shell in ("dash", "sh", "bash") if shutil.which(shell)]


def _rounds(plugin: ExecProcess, count: int) -> list[float]:
    """The arrival times of the next ``count`` metric batches, each checked."""
    times = []
    for _ in range(count):
        batch = plugin.receive_until("metric")["data"]
        assert [m["name"] for m in batch] == NAMES
        assert all(isinstance(m["value"], int | float) and m["value"] >= 0 for m in batch)
        assert abs(batch[0]["timestamp"] - time.time()) < 5
        times.append(time.monotonic())
    return times


def test_the_wheel_is_an_exec_plugin_with_its_script(arcade_project: PluginProject) -> None:
    assert arcade_project.check() == {}
    manifest = arcade_project.manifest
    assert (manifest.exec, manifest.isolation) == ("arcade-loadavg", Isolation.EXEC)
    assert arcade_project.wheel.name == "arcade_loadavg-1.0.0-py3-none-any.whl"


def test_the_installed_program_pushes_reconfigures_and_shuts_down(
    arcade_project: PluginProject,
) -> None:
    with arcade_project.exec_process() as plugin:
        plugin.send({"type": "config", "data": {"interval": 0.1}})
        assert plugin.receive() == {"type": "hello", "protocol": 1, "hooks": []}
        fast = _rounds(plugin, 4)
        # A new interval applies at once, in the same process (no restart).
        plugin.send({"type": "config", "data": {"interval": 1.0}})
        plugin.receive_until("log")
        slow = _rounds(plugin, 3)
        assert max(b - a for a, b in itertools.pairwise(fast)) < 0.8
        assert min(b - a for a, b in itertools.pairwise(slow)) > 0.8
        assert plugin.shutdown() == 0
        assert plugin.received[0]["type"] == "hello"


@pytest.mark.parametrize("shell", SHELLS)
def test_under_each_posix_shell(shell: str, tmp_path: Path) -> None:
    with ExecProcess([shell, SCRIPT]) as plugin:
        assert plugin.receive()["type"] == "hello"
        plugin.send({"type": "config", "data": {"interval": 0.05, "unknown": [1]}})
        _rounds(plugin, 2)
        plugin.send({"type": "call", "id": 41, "hook": "notify", "kwargs": {}})
        assert plugin.receive_until("error") == {
            "type": "error", "id": 41, "error": "arcade-loadavg answers no calls"}
        children = psutil.Process(plugin.pid).children(recursive=True)
        assert children  # the ticker and the heartbeat subshells (and their sleeps)
        assert plugin.shutdown() == 0
        until_sync(lambda: not [c for c in children if _alive(c)],
                   what="the plugin's subshells and sleeps to end")


def _alive(process: psutil.Process) -> bool:
    """Still running (a zombie waiting for PID 1 to reap it is not)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_heartbeats_keep_a_slow_plugin_alive() -> None:
    with ExecProcess(["sh", SCRIPT]) as plugin:
        plugin.send({"type": "config", "data": {"interval": 3600}})
        plugin.receive_until("metric")  # the first round comes at once
        started = time.monotonic()
        plugin.receive_until("heartbeat", timeout=15)
        assert time.monotonic() - started < 10  # within the protocol's 10 s


def test_a_bad_config_or_line_is_logged_and_the_old_interval_kept(tmp_path: Path) -> None:
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("0.50 0.25 0.10 2/345 6789\n")
    env = {**os.environ, "ARCADE_LOADAVG_PROC": str(loadavg)}
    with ExecProcess(["sh", SCRIPT], env=env) as plugin:
        plugin.send({"type": "config", "data": {"interval": 0.05}})
        batch = plugin.receive_until("metric")["data"]
        assert [m["value"] for m in batch] == [0.5, 0.25, 0.1, 2, 345]
        plugin.send_line(b'{"type": "config", "data": {"interval": "soon"}}\n')
        assert plugin.receive_until("log")["level"] == "warning"
        plugin.send_line(b"not json at all\n")
        assert plugin.receive_until("log")["message"].startswith("ignored a line")
        _rounds(plugin, 2)  # still pushing at the old interval
        loadavg.unlink()
        assert plugin.receive_until("log")["message"] == f"cannot read {loadavg}"


def test_stdin_closing_ends_it() -> None:
    proc = subprocess.run(["sh", str(SCRIPT)], input=b"", capture_output=True, timeout=30,
                          check=False)
    assert (proc.returncode, proc.stdout) == (0, b'{"type":"hello","protocol":1,"hooks":[]}\n')


def test_a_plugin_host_runs_it_as_an_exec_plugin(arcade_project: PluginProject) -> None:
    """As an agent runs it: the host's supervised exec child, its pushes at the host's sink."""
    with arcade_project.loaded(interval=0.1) as plugin:
        status = plugin.status
        assert (status.isolation, status.state) == ("exec", "running")
        pushed = plugin.wait_pushed(10)
        assert {m.name for m in pushed} == set(NAMES)
        assert plugin.host.status(plugin.key).malformed == 0
