"""Exec plugins: a real ``sh`` script in a real wheel, run by the host as a supervised child
speaking the JSON line protocol (no mocks: real processes, real pipes)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from arcade_core import Event, Metric, PluginHost, PluginLoadError
from tests.core.hostkit import child_pids, make_host, pid_alive, wait_for
from tests.execkit import exec_wheel
from tests.wheelmaker import make_wheel


class Sink:
    """A metric sink that keeps what it heard (called from reader threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[tuple[str, list[Metric]]] = []

    def __call__(self, key: str, metrics: list[Metric]) -> None:
        with self.lock:
            self.batches.append((key, list(metrics)))

    def values(self, key: str, name: str = "test.value") -> list[tuple[float, dict[str, str]]]:
        with self.lock:
            return [(m.value, m.labels) for k, batch in self.batches if k == key
                    for m in batch if m.name == name]


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def exec_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sink: Sink
              ) -> Iterator[PluginHost]:
    monkeypatch.delenv("ARCADE_PLUGINS", raising=False)
    with make_host(tmp_path, hang_timeout=30.0) as host:
        host.add_metric_sink(sink)
        host.install(exec_wheel(tmp_path / "wheels"))
        yield host


def test_exec_plugin_says_hello_gets_its_config_and_pushes_metrics(
    exec_host: PluginHost, sink: Sink
) -> None:
    status = exec_host.load("exec-test", config={"value": 7}, interval=0.2)
    assert status.isolation == "exec" and status.state == "running"
    assert status.hooks == ["notify"] and status.interval == 0.2
    wait_for(lambda: len(sink.values("exec-test")) >= 2, what="two pushed metrics")
    value, labels = sink.values("exec-test")[0]
    assert value == 7.0 and labels == {"pid": str(status.pid)}
    # The config message carries the plugin's config with the interval merged in.
    lines = [line.text for line in exec_host.logs("exec-test")[0]]
    assert 'config: {"type":"config","data":{"value":7,"interval":0.2}}' in lines
    assert "test plugin starting" in lines


def test_interval_in_the_config_message_defaults_to_manifest_then_host(
    tmp_path: Path, sink: Sink
) -> None:
    with make_host(tmp_path, default_interval=60.0) as host:
        host.install(exec_wheel(tmp_path / "wheels"))
        host.install(exec_wheel(tmp_path / "wheels", "exec-manifest", interval=5))
        assert host.load("exec-test").interval == 60.0
        assert host.load("exec-manifest").interval == 5.0

        def configs(key: str) -> list[str]:
            return [line.text for line in host.logs(key)[0] if line.text.startswith("config")]

        wait_for(lambda: configs("exec-test") and configs("exec-manifest"))
        # The example, verbatim: {"type": "config", "data": {"interval": 60}}.
        sent = json.loads(configs("exec-test")[0].removeprefix("config: "))
        assert sent == {"type": "config", "data": {"interval": 60}}
        assert configs("exec-test")[0].endswith('"data":{"interval":60}}')
        assert configs("exec-manifest") == ['config: {"type":"config","data":{"interval":5}}']
    # An agent's collect_interval_override: every plugin's interval, whatever it names.
    with make_host(tmp_path / "override", interval_override=2.0) as host:
        host.install(exec_wheel(tmp_path / "wheels", "exec-manifest", interval=5))
        assert host.load("exec-manifest").interval == 2.0
        assert host.load("exec-manifest", interval=7).interval == 2.0


def test_config_change_reaches_the_running_plugin_without_a_restart(
    exec_host: PluginHost, sink: Sink
) -> None:
    first = exec_host.load("exec-test", config={"value": 1}, interval=0.2)
    wait_for(lambda: sink.values("exec-test"), what="a first metric")
    changed = exec_host.reconfigure("exec-test", {"value": 2}, interval=0.1)
    assert changed.pid == first.pid and changed.restarts == 0
    assert changed.config == {"value": 2} and changed.interval == 0.1
    wait_for(lambda: (2.0, {"pid": str(first.pid)}) in sink.values("exec-test"),
             what="the new value pushed by the same process")
    # An interval change alone is a config message too.
    exec_host.load("exec-test", config={"value": 2}, interval=0.3)
    wait_for(lambda: any('"interval":0.3' in line.text
                         for line in exec_host.logs("exec-test")[0]))
    assert exec_host.status("exec-test").pid == first.pid


def test_declared_hook_is_called_and_log_messages_reach_the_ring(
    exec_host: PluginHost
) -> None:
    exec_host.load("exec-test", config={"value": 1}, interval=5)
    outcome = exec_host.emit(Event("test.ping", {"n": 1}))
    assert outcome.errors == {} and outcome.results == {"exec-test": None}
    wait_for(lambda: any(line.level == "INFO" and line.text == "notified 1"
                         for line in exec_host.logs("exec-test")[0]))
    assert any(line.level == "stderr" and line.text == "notify call 1"
               for line in exec_host.logs("exec-test")[0])
    # Only declared hooks are called: the proxy has no collect.
    assert exec_host.hook.collect() == []


def test_plugin_that_never_says_hello_fails_to_start(tmp_path: Path) -> None:
    before = child_pids()
    with make_host(tmp_path, start_timeout=1.0) as host:
        host.install(exec_wheel(tmp_path / "wheels"))
        with pytest.raises(PluginLoadError, match=r"said no 'hello' within 1s"):
            host.load("exec-test", config={"mode": "silent"})
        assert host.plugins() == []
    wait_for(lambda: child_pids() <= before, what="no child left")


