"""Offline means offline: a closed stream is offline at once (not ``offline_after`` later),
the plugins of an offline agent keep their last state marked ``stale``, a stream replaced by
a newer one does not make the agent offline, and a restarted server does not show agents
online that left before it stopped (real server, real gRPC streams)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from arcade_server.db import tables as t
from arcade_server.runner import ServerThread
from tests.server.conftest import start_server
from tests.server.helpers import ProtocolAgent, db_row, status, unique
from tests.waiting import until

# Silence alone would take ten minutes to make an agent offline: whatever goes offline
# sooner in these tests went offline because its stream closed.
SLOW = {"heartbeat_interval": 30.0, "offline_after": 600.0, "presence_flush_interval": 0.1}


def _client(server: ServerThread) -> httpx.Client:
    return httpx.Client(base_url=server.http_url + "/api/v1", headers=server.auth_headers,
                        timeout=30)


def _actual(api: httpx.Client, agent_id: str, name: str) -> dict[str, Any]:
    response = api.get(f"/agents/{agent_id}/plugins")
    assert response.status_code == 200, response.text
    found = {p["name"]: p["actual"] for p in response.json()}
    result: dict[str, Any] = found[name]
    return result


async def test_a_closed_stream_is_offline_at_once_and_its_plugins_are_stale(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "home", **SLOW)
    agent = ProtocolAgent(server)
    name = unique("p")
    try:
        with _client(server) as api:
            await agent.connect(plugins=[status(name, "1.0.0", "running")])
            await agent.desired()
            info = api.get(f"/agents/{agent.agent_id}").json()
            assert info["online"] and info["connected"]
            live = _actual(api, agent.agent_id, name)
            assert live["state"] == "running" and live["stale"] is False

            closed = time.monotonic()
            await agent.close()
            await until(lambda: api.get(f"/agents/{agent.agent_id}").json()["status"]
                        == "offline", blocking=True, what="the closed stream to be offline")
            took = time.monotonic() - closed
            print(f"closed stream -> offline in {took * 1000:.0f} ms")
            assert took < SLOW["offline_after"]
            listed = api.get("/agents", params={"status": "offline"}).json()
            assert agent.agent_id in [a["id"] for a in listed]
            last = _actual(api, agent.agent_id, name)
            assert last["state"] == "running" and last["stale"] is True  # last known, stale

            def flushed() -> bool:
                with server.state.db.transaction(write=False) as conn:
                    row = db_row(conn, t.agents, agent.agent_id)
                    return row.disconnected_at is not None and \
                        row.disconnected_at >= row.last_seen

            await until(flushed, blocking=True, what="the departure flushed to the database")

            again = ProtocolAgent(server, agent.agent_id)
            try:
                await again.connect(plugins=[status(name, "1.0.0", "running")])
                await again.desired()
                info = api.get(f"/agents/{agent.agent_id}").json()
                assert info["online"] and info["status"] == "online"
                assert _actual(api, agent.agent_id, name)["stale"] is False
            finally:
                await again.close()
    finally:
        await agent.close()
        server.stop()


async def test_a_stream_replaced_by_a_newer_one_stays_online(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", **SLOW)
    first = ProtocolAgent(server)
    second = ProtocolAgent(server, first.agent_id)
    try:
        with _client(server) as api:
            await first.connect()
            await first.desired()
            await second.connect()
            await second.desired()
            # The first stream is closed by the server (ABORTED: connected again) ...
            await until(lambda: first.call.done(), what="the older stream to end")
            # ... and the agent, connected on its newer stream, is still online.
            info = api.get(f"/agents/{first.agent_id}").json()
            assert info["online"] and info["connected"], info
            assert server.state.presence.left_at(first.agent_id) is None
    finally:
        await first.close()
        await second.close()
        server.stop()


async def test_after_a_restart_an_agent_that_left_is_offline_until_it_comes_back(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    server = start_server(home, **SLOW)
    agent = ProtocolAgent(server)
    try:
        await agent.connect()
        await agent.desired()
    finally:
        server.stop()       # closes the stream; the departure is flushed at shutdown
        await agent.close()
    server = start_server(home, **SLOW)
    try:
        with _client(server) as api:
            info = api.get(f"/agents/{agent.agent_id}").json()
            # Seen a moment ago (well within offline_after), but its stream closed since.
            assert time.time() - info["last_seen"] < SLOW["offline_after"]
            assert info["status"] == "offline" and not info["online"], info
            back = ProtocolAgent(server, agent.agent_id)
            try:
                await back.connect()
                await back.desired()
                assert api.get(f"/agents/{agent.agent_id}").json()["online"]
            finally:
                await back.close()
    finally:
        server.stop()
