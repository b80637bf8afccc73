"""Reconciler with a real PluginHost, real wheels and a real gRPC blob server.

The server side is the test's own grpc.aio servicer (DownloadWheel only), so each desired
state is submitted directly and every status report the agent would send is captured.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from arcade_agent.cache import WheelCache
from arcade_agent.downloader import Downloader
from arcade_agent.reconciler import PluginReport, Reconciler
from arcade_agent.state import StateStore
from arcade_core import PluginHost
from arcade_core.rpc.v1 import pb, pb_grpc
from arcade_core.rpc.v1.convert import from_pb
from arcade_core.states import Isolation, PluginState
from tests.waiting import DEADLINE, until

from .blobserver import BlobService, start
from .plugkit import crasher_wheel, desired_plugin, probe_wheel


@dataclass
class Rig:
    home: Path
    service: BlobService
    host: PluginHost
    reconciler: Reconciler
    reports: list[pb.PluginStatusReport] = field(default_factory=list)
    intervals: dict[str, float] = field(default_factory=dict)

    def publish(self, wheel: Path) -> None:
        self.service.add(wheel.read_bytes())

    async def apply(self, revision: int, *plugins: pb.DesiredPlugin) -> None:
        self.reconciler.submit(pb.DesiredState(revision=revision, plugins=list(plugins)))
        await self.reconciler.wait_applied(revision, timeout=DEADLINE)
        await until(lambda: any(r.revision >= revision and r.complete for r in self.reports),
                    what=f"the complete report of revision {revision}")

    def states(self, name: str) -> list[str]:
        """Every state reported for ``name``, in order, without repeats."""
        out: list[str] = []
        for report in self.reports:
            for p in report.plugins:
                state = from_pb(PluginState, p.state)
                if p.name == name and (not out or out[-1] != state):
                    out.append(str(state))
        return out

    def last(self, name: str) -> PluginReport:
        """The last status reported for ``name``, decoded from the wire."""
        for report in reversed(self.reports):
            for p in report.plugins:
                if p.name == name:
                    state = from_pb(PluginState, p.state)
                    assert state is not None
                    return PluginReport(p.name, p.version, state, p.error, p.restarts,
                                        from_pb(Isolation, p.isolation), p.sha256,
                                        limits=p.limits)
        raise AssertionError(f"no status reported for {name}")

    def collect(self, name: str) -> list[float]:
        outcome = self.host.call("collect", keys=[name])
        assert not outcome.errors, outcome.errors
        return [m.value for m in outcome.results[name]]


async def _rig(home: Path, service: BlobService, target: str) -> tuple[Rig, grpc.aio.Channel]:
    channel = grpc.aio.insecure_channel(target)
    stub = pb_grpc.AgentServiceStub(channel)
    host = PluginHost(home, call_timeout=DEADLINE, restart_backoff=0.01)
    cache = WheelCache(home / "cache" / "wheels", 1 << 30)
    store = StateStore(home / "state.json")
    downloader = Downloader(lambda: stub, "agent-t", cache, retry_backoff=0.01)
    holder: dict[str, Rig] = {}

    async def report(message: pb.AgentMessage) -> bool:
        holder["rig"].reports.append(message.status)
        return True

    def on_plugins(intervals: dict[str, float]) -> None:
        holder["rig"].intervals.clear()
        holder["rig"].intervals.update(intervals)

    reconciler = Reconciler(host, downloader, cache, store, store.load(), report=report,
                            on_plugins=on_plugins)
    rig = Rig(home, service, host, reconciler)
    holder["rig"] = rig
    host.add_listener(reconciler.on_host_event)
    return rig, channel


@pytest.fixture
async def served() -> AsyncIterator[tuple[BlobService, str]]:
    service = BlobService()
    server, target = await start(service)
    try:
        yield service, target
    finally:
        await server.stop(None)


@pytest.fixture
async def rig(served, tmp_path: Path) -> AsyncIterator[Rig]:
    service, target = served
    rig, channel = await _rig(tmp_path / "agent", service, target)
    task = asyncio.create_task(rig.reconciler.run())
    await rig.reconciler.restore()
    try:
        yield rig
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(rig.host.close)
        await channel.close()


def _envs(home: Path, name: str) -> list[str]:
    root = home / "envs" / name
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


async def test_new_plugin_is_downloaded_installed_and_running(rig: Rig, tmp_path: Path) -> None:
    wheel = probe_wheel(tmp_path / "w")
    rig.publish(wheel)
    await rig.apply(1, desired_plugin(wheel, "probe", "1.0.0", interval=0.5))
    assert rig.states("probe") == ["downloading", "installing", "running"]
    assert rig.reports[-1].complete and rig.reports[-1].revision == 1
    assert rig.collect("probe") == [1.0]
    assert rig.intervals == {"probe": 0.5}
    assert rig.reconciler.applied_revision == 1
    saved = json.loads((rig.home / "state.json").read_text())
    assert saved["revision"] == 1 and saved["plugins"][0]["version"] == "1.0.0"


async def test_same_desired_state_twice_does_nothing(rig: Rig, tmp_path: Path) -> None:
    wheel = probe_wheel(tmp_path / "w")
    rig.publish(wheel)
    desired = desired_plugin(wheel, "probe", "1.0.0")
    await rig.apply(1, desired)
    pid_before = rig.host.status("probe")
    downloads = len(rig.service.requests)
    reports = len(rig.reports)
    await rig.apply(2, desired)
    assert len(rig.service.requests) == downloads
    assert rig.host.status("probe").calls == pid_before.calls
    assert rig.states("probe") == ["downloading", "installing", "running"]
    assert len(rig.reports) == reports + 1 and rig.reports[-1].revision == 2
    assert rig.reports[-1].complete


async def test_manifest_interval_is_used_when_desired_state_has_none(rig, tmp_path) -> None:
    wheel = probe_wheel(tmp_path / "w")
    rig.publish(wheel)
    await rig.apply(1, desired_plugin(wheel, "probe", "1.0.0"))
    assert rig.intervals == {"probe": 0.2}


async def test_upgrade_runs_new_code_and_deletes_old_env(rig: Rig, tmp_path: Path) -> None:
    v1, v2 = probe_wheel(tmp_path / "w", "1.0.0"), probe_wheel(tmp_path / "w", "2.0.0")
    rig.publish(v1)
    rig.publish(v2)
    await rig.apply(1, desired_plugin(v1, "probe", "1.0.0"))
    assert _envs(rig.home, "probe")[0].startswith("1.0.0-")
    await rig.apply(2, desired_plugin(v2, "probe", "2.0.0"))
    assert rig.collect("probe") == [2.0]
    assert [e.split("-")[0] for e in _envs(rig.home, "probe")] == ["2.0.0"]
    assert rig.last("probe").version == "2.0.0" and rig.last("probe").state == "running"


async def test_broken_upgrade_keeps_old_version_running_and_reports_failed(
    rig: Rig, tmp_path: Path
) -> None:
    v2, v3 = probe_wheel(tmp_path / "w", "2.0.0"), probe_wheel(tmp_path / "w", "3.0.0",
                                                              broken=True)
    rig.publish(v2)
    rig.publish(v3)
    await rig.apply(1, desired_plugin(v2, "probe", "2.0.0"))
    await rig.apply(2, desired_plugin(v3, "probe", "3.0.0"))
    status = rig.last("probe")
    assert (status.version, status.state) == ("3.0.0", "failed")
    assert "broken on purpose" in status.error and "2.0.0 keeps running" in status.error
    assert rig.collect("probe") == [2.0]
    assert [e.split("-")[0] for e in _envs(rig.home, "probe")] == ["2.0.0"]
    assert [p.version for p in rig.reconciler.running()] == ["2.0.0"]
    # Delivered again (a reconnect): the deterministic failure is not retried.
    requests = len(rig.service.requests)
    await rig.apply(3, desired_plugin(v3, "probe", "3.0.0"))
    assert len(rig.service.requests) == requests
    assert rig.last("probe").state == "failed" and rig.collect("probe") == [2.0]


async def test_config_change_reconfigures_in_place(rig: Rig, tmp_path: Path) -> None:
    wheel = probe_wheel(tmp_path / "w")
    rig.publish(wheel)
    await rig.apply(1, desired_plugin(wheel, "probe", "1.0.0"))
    await rig.apply(2, desired_plugin(wheel, "probe", "1.0.0", config_json='{"scale": 10}'))
    assert rig.collect("probe") == [10.0]
    assert rig.reconciler.state.plugins["probe"].config == {"scale": 10}


async def test_invalid_config_is_reported_and_old_config_kept(rig: Rig, tmp_path: Path) -> None:
    wheel = probe_wheel(tmp_path / "w")
    rig.publish(wheel)
    await rig.apply(1, desired_plugin(wheel, "probe", "1.0.0", config_json='{"scale": 3}'))
    await rig.apply(2, desired_plugin(wheel, "probe", "1.0.0", config_json='{"scael": 4}'))
    status = rig.last("probe")
    assert status.state == "failed" and "reconfigure failed" in status.error
    assert rig.collect("probe") == [3.0]


async def test_isolation_change_moves_plugin_into_a_process(rig: Rig, tmp_path: Path) -> None:
    wheel = probe_wheel(tmp_path / "w")
    rig.publish(wheel)
    await rig.apply(1, desired_plugin(wheel, "probe", "1.0.0"))
    assert rig.host.status("probe").pid is None
    await rig.apply(2, desired_plugin(wheel, "probe", "1.0.0", isolation="process"))
    status = rig.host.status("probe")
    assert status.isolation == "process" and status.pid is not None
    assert rig.collect("probe") == [1.0]
    assert rig.last("probe").isolation == "process"


async def test_a_resources_override_reaches_the_host_and_the_report(
    rig: Rig, tmp_path: Path,
) -> None:
    wheel = probe_wheel(tmp_path / "w")
    rig.publish(wheel)
    desired = desired_plugin(wheel, "probe", "1.0.0", isolation="process")
    desired.resources["memory"] = "256Mi"
    await rig.apply(1, desired)
    assert rig.host.status("probe").limits == "memory 256Mi: watchdog"
    assert rig.last("probe").limits == "memory 256Mi: watchdog"
    assert rig.reconciler.state.plugins["probe"].resources == {"memory": "256Mi"}
    first = rig.host.status("probe").pid

    desired.resources["memory"] = "512Mi"  # a new override alone restarts it with it
    await rig.apply(2, desired)
    assert rig.host.status("probe").limits == "memory 512Mi: watchdog"
    assert rig.host.status("probe").pid not in (None, first)
    assert rig.collect("probe") == [1.0]

    desired.resources["memory"] = "lots"  # refused by the host: the plugin keeps its limits
    await rig.apply(3, desired)
    assert "resources: memory is 'lots'" in rig.last("probe").error
    assert rig.host.status("probe").limits == "memory 512Mi: watchdog"
    assert rig.collect("probe") == [1.0]


async def test_plugin_absent_from_desired_state_is_removed(rig: Rig, tmp_path: Path) -> None:
    a = probe_wheel(tmp_path / "w", name="alpha", metric="alpha.major")
    b = probe_wheel(tmp_path / "w", name="beta", metric="beta.major")
    rig.publish(a)
    rig.publish(b)
    await rig.apply(1, desired_plugin(a, "alpha", "1.0.0"), desired_plugin(b, "beta", "1.0.0"))
    await rig.apply(2, desired_plugin(b, "beta", "1.0.0"))
    assert rig.last("alpha").state == "removed"
    assert [p.key for p in rig.host.plugins()] == ["beta"]
    assert _envs(rig.home, "alpha") == []
    assert set(rig.intervals) == {"beta"}
    assert rig.collect("beta") == [1.0]
    await rig.apply(3, desired_plugin(b, "beta", "1.0.0"))
    assert "alpha" not in [p.name for p in rig.reports[-1].plugins]


async def test_altered_wheel_is_refused_and_nothing_installed(rig: Rig, tmp_path: Path) -> None:
    wheel = probe_wheel(tmp_path / "w")
    rig.publish(wheel)
    desired = desired_plugin(wheel, "probe", "1.0.0")
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    rig.service.served[desired.wheels[0].sha256] = bytes(data)
    await rig.apply(1, desired)
    status = rig.last("probe")
    assert status.state == "failed" and "sha256 mismatch" in status.error
    assert rig.host.plugins() == [] and rig.host.installed() == []
    assert desired.wheels[0].sha256 not in rig.reconciler.cache
    assert list((rig.home / "cache" / "wheels" / ".partial").iterdir()) == []
    # A download failure is not remembered: once the blob is right, the next delivery works.
    del rig.service.served[desired.wheels[0].sha256]
    await rig.apply(2, desired)
    assert rig.last("probe").state == "running"


async def test_newer_desired_state_supersedes_one_in_flight(rig: Rig, tmp_path: Path) -> None:
    slow = probe_wheel(tmp_path / "w", name="slow", metric="slow.major")
    fast = probe_wheel(tmp_path / "w", name="fast", metric="fast.major")
    rig.publish(slow)
    rig.publish(fast)
    rig.service.chunk_size = 64
    rig.service.chunk_delay = 0.02  # the slow wheel takes seconds to arrive
    rig.reconciler.submit(pb.DesiredState(revision=1, plugins=[
        desired_plugin(slow, "slow", "1.0.0")]))
    await until(lambda: rig.service.requests, what="the slow download to start")
    rig.service.chunk_size = 1 << 20
    rig.service.chunk_delay = 0
    await rig.apply(2, desired_plugin(fast, "fast", "1.0.0"))
    assert [p.key for p in rig.host.plugins()] == ["fast"]
    assert rig.reconciler.applied_revision == 2
    assert rig.reports[-1].revision == 2 and rig.reports[-1].complete
    assert [p.name for p in rig.reports[-1].plugins] == ["fast"]


async def test_restart_restores_plugins_from_disk_without_download(
    served, tmp_path: Path
) -> None:
    service, target = served
    home = tmp_path / "agent"
    wheel = probe_wheel(tmp_path / "w")
    service.add(wheel.read_bytes())
    rig, channel = await _rig(home, service, target)
    task = asyncio.create_task(rig.reconciler.run())
    await rig.apply(4, desired_plugin(wheel, "probe", "1.0.0", config_json='{"scale": 5}'))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.to_thread(rig.host.close)
    await channel.close()
    requests = len(service.requests)

    again, channel = await _rig(home, service, target)
    try:
        await again.reconciler.restore()
        assert again.collect("probe") == [5.0]
        assert again.reconciler.applied_revision == 4
        assert [(p.name, p.state) for p in again.reconciler.running()] == [("probe", "running")]
        task = asyncio.create_task(again.reconciler.run())
        await again.apply(5, desired_plugin(wheel, "probe", "1.0.0", config_json='{"scale": 5}'))
        assert len(service.requests) == requests          # nothing downloaded again
        assert again.reconciler.downloader.stats().downloads == 0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await asyncio.to_thread(again.host.close)
        await channel.close()


async def test_process_plugin_that_crashes_ends_failed_after_restarts(
    rig: Rig, tmp_path: Path
) -> None:
    crasher = crasher_wheel(tmp_path / "w")
    rig.publish(crasher)
    await rig.apply(1, desired_plugin(crasher, "crasher", "1.0.0", isolation="process"))

    def crash_until_failed() -> bool:
        # Each collect kills the child; the supervisor restarts it until it gives up.
        state = rig.host.status("crasher").state
        if state == "running":
            rig.host.call("collect", keys=["crasher"], timeout=DEADLINE)
        return state == "failed"

    await until(crash_until_failed, blocking=True, what="the crasher to fail for good")
    await until(lambda: rig.last("crasher").state == "failed", what="the failure reported")
    status = rig.last("crasher")
    assert status.state == "failed" and status.restarts == 3


async def test_unexpected_error_is_reported_and_other_plugins_still_apply(
    rig: Rig, tmp_path: Path
) -> None:
    good = probe_wheel(tmp_path / "w", name="good", metric="good.major")
    odd = probe_wheel(tmp_path / "w", name="odd", metric="odd.major")
    rig.publish(good)
    rig.publish(odd)
    hostile = desired_plugin(odd, "odd", "1.0.0")
    hostile.wheels[0].filename = "../escape.whl"        # a server bug or a hostile server
    await rig.apply(1, hostile, desired_plugin(good, "good", "1.0.0"))
    status = rig.last("odd")
    assert status.state == "failed" and "invalid wheel filename" in status.error
    assert rig.last("good").state == "running" and rig.collect("good") == [1.0]
    assert not (rig.home / "cache" / "escape.whl").exists()
    # Not remembered: the corrected desired state installs it.
    await rig.apply(2, desired_plugin(odd, "odd", "1.0.0"), desired_plugin(good, "good", "1.0.0"))
    assert rig.last("odd").state == "running"


async def test_no_isolation_in_desired_state_uses_the_manifest_default(
    rig: Rig, tmp_path: Path
) -> None:
    crasher = crasher_wheel(tmp_path / "w")           # its manifest says "process"
    rig.publish(crasher)
    await rig.apply(1, desired_plugin(crasher, "crasher", "1.0.0", isolation=""))
    assert rig.host.status("crasher").isolation == "process"
    assert rig.reconciler.state.plugins["crasher"].isolation == "process"
    assert rig.last("crasher").isolation == "process"
    await rig.apply(2, desired_plugin(crasher, "crasher", "1.0.0", isolation=""))
    assert rig.last("crasher").isolation == "process"   # no preference: nothing to change
