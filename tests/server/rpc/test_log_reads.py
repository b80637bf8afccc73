"""Reads of a plugin's logs through the server (``GET .../plugins/{name}/logs``): relayed to
the agent on its stream, answered by request id; offline, silent and unknowing agents get a
clear 409, 504 or 404, and the health fields of a report are stored and served."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from arcade_core.rpc.v1 import pb
from arcade_server.runner import ServerThread
from tests.server.conftest import start_server
from tests.server.helpers import ProtocolAgent, status
from tests.waiting import DEADLINE, until


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Any:
    running = start_server(tmp_path_factory.mktemp("logs-home"), logs_timeout=0.5)
    yield running
    running.stop()


def _get(server: ServerThread, path: str, **params: Any) -> httpx.Response:
    with httpx.Client(base_url=server.http_url + "/api/v1", headers=server.auth_headers,
                      timeout=DEADLINE) as client:
        return client.get(path, params=params)


async def _logs_request(agent: ProtocolAgent) -> Any:
    while True:
        message = await agent.recv()
        if message.WhichOneof("body") == "logs_request":
            return message.logs_request


async def test_a_log_read_is_answered_by_the_agent(quick: ServerThread) -> None:
    agent = ProtocolAgent(quick)
    await agent.connect()
    try:
        answer = asyncio.ensure_future(asyncio.to_thread(
            _get, quick, f"/agents/{agent.agent_id}/plugins/Sick_Plugin/logs", after=3,
            limit=2))
        request = await _logs_request(agent)
        assert (request.plugin, request.after, request.limit) == ("sick-plugin", 3, 2)
        # An answer with another id is dropped; the right one resolves the read.
        agent.send(pb.AgentMessage(logs=pb.PluginLogs(request_id="someone-else", last_seq=99)))
        agent.send(pb.AgentMessage(logs=pb.PluginLogs(
            request_id=request.request_id, plugin="sick-plugin", last_seq=5,
            lines=[pb.LogLine(seq=4, time=1.5, level="stderr", text="oops"),
                   pb.LogLine(seq=5, time=2.5, level="ERROR", text="collect() failed")])))
        response = await answer
        assert response.status_code == 200, response.text
        assert response.json() == {
            "agent": agent.agent_id, "plugin": "sick-plugin", "last_seq": 5,
            "lines": [{"seq": 4, "time": 1.5, "level": "stderr", "text": "oops"},
                      {"seq": 5, "time": 2.5, "level": "ERROR", "text": "collect() failed"}]}
        # The agent keeps nothing for that plugin: 404 with its reason.
        answer = asyncio.ensure_future(asyncio.to_thread(
            _get, quick, f"/agents/{agent.agent_id}/plugins/nothing/logs"))
        request = await _logs_request(agent)
        agent.send(pb.AgentMessage(logs=pb.PluginLogs(
            request_id=request.request_id, error="no logs are kept for 'nothing'")))
        response = await answer
        assert response.status_code == 404 and "no logs are kept" in response.json()["error"]
        # An agent that does not answer: 504 after logs_timeout, nothing left waiting.
        response = await asyncio.to_thread(
            _get, quick, f"/agents/{agent.agent_id}/plugins/sick-plugin/logs")
        assert response.status_code == 504
        assert "logs_timeout" in response.json()["error"]
        assert quick.state.hub.logs.waiting == 0
    finally:
        await agent.close()


async def test_offline_agents_unknown_agents_and_bad_input(quick: ServerThread) -> None:
    agent = ProtocolAgent(quick)
    await agent.connect()
    await agent.close()
    await until(lambda: not quick.state.hub.connected(agent.agent_id),
                what="the stream to close")
    response = await asyncio.to_thread(
        _get, quick, f"/agents/{agent.agent_id}/plugins/sick/logs")
    assert response.status_code == 409 and "not connected" in response.json()["error"]
    response = await asyncio.to_thread(_get, quick, "/agents/nobody/plugins/sick/logs")
    assert response.status_code == 404
    for params in ({"limit": 0}, {"limit": 501}, {"after": -1}):
        response = await asyncio.to_thread(
            _get, quick, f"/agents/{agent.agent_id}/plugins/sick/logs", **params)
        assert response.status_code == 422, params


async def test_a_stream_that_closes_ends_its_waiting_reads(quick: ServerThread) -> None:
    agent = ProtocolAgent(quick)
    await agent.connect()
    answer = asyncio.ensure_future(asyncio.to_thread(
        _get, quick, f"/agents/{agent.agent_id}/plugins/sick/logs"))
    await _logs_request(agent)
    await agent.close()
    response = await answer
    assert response.status_code == 409, response.text


async def test_health_fields_are_stored_and_served(server: ServerThread) -> None:
    agent = ProtocolAgent(server)
    await agent.connect()
    try:
        agent.report(0, status("sick", "1.0.0", "degraded", isolation="process",
                               error="RuntimeError: unplugged", error_at=1700000000.5,
                               errors=7, last_collect_at=1699999999.0, pid=4242,
                               rss=50_000_000, restarts=1),
                     status("quiet", "1.0.0", "running", isolation="inline",
                            error_at=float("nan"), pid=-3, rss=-1, errors=-5))

        def actual() -> dict[str, Any]:
            body = _get(server, f"/agents/{agent.agent_id}/plugins").json()
            return {p["name"]: p["actual"] for p in body if p["actual"]}

        plugins = await until(lambda: len(a := actual()) == 2 and a, blocking=True,
                              what="both reports stored")
        sick = plugins["sick"]
        assert (sick["state"], sick["error"], sick["error_at"], sick["errors"],
                sick["restarts"], sick["last_collect_at"], sick["pid"], sick["rss"]) == (
            "degraded", "RuntimeError: unplugged", 1700000000.5, 7, 1, 1699999999.0, 4242,
            50_000_000)
        quiet = plugins["quiet"]                # nonsense from an agent is not stored
        assert (quiet["error_at"], quiet["errors"], quiet["pid"], quiet["rss"],
                quiet["last_collect_at"]) == (None, 0, None, None, None)
    finally:
        await agent.close()
