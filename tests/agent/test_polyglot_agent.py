"""The two plugins that are not Python, through a real agent and server: the built-in sh
plugin arcade-loadavg (its wheel as ``arcade publish --builtin`` ships it) and the C plugin of
tests/plugins (compiled with gcc, a platform-tagged wheel) are published, installed, run as
exec children and push metrics that reach the server's metric store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from arcade_agent import Agent
from arcade_server.client import ArcadeClient
from arcade_server.runner import ServerThread
from tests.plugins.cplugin import build_c_wheel, find_gcc
from tests.waiting import DEADLINE, until

from .test_agent import _settings, client, server

__all__ = ["client", "server"]  # the fixtures


@pytest.mark.e2e
async def test_the_sh_and_c_plugins_push_through_a_real_agent(
    server: ServerThread, client: ArcadeClient, tmp_path: Path,
    builtin_wheels: dict[str, Path],
) -> None:
    c_wheel = await asyncio.to_thread(build_c_wheel, find_gcc(), tmp_path / "c")
    await asyncio.to_thread(client.publish, [builtin_wheels["arcade-loadavg"]])
    await asyncio.to_thread(client.publish, [c_wheel])
    # collect_interval is long: what arrives is pushed, not collected.
    async with Agent(_settings(tmp_path, server, collect_interval=3600)) as agent:
        await agent.wait_connected(DEADLINE)
        for spec in ("arcade-loadavg@1.0.0", "arcade-cpuc@0.1.0"):
            status, body = await asyncio.to_thread(client.install, "embedded", spec,
                                                   wait=DEADLINE)
            assert status == 200 and body["state"]["state"] == "running", body
        for name, plugin in (("loadavg.load1", "arcade-loadavg"), ("cpuc.busy", "arcade-cpuc")):
            metrics = await until(lambda n=name: client.metrics("embedded", name=n),
                                  blocking=True, what=f"{name} on the server")
            assert {m["plugin"] for m in metrics} == {plugin}
        for plugin in ("arcade-loadavg", "arcade-cpuc"):
            status = agent.host.status(plugin)
            assert status.isolation == "exec" and status.state == "running"
        assert {p["name"]: p["malformed"] for p in agent.status().plugins} == {
            "arcade-loadavg": 0, "arcade-cpuc": 0}
