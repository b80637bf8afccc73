"""Pushed metrics end to end: a real server, a real agent, an exec plugin (a ``sh`` script in
a real wheel) pushing on its own schedule; its metrics reach the server's metric store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from arcade_agent import Agent
from arcade_server.client import ArcadeClient
from arcade_server.runner import ServerThread
from tests.execkit import exec_wheel
from tests.waiting import DEADLINE, until

from .test_agent import _settings, client, server

__all__ = ["client", "server"]  # the fixtures


@pytest.mark.e2e
async def test_exec_plugin_pushed_metrics_reach_the_server(
    server: ServerThread, client: ArcadeClient, tmp_path: Path
) -> None:
    wheel = exec_wheel(tmp_path / "w", interval=0.2)
    await asyncio.to_thread(client.publish, [wheel])
    # collect_interval is long: what arrives is pushed, not collected.
    async with Agent(_settings(tmp_path, server, collect_interval=3600)) as agent:
        await agent.wait_connected(DEADLINE)
        status, body = await asyncio.to_thread(client.install, "embedded", "exec-test@1.0.0",
                                               config={"value": 4}, wait=DEADLINE)
        assert status == 200 and body["state"]["state"] == "running"
        metrics = await until(lambda: client.metrics("embedded", name="test.value"),
                              blocking=True, what="test.value on the server")
        assert {m["value"] for m in metrics} == {4.0}
        assert {m["plugin"] for m in metrics} == {"exec-test"}
        plugin = agent.host.status("exec-test")
        assert plugin.isolation == "exec" and plugin.interval == 0.2
        assert agent.collector.pushed_total >= 1
        snapshot = agent.status()
        assert [(p["name"], p["isolation"], p["malformed"]) for p in snapshot.plugins] == [
            ("exec-test", "exec", 0)]
