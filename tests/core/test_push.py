"""Python plugins push metrics (in-process and in a process child), a process child's
heartbeats keep an idle one from being taken for hung, and a config change reaches a running
child without a restart (``configure(config)`` when the plugin has it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from arcade_core import Metric, PluginHost, PluginLoadError
from tests.core.hostkit import HEADER, host, install, make_host, metric_plugin, wait_for
from tests.core.test_exec import Sink
from tests.execkit import exec_wheel

__all__ = ["host"]  # the fixture

PUSHER = HEADER + '''
import threading


class Plugin:
    def __init__(self, config, metrics):
        self.config = config
        self.metrics = metrics
        self.stop = threading.Event()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        n = 0
        while not self.stop.wait(0.02):
            n += 1
            self.metrics.push([Metric("pushed.n", n, labels={"v": str(self.config.get("v"))}),
                               {"name": "pushed.dict", "value": 1.5}])

    @hookimpl
    def collect(self):
        return [Metric("pulled", 1.0)]
'''

CONFIGURABLE = HEADER + '''
import os

INITS = 0


class Plugin:
    def __init__(self, config):
        global INITS
        INITS += 1
        self.config = config

    def configure(self, config):
        if config.get("bad"):
            raise ValueError("bad is not allowed")
        self.config = config

    @hookimpl
    def collect(self):
        return [Metric("value", float(self.config.get("v", 0)),
                       labels={"inits": str(INITS), "pid": str(os.getpid())})]
'''


@pytest.fixture
def sink(host: PluginHost) -> Sink:
    sink = Sink()
    host.add_metric_sink(sink)
    return sink


def _names(sink: Sink, key: str) -> set[str]:
    with sink.lock:
        return {m.name for k, batch in sink.batches if k == key for m in batch}


@pytest.mark.parametrize("isolation", ["inline", "process"])
def test_python_plugin_pushes_metrics_to_the_host_sink(
    host: PluginHost, tmp_path: Path, sink: Sink, isolation: str
) -> None:
    install(host, tmp_path, "py-pusher", "1.0.0", PUSHER)
    host.load("py-pusher", config={"v": 1}, isolation=isolation)
    wait_for(lambda: _names(sink, "py-pusher") == {"pushed.n", "pushed.dict"},
             what="pushed metrics of both shapes")
    assert {labels["v"] for _, labels in sink.values("py-pusher", "pushed.n")} == {"1"}
    # Pull-style collect still works beside it.
    assert [m[0].name for m in host.hook.collect()] == ["pulled"]


def test_in_process_push_handle_interval_updates_and_closes_on_unload(
    host: PluginHost, tmp_path: Path, sink: Sink
) -> None:
    install(host, tmp_path, "py-pusher", "1.0.0", PUSHER)
    host.load("py-pusher", interval=2)
    plugin: Any = host.pm.get_plugin("py-pusher")
    assert plugin.metrics.interval == 2.0
    host.load("py-pusher", interval=3)  # same config: the same instance, a new interval
    assert host.pm.get_plugin("py-pusher") is plugin and plugin.metrics.interval == 3.0
    with pytest.raises(TypeError, match="Metric objects or dicts, not str"):
        plugin.metrics.push("cpu 5")
    with pytest.raises(ValueError, match="'value' must be a finite number"):
        plugin.metrics.push({"name": "x", "value": "high"})
    host.unload("py-pusher")
    plugin.stop.set()
    assert plugin.metrics.closed
    before = len(sink.values("py-pusher", "pushed.n"))
    plugin.metrics.push(Metric("after.unload", 1.0))
    assert "after.unload" not in _names(sink, "py-pusher")
    assert len(sink.values("py-pusher", "pushed.n")) >= before


def test_idle_process_child_sends_heartbeats_and_is_not_hung(tmp_path: Path) -> None:
    with make_host(tmp_path, hang_timeout=0.3) as host:
        install(host, tmp_path, "py-idle", "1.0.0", metric_plugin(1.0))
        pid = host.load("py-idle", isolation="process").pid
        # A clock made of events: a silent exec plugin is killed as hung four times.
        host.install(exec_wheel(tmp_path / "exec"))
        host.load("exec-test", config={"mode": "hang"})
        wait_for(lambda: host.status("exec-test").state == "failed", what="the hung one")
        status = host.status("py-idle")
        assert status.state == "running" and status.pid == pid and status.restarts == 0


def test_process_child_takes_a_new_config_through_configure(
    host: PluginHost, tmp_path: Path
) -> None:
    install(host, tmp_path, "py-conf", "1.0.0", CONFIGURABLE)
    pid = host.load("py-conf", config={"v": 1}, isolation="process").pid
    host.reconfigure("py-conf", {"v": 2})
    metric = host.hook.collect()[0][0]
    assert metric.value == 2.0 and metric.labels == {"inits": "1", "pid": str(pid)}

    with pytest.raises(PluginLoadError, match="new config was refused: ValueError: bad is"):
        host.reconfigure("py-conf", {"v": 3, "bad": True})
    status = host.status("py-conf")
    assert status.config == {"v": 2} and status.pid == pid and status.state == "running"
    assert host.hook.collect()[0][0].value == 2.0