def test_crash_is_restarted_three_times_then_failed(exec_host: PluginHost) -> None:
    exec_host.load("exec-test", config={"mode": "crash"})
    wait_for(lambda: exec_host.status("exec-test").state == "failed", what="failed")
    status = exec_host.status("exec-test")
    assert status.restarts == 3 and "exited with code 3" in status.last_error
    assert "crashing now" in status.last_error


def test_silent_plugin_is_killed_as_hung_and_that_is_a_crash(tmp_path: Path) -> None:
    with make_host(tmp_path, hang_timeout=0.5) as host:
        host.install(exec_wheel(tmp_path / "wheels"))
        first = host.load("exec-test", config={"mode": "hang"}).pid
        assert first is not None
        wait_for(lambda: host.status("exec-test").state == "failed", what="failed")
        status = host.status("exec-test")
        assert status.restarts == 3 and status.last_error == "no message for 0.5s: hung"
        assert not pid_alive(first)
        assert any("crashed: no message for 0.5s: hung" in line.text
                   for line in host.logs("exec-test")[0])


def test_pushing_plugin_is_not_hung(tmp_path: Path, sink: Sink) -> None:
    with make_host(tmp_path, hang_timeout=0.5) as host:
        host.add_metric_sink(sink)
        host.install(exec_wheel(tmp_path / "wheels"))
        pid = host.load("exec-test", interval=0.1).pid
        wait_for(lambda: len(sink.values("exec-test")) >= 15, what="1.5 s of metrics")
        status = host.status("exec-test")
        assert status.pid == pid and status.restarts == 0 and status.state == "running"


def test_garbage_lines_are_logged_and_counted_never_fatal(
    exec_host: PluginHost, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    pid = exec_host.load("exec-test", config={"mode": "garbage", "value": 3}, interval=0.2).pid
    wait_for(lambda: sink.values("exec-test"), what="metrics after the garbage")
    status = exec_host.status("exec-test")
    assert status.malformed == 2 and status.state == "running" and status.pid == pid
    assert "exec-test sent a malformed protocol line" in caplog.text
    assert "this is not json" in caplog.text and "unknown message type 'bogus'" in caplog.text
    assert any("malformed protocol line" in line.text for line in exec_host.logs("exec-test")[0])


def test_stop_leaves_no_process(exec_host: PluginHost, sink: Sink) -> None:
    before = child_pids()
    exec_host.load("exec-test", interval=0.1)
    wait_for(lambda: sink.values("exec-test"))
    exec_host.unload("exec-test")
    wait_for(lambda: child_pids() <= before, what="the script and its pusher gone")
    count = len(sink.values("exec-test"))
    assert exec_host.plugins() == [] and count >= 1


def test_exec_and_python_plugins_refuse_the_other_isolation(
    exec_host: PluginHost, tmp_path: Path
) -> None:
    with pytest.raises(PluginLoadError, match=r"is an exec plugin .* not 'process'"):
        exec_host.load("exec-test", isolation="process")
    with pytest.raises(PluginLoadError, match=r"is an exec plugin .* not 'inline'"):
        exec_host.load("exec-test", isolation="inline")
    exec_host.install(make_wheel(tmp_path / "py", "py-plain"))
    with pytest.raises(PluginLoadError, match="is a Python plugin: load it 'inline' or"):
        exec_host.load("py-plain", isolation="exec")
    exec_host.install(make_wheel(tmp_path / "py", "exec-missing",
                                 manifest={"description": "x", "exec": "not-shipped"}))
    with pytest.raises(PluginLoadError, match="names the executable 'not-shipped', but"):
        exec_host.load("exec-missing")
    assert exec_host.plugins() == []


def test_exec_plugin_that_declares_collect_is_collected(exec_host: PluginHost) -> None:
    status = exec_host.load("exec-test", config={"mode": "collect", "value": 9}, interval=60)
    assert status.hooks == ["notify", "collect"]
    [[metric]] = exec_host.hook.collect()
    assert isinstance(metric, Metric) and (metric.name, metric.value) == ("test.collected", 9.0)


CONSOLE_MAIN = '''import json, sys

def main():
    config = json.loads(sys.stdin.readline())["data"]
    print(json.dumps({"type": "hello", "protocol": 1, "hooks": []}), flush=True)
    print(json.dumps({"type": "metric", "data": {"name": "console.value",
                                                 "value": config["value"]}}), flush=True)
    for line in sys.stdin:
        if json.loads(line)["type"] == "shutdown":
            return
'''


def test_a_console_script_can_be_the_executable(tmp_path: Path, sink: Sink,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCADE_PLUGINS", raising=False)
    wheel = make_wheel(tmp_path / "wheels", "console-plugin",
                       entry_points=["console-plugin = console_plugin",
                                     "[console_scripts]", "console-tool = console_plugin:main"],
                       files={"console_plugin/__init__.py": CONSOLE_MAIN},
                       manifest={"exec": "console-tool"})
    with make_host(tmp_path / "home") as host:
        host.add_metric_sink(sink)
        host.install(wheel)
        status = host.load("console-plugin", config={"value": 5})
        assert status.isolation == "exec" and status.state == "running"
        wait_for(lambda: sink.values("console-plugin", "console.value") == [(5.0, {})],
                 what="the console script's metric")
        host.unload("console-plugin")
        assert not pid_alive(status.pid or 0)
