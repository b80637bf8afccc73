"""MetricBuffer bounds and the Collector's schedule, with a real PluginHost."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from arcade_agent.collector import Collector, MetricBuffer
from arcade_core import PluginHost
from arcade_core.rpc.v1 import pb
from tests.waiting import DEADLINE, until

from .plugkit import probe_wheel


def _metrics(n: int, start: int = 0) -> list[pb.Metric]:
    return [pb.Metric(plugin="p", name="m", value=float(i)) for i in range(start, start + n)]


def test_buffer_drops_oldest_and_counts_what_it_dropped() -> None:
    buffer = MetricBuffer(capacity=5)
    buffer.add(_metrics(8))
    assert len(buffer) == 5 and buffer.dropped_total == 3
    batch, dropped = buffer.take(2)
    assert [m.value for m in batch] == [3.0, 4.0] and dropped == 3
    assert buffer.take(0) == ([], 0)                   # the drop count is reported once


def test_unsent_batch_goes_back_to_the_front_and_keeps_its_drop_count() -> None:
    buffer = MetricBuffer(capacity=4)
    buffer.add(_metrics(5))
    batch, dropped = buffer.take(3)
    buffer.add(_metrics(2, start=100))
    buffer.put_back(batch, dropped)                    # 3 + 1 + 2 = 6 > 4: oldest go
    values = [m.value for m in buffer.take(10)[0]]
    assert values == [3.0, 4.0, 100.0, 101.0]
    assert buffer.dropped_total == 3


async def test_plugins_are_collected_on_their_own_intervals(tmp_path: Path) -> None:
    host = PluginHost(tmp_path / "home")
    try:
        for name in ("fast", "slow"):
            host.install([probe_wheel(tmp_path / "w", name=name, metric=f"{name}.major")])
            host.load(name)
        collector = Collector(host, default_interval=3600.0, call_timeout=DEADLINE,
                              buffer=MetricBuffer(1000))
        collector.set_plugins({"fast": 0.05, "slow": 0.0})   # slow: the hourly default
        began, started = time.time(), time.monotonic()
        task = asyncio.create_task(collector.run())
        try:
            # Every collection includes fast (the first one slow too).
            await until(lambda: collector.collections >= 6, what="six collections")
        finally:
            elapsed = time.monotonic() - started
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        batch, _ = collector.buffer.take(1000)
        by_plugin: dict[str, list[pb.Metric]] = {}
        for metric in batch:
            by_plugin.setdefault(metric.plugin, []).append(metric)
        assert len(by_plugin["slow"]) == 1                   # once at start, then in an hour
        # At least six, and never more often than its interval (a busy machine only
        # makes it fewer).
        assert 6 <= len(by_plugin["fast"]) <= elapsed / 0.05 + 2
        assert all(m.name == "fast.major" and m.value == 1.0 for m in by_plugin["fast"])
        assert all(began <= m.timestamp <= time.time() for m in batch)
    finally:
        host.close()


async def test_interval_override_replaces_every_interval(tmp_path: Path) -> None:
    host = PluginHost(tmp_path / "home")
    try:
        collector = Collector(host, default_interval=10.0, call_timeout=DEADLINE,
                              buffer=MetricBuffer(10), interval_override=0.5)
        collector.set_plugins({"a": 30.0, "b": 0.0})
        assert collector.intervals == {"a": 0.5, "b": 0.5}
    finally:
        host.close()


async def test_collect_errors_are_counted_per_plugin(tmp_path: Path) -> None:
    from tests.wheelmaker import make_wheel

    host = PluginHost(tmp_path / "home")
    try:
        host.install([make_wheel(tmp_path / "w", "raiser", files={"raiser/__init__.py": (
            "from arcade_core import hookimpl\n"
            "class Plugin:\n"
            "    def __init__(self, config): pass\n"
            "    @hookimpl\n"
            "    def collect(self): raise ValueError('sensor unplugged')\n")})])
        host.install([probe_wheel(tmp_path / "w")])
        host.load("raiser")
        host.load("probe")
        collector = Collector(host, default_interval=1.0, call_timeout=DEADLINE,
                              buffer=MetricBuffer(10))
        assert await collector.collect(["raiser", "probe"]) == 1
        assert collector.collect_errors == {"raiser": 1}
        assert "sensor unplugged" in collector.last_error["raiser"]
    finally:
        host.close()
