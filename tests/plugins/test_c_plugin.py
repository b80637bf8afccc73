"""A plugin in C, written only from docs/protocol.md (c/arcade_cpuc.c), compiled with gcc,
packed with build_exec_wheel into a platform-tagged wheel, installed by a real PluginHost and
run as a child: every line it writes is checked against the protocol's JSON Schemas. Hello,
metrics every interval, a new interval without a restart, a call answered by id, garbage
ignored, shutdown and end of input both end it with status 0."""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import _pytest.outcomes
import pytest

from arcade_core import Isolation, PluginHost, inspect_wheel
from arcade_core.testing import ExecProcess
from tests.waiting import until_sync

from .cplugin import build_c_wheel, find_gcc, platform_tag

# The example config message, verbatim (tests/core/test_protocol_schemas.py checks
# it and the example metric message against the schemas).
CONFIG_EXAMPLE = b'{"type": "config", "data": {"interval": 60}}\n'


@pytest.fixture(scope="module")
def c_wheel(gcc: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C plugin compiled and packed into a wheel tagged for this platform."""
    wheel = build_c_wheel(gcc, tmp_path_factory.mktemp("cpuc"))
    assert wheel.name == f"arcade_cpuc-0.1.0-py3-none-{platform_tag()}.whl"
    info = inspect_wheel(wheel)
    assert info.manifest is not None and info.manifest.isolation is Isolation.EXEC
    return wheel


@pytest.fixture(scope="module")
def program(c_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The C plugin's wheel installed: the path of ``bin/arcade-cpuc`` in its env."""
    with PluginHost(tmp_path_factory.mktemp("cpuc-host")) as host:
        env = host.install(c_wheel)
    installed = env.path / "bin" / "arcade-cpuc"
    assert installed.read_bytes() == (c_wheel.parent.parent / "build" / "arcade-cpuc").read_bytes()
    yield installed


def _gaps(plugin: ExecProcess, count: int) -> list[float]:
    """The times between the next ``count`` metric batches."""
    times = []
    for _ in range(count):
        batch = plugin.receive_until("metric")["data"]
        assert [m["name"] for m in batch] == ["cpuc.busy", "cpuc.round"]
        assert 0 <= batch[0]["value"] <= 100 and batch[0]["unit"] == "percent"
        times.append(time.monotonic())
    return [b - a for a, b in itertools.pairwise(times)]


def test_it_pushes_and_takes_a_new_interval_without_a_restart(program: Path) -> None:
    with ExecProcess([program], cwd=program.parent.parent) as plugin:
        assert plugin.receive() == {"type": "hello", "protocol": 1, "hooks": ["notify"]}
        plugin.send_line(CONFIG_EXAMPLE)  # a round at once, then one a minute
        assert plugin.receive_until("log")["message"] == "interval 60s"
        first = plugin.receive_until("metric")["data"]
        assert first[1]["value"] == 1 and first[1]["labels"] == {"source": "c"}
        assert abs(first[0]["timestamp"] - time.time()) < 5
        pid = plugin.pid
        plugin.send({"type": "config", "data": {"interval": 0.1}})
        fast = _gaps(plugin, 4)
        plugin.send({"type": "config", "data": {"interval": 0.6}})
        plugin.receive_until("log")
        slow = _gaps(plugin, 3)
        assert max(fast) < 0.5 and min(slow) > 0.45
        rounds = [m["data"][1]["value"] for m in plugin.received if m["type"] == "metric"]
        assert rounds == list(range(1, len(rounds) + 1))  # one process all along
        assert plugin.pid == pid
        assert plugin.shutdown() == 0


def test_it_answers_calls_by_id_and_ignores_garbage(program: Path) -> None:
    with ExecProcess([program]) as plugin:
        plugin.receive()
        plugin.send({"type": "config", "data": {"interval": 3600}})
        plugin.send_line(b"\x00garbage that is not JSON\n{\"type\": \"from-the-future\"}\n")
        plugin.send({"type": "call", "id": 7, "hook": "notify",
                     "kwargs": {"event": {"kind": "deploy", "data": {}}}})
        plugin.send({"type": "call", "id": 8, "hook": "notify", "kwargs": {"event": {}}})
        assert plugin.receive_until("result") == {"type": "result", "id": 7, "data": None}
        assert plugin.receive_until("result")["id"] == 8
        plugin.send_line(b'{"type":"config","data":{"interval":-1}}\n')
        assert plugin.receive_until("log")["level"] == "warning"
        assert plugin.shutdown() == 0


def test_a_quiet_plugin_sends_heartbeats_and_end_of_input_ends_it(program: Path) -> None:
    with ExecProcess([program]) as plugin:
        plugin.receive()
        started = time.monotonic()
        assert plugin.receive(timeout=15) == {"type": "heartbeat"}  # no config: no metrics
        assert time.monotonic() - started < 10
    proc = subprocess.run([str(program)], input=b"", capture_output=True, timeout=30,
                          check=False)
    assert proc.returncode == 0 and proc.stdout.count(b"\n") == 1


def test_a_plugin_host_runs_it_calls_its_hook_and_stops_it(
    c_wheel: Path, tmp_path: Path
) -> None:
    """As an agent runs it: the host's supervised exec child, pushes at the host's metric
    sink, a notify event answered, nothing left after unload."""
    import psutil

    from arcade_core import Event, Metric

    pushed: list[Metric] = []
    with PluginHost(tmp_path / "home") as host:
        host.add_metric_sink(lambda key, metrics: pushed.extend(metrics))
        host.install(c_wheel)
        status = host.load("arcade-cpuc", interval=0.1)
        assert (status.isolation, status.hooks) == ("exec", ["notify"])
        until_sync(lambda: len([m for m in pushed if m.name == "cpuc.round"]) >= 3,
                   what="three rounds pushed")
        host.emit(Event("deploy", {"version": "2"}))
        until_sync(lambda: host.status("arcade-cpuc").calls >= 1, what="the notify call")
        assert host.status("arcade-cpuc").errors == 0
        child = psutil.Process(status.pid)
        host.unload("arcade-cpuc")
        until_sync(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE,
                   what="the C plugin to exit")


def test_a_missing_gcc_fails_where_it_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("ARCADE_REQUIRE_GCC", "1")
    with pytest.raises(_pytest.outcomes.Failed, match="apt-get install -y gcc"):
        find_gcc()
    monkeypatch.delenv("ARCADE_REQUIRE_GCC")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(_pytest.outcomes.Skipped, match="ARCADE_REQUIRE_GCC=1"):
        find_gcc()
