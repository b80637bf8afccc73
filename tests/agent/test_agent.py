"""The embedded Agent against the real Arcade server (in a thread of this process)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from arcade_agent import Agent, AgentSettings
from arcade_server.client import ArcadeClient
from arcade_server.runner import ServerThread
from arcade_server.settings import Settings
from tests.waiting import DEADLINE, until

from .plugkit import probe_wheel


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server(home: Path, grpc_port: int = 0) -> ServerThread:
    return ServerThread(Settings(home=home, http_port=0, grpc_port=grpc_port,
                                 heartbeat_interval=0.5, offline_after=3,
                                 wait_poll_interval=0.2, shutdown_grace=0.5)).start()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerThread]:
    thread = await asyncio.to_thread(_server, tmp_path / "server")
    try:
        yield thread
    finally:
        await asyncio.to_thread(thread.stop)


@pytest.fixture
def client(server: ServerThread) -> Iterator[ArcadeClient]:
    # closed even when the test fails
    with ArcadeClient(server.http_url, token=server.admin_token) as api:
        yield api


def _settings(tmp_path: Path, target: str, **kw: Any) -> AgentSettings:
    return AgentSettings(server=target, home=tmp_path / "agent", agent_id="embedded",
                         reconnect_initial=0.05, reconnect_max=0.3, restart_backoff=0.05,
                         labels={"role": "test"}, **kw)


@pytest.mark.e2e
async def test_embedded_agent_registers_installs_and_reports(
    server: ServerThread, client: ArcadeClient, tmp_path: Path
) -> None:
    wheel = probe_wheel(tmp_path / "w")
    await asyncio.to_thread(client.publish, [wheel])
    async with Agent(_settings(tmp_path, server.grpc_target, collect_interval=0.1)) as agent:
        await agent.wait_connected(DEADLINE)
        assert agent.connection.heartbeat_interval == 0.5       # taken from Welcome
        info = await asyncio.to_thread(client.agent, "embedded")
        assert info["labels"] == {"role": "test"} and info["online"]
        status, body = await asyncio.to_thread(client.install, "embedded", "probe@1.0.0",
                                               wait=DEADLINE)
        assert status == 200 and body["state"]["state"] == "running"
        # The install answers on the plugin's "running" report, sent while the agent is
        # still finishing the revision (saving its state): the revision counts as applied
        # only once that is done.
        await agent.reconciler.wait_applied(body["revision"], timeout=DEADLINE)
        await until(lambda: client.metrics("embedded", name="probe.major"), blocking=True,
                    what="probe.major on the server")
        snapshot = agent.status()
        assert snapshot.connected and snapshot.applied_revision == body["revision"]
        assert [(p["name"], p["state"]) for p in snapshot.plugins] == [("probe", "running")]
        assert snapshot.downloads is not None and snapshot.downloads.downloads == 1
        assert snapshot.cache is not None and snapshot.cache.pinned == 1
        await until(lambda: agent.status().metrics_sent > 0, what="metrics_sent > 0")


@pytest.mark.e2e
async def test_metrics_buffer_while_disconnected_and_report_drops(tmp_path: Path) -> None:
    port = _free_port()
    home = tmp_path / "server"
    server = await asyncio.to_thread(_server, home, port)
    client = ArcadeClient(server.http_url, token=server.admin_token)
    agent = Agent(_settings(tmp_path, server.grpc_target, metric_buffer=5,
                            collect_interval_override=0.05))
    try:
        await asyncio.to_thread(client.publish, [probe_wheel(tmp_path / "w")])
        await agent.start()
        await agent.wait_connected(DEADLINE)
        await asyncio.to_thread(client.install, "embedded", "probe@1.0.0", wait=DEADLINE)
        await asyncio.to_thread(server.stop)
        await until(lambda: not agent.status().connected, what="the agent to disconnect")
        await until(lambda: agent.status().metrics_dropped >= 10, what="10 dropped metrics")
        assert agent.status().metrics_buffered == 5            # bounded while disconnected
        server = await asyncio.to_thread(_server, home, port)
        client.close()
        client = ArcadeClient(server.http_url, token=server.admin_token)
        await agent.wait_connected(DEADLINE)
        info = await until(lambda: (i := client.agent("embedded"))["metrics_dropped"] and i,
                           blocking=True, what="the server to hear of the drops")
        assert info["metrics_dropped"] >= 10                   # the server heard of the drops
    finally:
        await agent.stop()
        client.close()
        await asyncio.to_thread(server.stop)


def test_agent_command_refuses_bad_config_with_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("server: 127.0.0.1:9090\ncollect_intervall: 3\n")
    proc = subprocess.run(
        [sys.executable, "-m", "arcade_agent", "--config", str(config), "--home",
         str(tmp_path / "home")], capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: unknown setting 'collect_intervall' in config file {config}; known settings: "
        + proc.stderr.split("known settings: ")[1].strip()
    ]
    assert "Traceback" not in proc.stderr
