"""The agent's plugin health reports without a server: a real host, a real plugin, and the
messages the statuses would send (kept in a list)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from arcade_agent._statuses import Statuses
from arcade_agent.report import PluginReport
from arcade_agent.state import AppliedPlugin, AppliedState
from arcade_core import Event, PluginHost
from arcade_core.rpc.v1 import pb
from arcade_core.states import Isolation, PluginState
from tests.wheelmaker import make_wheel

FLAKY = '''\
import os
from arcade_core import hookimpl, Metric


class Plugin:
    def __init__(self, config):
        self.flag = config["flag"]

    @hookimpl
    def collect(self):
        if os.path.exists(self.flag):
            raise RuntimeError("unplugged")
        return [Metric(name="ok", value=1.0)]
'''


@pytest.fixture
def host(tmp_path: Path) -> Iterator[PluginHost]:
    with PluginHost(tmp_path / "home", allow=None) as h:
        h.install([make_wheel(tmp_path / "w", "flaky", "1.0.0",
                              files={"flaky/__init__.py": FLAKY})])
        yield h


async def test_degraded_comes_and_goes_and_reports_do_not_flood(host: PluginHost,
                                                                  tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.write_text("")
    host.load("flaky", config={"flag": str(flag)})
    state = AppliedState(1, {"flaky": AppliedPlugin("flaky", "1.0.0", "", Isolation.INLINE,
                                                    {"flag": str(flag)})})
    sent: list[pb.AgentMessage] = []

    async def report(message: pb.AgentMessage) -> bool:
        sent.append(message)
        return True

    statuses = Statuses(host, state, report, degraded_after=2,
                        collected_at=lambda name: 123.0)

    def last() -> pb.PluginStatus:
        [plugin] = sent[-1].status.plugins
        return plugin

    async def settle() -> None:
        for _ in range(3):
            await asyncio.sleep(0)

    statuses.set(PluginReport("flaky", "1.0.0", PluginState.RUNNING))
    await settle()
    assert len(sent) == 1 and last().state == pb.PLUGIN_STATE_RUNNING
    assert not statuses.watch() and not statuses.watch(counters=True)   # nothing new
    host.hook.collect()
    assert statuses.watch()                     # the first error is news
    await settle()
    assert (last().state, last().errors) == (pb.PLUGIN_STATE_RUNNING, 1)
    host.hook.collect()
    assert statuses.watch()                     # two in a row: degraded
    await settle()
    assert (last().state, last().errors, last().error) == (
        pb.PLUGIN_STATE_DEGRADED, 2, "RuntimeError: unplugged")
    assert last().error_at > 0 and last().last_collect_at == 123.0
    host.hook.collect()
    assert not statuses.watch()                 # a third failure: same news, not sent
    assert statuses.watch(counters=True)        # the count is refreshed with the counters
    await settle()
    assert last().errors == 3
    # An error whose text changes is not news on its own either (no report per call).
    assert PluginReport("flaky", "1.0.0", PluginState.DEGRADED, "a").news() == \
        PluginReport("flaky", "1.0.0", PluginState.DEGRADED, "b").news()
    # A host event stores the refreshed (degraded) report; it still heals.
    statuses.host_event(Event("plugin.crashed", {"key": "flaky"}))
    await settle()
    flag.unlink()
    host.hook.collect()
    assert statuses.watch()
    await settle()
    assert last().state == pb.PLUGIN_STATE_RUNNING and last().error == "RuntimeError: unplugged"
    assert statuses.all()[0].state is PluginState.RUNNING
