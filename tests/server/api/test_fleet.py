"""``GET /api/v1/status`` and ``DELETE /api/v1/agents/{agent_id}`` on a real server: bodies,
bad input answered 422 with what to fix, 404/409 with a message, and ``stale`` in the
per-agent view."""

from __future__ import annotations

import time

import httpx

from arcade_server.runner import ServerThread
from arcade_server.services import agents
from arcade_server.services.status_reports import ReportedPlugin
from tests.server.helpers import ProtocolAgent, unique


def test_fleet_status_narrows_by_selector_and_refuses_a_bad_one(
    server: ServerThread, api: httpx.Client,
) -> None:
    zone = unique("zone")
    server.state.db.call(agents.register, agents.AgentInfo(
        agent_id=f"{zone}-a", labels={"zone": zone, "tier": "web"},
        plugins=[ReportedPlugin("cpu", "1.0.0", "running")]), now=time.time() - 3600)
    body = api.get("/status", params={"selector": f"zone={zone},tier=web"}).json()
    assert [a["id"] for a in body["agents"]] == [f"{zone}-a"]
    assert body["selector"] == {"zone": zone, "tier": "web"}
    assert (body["online"], body["offline"], body["stale"]) == (0, 1, 1)
    assert body["states"] == {"running": 1}
    plugin = body["agents"][0]["plugins"][0]
    assert plugin["actual"]["stale"] is True and plugin["actual"]["state"] == "running"
    one = api.get(f"/agents/{zone}-a/plugins").json()
    assert one[0]["actual"]["stale"] is True
    assert api.get("/status", params={"selector": f"zone={zone},tier=db"}).json()[
        "agents"] == []
    for bad in ("novalue", "=v", "bad key!=v"):
        refused = api.get("/status", params={"selector": bad})
        assert refused.status_code == 422, (bad, refused.text)
        assert "selector" in refused.json()["error"] or "label" in refused.json()["error"]


async def test_deleting_an_agent_answers_404_409_and_then_200(
    server: ServerThread, api: httpx.Client,
) -> None:
    import asyncio

    missing = await asyncio.to_thread(api.delete, "/agents/no-such-agent")
    assert missing.status_code == 404 and "no agent" in missing.json()["error"]
    agent = ProtocolAgent(server)
    try:
        await agent.connect()
        await agent.desired()
        online = await asyncio.to_thread(api.delete, f"/agents/{agent.agent_id}")
        assert online.status_code == 409
        assert "force=true" in online.json()["error"]
        assert (await asyncio.to_thread(api.get, f"/agents/{agent.agent_id}")).status_code \
            == 200
        forced = await asyncio.to_thread(api.delete, f"/agents/{agent.agent_id}",
                                         params={"force": "true"})
        assert forced.status_code == 200, forced.text
        body = forced.json()
        assert body["was_online"] and body["revoked"] and body["stream_closed"]
        assert (await asyncio.to_thread(api.get, f"/agents/{agent.agent_id}")).status_code \
            == 404
        bad = await asyncio.to_thread(api.delete, f"/agents/{agent.agent_id}",
                                      params={"force": "maybe"})
        assert bad.status_code == 422
    finally:
        await agent.close()
