"""Agents and desired state over REST, with real agents connected over gRPC."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from arcade_server.runner import ServerThread
from tests.server.conftest import start_server
from tests.server.helpers import ProtocolAgent, plugin_wheel, publish, status, unique
from tests.waiting import DEADLINE, until


async def _connected(server: ServerThread, labels: dict[str, str] | None = None
                     ) -> ProtocolAgent:
    agent = ProtocolAgent(server)
    await agent.connect(labels=labels)
    await agent.desired()
    return agent


async def test_install_errors_say_what_to_fix(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name, "1.0.0"))
    publish(api, plugin_wheel(tmp_path / "2", name, "1.5.0"))
    agent = await _connected(server)
    try:
        url = f"/agents/{agent.agent_id}/plugins"

        def post(body: object, path: str = url) -> httpx.Response:
            return api.post(path, json=body)

        unknown_agent = await asyncio.to_thread(post, {"plugin": name}, "/agents/nobody/plugins")
        assert unknown_agent.status_code == 404
        assert "no agent with id 'nobody'" in unknown_agent.json()["error"]
        unknown_plugin = await asyncio.to_thread(post, {"plugin": "never-published"})
        assert unknown_plugin.status_code == 404
        bad_spec = await asyncio.to_thread(post, {"plugin": f"{name}@>>1"})
        assert bad_spec.status_code == 422
        assert "is not a PEP 440 version or range" in bad_spec.json()["error"]
        no_match = await asyncio.to_thread(post, {"plugin": f"{name}@>=2"})
        assert no_match.status_code == 422
        assert "published versions: 1.5.0, 1.0.0" in no_match.json()["error"]
        bad_config = await asyncio.to_thread(post, {"plugin": name,
                                                    "config": {"threshold": -1}})
        assert bad_config.status_code == 422
        assert "config.threshold" in bad_config.json()["error"]
        assert "minimum" in bad_config.json()["error"]
        unknown_key = await asyncio.to_thread(post, {"plugin": name, "config": {"nope": 1}})
        assert unknown_key.status_code == 422
        bad_isolation = await asyncio.to_thread(post, {"plugin": name, "isolation": "vm"})
        assert bad_isolation.status_code == 422
        assert bad_isolation.json()["error"].startswith("invalid request: isolation")
        extra = await asyncio.to_thread(post, {"plugin": name, "colour": "red"})
        assert extra.status_code == 422
        not_json = await asyncio.to_thread(
            lambda: api.post(url, content=b"{", headers={"Content-Type": "application/json"})
        )
        assert not_json.status_code == 422
        bad_wait = await asyncio.to_thread(
            lambda: api.post(url, json={"plugin": name}, params={"wait": 99999})
        )
        assert bad_wait.status_code == 422
        assert api.post(f"/plugins/{name}/disable").status_code == 200
        disabled = await asyncio.to_thread(post, {"plugin": name})
        assert disabled.status_code == 409
        assert "disabled" in disabled.json()["error"]
        assert api.post(f"/plugins/{name}/enable").status_code == 200
        ok = await asyncio.to_thread(post, {"plugin": f"{name}@>=1,<2"})
        assert ok.status_code == 202
        assert ok.json()["version"] == "1.5.0"
        # None of the refused requests changed the desired state.
        assert ok.json()["revision"] == 1
    finally:
        await agent.close()


async def test_install_with_wait_answers_when_the_agent_reports_running(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name, "1.0.0"))
    agent = await _connected(server)
    try:
        async def agent_side() -> None:
            desired = await agent.desired()
            agent.report(desired.revision, status(name, "1.0.0", "downloading"), complete=False)
            await until(lambda: (api.get(f"/agents/{agent.agent_id}/plugins").json()[0]
                                 ["actual"] or {}).get("state") == "downloading",
                        blocking=True, what="the downloading report stored")
            agent.report(desired.revision, status(name, "1.0.0", "running"))

        reporter = asyncio.create_task(agent_side())
        # The longest wait the server allows, and a client that gives up long before it: an
        # answer means the report woke the wait (the end of the wait would come far later).
        response = await asyncio.to_thread(
            api.post, f"/agents/{agent.agent_id}/plugins", json={"plugin": f"{name}@1.0.0"},
            params={"wait": server.settings.max_wait}, timeout=DEADLINE,
        )
        await reporter
        assert server.settings.max_wait > DEADLINE
        assert response.status_code == 200, response.text
        assert response.json()["state"]["state"] == "running"
    finally:
        await agent.close()


async def test_install_with_wait_reports_failure_and_times_out_with_202(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name, "1.0.0"))
    publish(api, plugin_wheel(tmp_path / "2", name, "2.0.0"))
    agent = await _connected(server)
    try:
        async def fail() -> None:
            desired = await agent.desired()
            agent.report(desired.revision, status(name, "1.0.0", "failed", error="ImportError"))

        reporter = asyncio.create_task(fail())
        failed = await asyncio.to_thread(
            api.post, f"/agents/{agent.agent_id}/plugins",
            json={"plugin": f"{name}@1.0.0"}, params={"wait": DEADLINE}, timeout=DEADLINE + 30,
        )
        await reporter
        assert failed.status_code == 200
        assert failed.json()["state"]["state"] == "failed"
        assert failed.json()["state"]["error"] == "ImportError"
        # Nobody reports 2.0.0: after the wait, 202 with the current (old) state.
        started = time.monotonic()
        pending = await asyncio.to_thread(
            api.post, f"/agents/{agent.agent_id}/plugins",
            json={"plugin": f"{name}@2.0.0"}, params={"wait": 0.5},
        )
        assert time.monotonic() - started > 0.4  # it did wait for the 0.5 s
        assert pending.status_code == 202
        assert pending.json()["version"] == "2.0.0"
        assert pending.json()["state"]["version"] == "1.0.0"
    finally:
        await agent.close()


async def test_selector_install_reaches_every_matching_agent_in_one_change(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "home")
    agents: list[ProtocolAgent] = []
    try:
        with httpx.Client(base_url=server.http_url + "/api/v1",
                          headers=server.auth_headers, timeout=DEADLINE + 30) as api:
            name = unique()
            publish(api, plugin_wheel(tmp_path, name, "1.0.0"))
            web = [await _connected(server, {"role": "web", "dc": "a"}) for _ in range(2)]
            db = await _connected(server, {"role": "db", "dc": "a"})
            agents = [*web, db]
            response = await asyncio.to_thread(
                api.post, "/assignments",
                json={"selector": {"role": "web", "dc": "a"}, "plugin": name,
                      "config": {"label": "fleet"}},
            )
            assert response.status_code == 202, response.text
            body = response.json()
            assert body["matched"] == 2
            assert sorted(body["agents"]) == sorted(a.agent_id for a in web)
            for agent in web:
                desired = await agent.desired()
                assert desired.revision == 1
                assert json.loads(desired.plugins[0].config_json)["label"] == "fleet"
            with pytest.raises(TimeoutError):
                await db.desired(timeout=0.3)
            # Empty selector = every agent; ?wait answers once all of them report running.

            async def run_all() -> None:
                async def one(agent: ProtocolAgent) -> None:
                    desired = await agent.desired()
                    agent.report(desired.revision, status(name, "1.0.0", "running"))

                await asyncio.gather(*(one(a) for a in agents))

            reporter = asyncio.create_task(run_all())
            everyone = await asyncio.to_thread(
                api.post, "/assignments", json={"selector": {}, "plugin": name},
                params={"wait": DEADLINE},
            )
            await reporter
            assert everyone.status_code == 200, everyone.text
            assert everyone.json()["matched"] == 3
            assert everyone.json()["running"] == 3
            revisions = {a["id"]: a["desired_revision"] for a in api.get("/agents").json()}
            assert revisions == {**{a.agent_id: 2 for a in web}, db.agent_id: 1}
            # Removing by selector only touches the agents that have it.
            removed = api.post("/assignments/remove",
                               json={"selector": {"role": "db"}, "plugin": name}).json()
            assert removed["agents"] == [db.agent_id]
            assert list((await db.desired()).plugins) == []
            none = api.post("/assignments", json={"selector": {"role": "nope"}, "plugin": name})
            assert none.status_code == 202 and none.json()["matched"] == 0
            bad = api.post("/assignments", json={"selector": {"bad key": "x"}, "plugin": name})
            assert bad.status_code == 422
    finally:
        for agent in agents:
            await agent.close()
        server.stop()


async def test_uninstall_and_config_change_push_new_revisions(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name, "1.0.0"))
    agent = await _connected(server)
    try:
        base = f"/agents/{agent.agent_id}/plugins"
        missing = await asyncio.to_thread(api.delete, f"{base}/{name}")
        assert missing.status_code == 404
        await asyncio.to_thread(api.post, base, json={"plugin": name})
        assert (await agent.desired()).revision == 1
        changed = await asyncio.to_thread(
            api.put, f"{base}/{name}/config", json={"threshold": 42}
        )
        assert changed.status_code == 202, changed.text
        assert changed.json()["config"] == {"threshold": 42, "label": "x"}
        desired = await agent.desired()
        assert desired.revision == 2
        assert json.loads(desired.plugins[0].config_json) == {"threshold": 42, "label": "x"}
        invalid = await asyncio.to_thread(
            api.put, f"{base}/{name}/config", json={"threshold": "many"}
        )
        assert invalid.status_code == 422
        assert "config.threshold" in invalid.json()["error"]
        not_object = await asyncio.to_thread(api.put, f"{base}/{name}/config", json=[1, 2])
        assert not_object.status_code == 422
        # An assigned version cannot be deleted from the registry.
        locked = await asyncio.to_thread(api.delete, f"/plugins/{name}/versions/1.0.0")
        assert locked.status_code == 409
        assert agent.agent_id in locked.json()["error"]
        removed = await asyncio.to_thread(api.delete, f"{base}/{name}")
        assert removed.status_code == 202
        desired = await agent.desired()
        assert desired.revision == 3 and list(desired.plugins) == []
        assert (await asyncio.to_thread(api.get, base)).json() == []
        unlocked = await asyncio.to_thread(api.delete, f"/plugins/{name}/versions/1.0.0")
        assert unlocked.status_code == 204
    finally:
        await agent.close()


async def test_version_details_show_which_agents_run_it(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name, "1.0.0"))
    agent = await _connected(server)
    try:
        await asyncio.to_thread(
            api.post, f"/agents/{agent.agent_id}/plugins", json={"plugin": name},
            params={"wait": 0.01},
        )
        desired = await agent.desired()
        agent.report(desired.revision, status(name, "1.0.0", "running"))
        version = await until(
            lambda: (v := api.get(f"/plugins/{name}/versions/1.0.0").json())["agents"]
            and v["agents"][0]["state"] == "running" and v,
            blocking=True, what="the version to list the agent running")
        assert version["agents"] == [{"agent": agent.agent_id, "desired": True,
                                      "state": "running"}]
        listed = (await asyncio.to_thread(api.get, f"/agents/{agent.agent_id}/plugins")).json()
        assert listed[0]["in_sync"] is True
    finally:
        await agent.close()


def test_unknown_agent_endpoints_are_404_and_bad_queries_422(api: httpx.Client) -> None:
    assert api.get("/agents/ghost").status_code == 404
    assert api.get("/agents/ghost/plugins").status_code == 404
    assert api.get("/agents/ghost/metrics").status_code == 404
    assert api.put("/agents/ghost/plugins/x/config", json={}).status_code == 404
    assert api.get("/agents", params={"status": "sleeping"}).status_code == 422
    assert api.get("/agents", params={"label": "novalue"}).status_code == 422
    assert api.get("/agents/ghost/metrics", params={"limit": 0}).status_code == 422


async def _desired_at(agent: ProtocolAgent, revision: int) -> Any:
    """The first desired state the agent is sent at ``revision`` or later (pushes to an agent
    that is behind may skip revisions)."""
    while True:
        desired = await agent.desired()
        if desired.revision >= revision:
            return desired


async def test_an_upgrade_keeps_config_and_isolation_and_answers_the_new_entry(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path / "1", name, "1.0.0"))
    publish(api, plugin_wheel(tmp_path / "2", name, "2.0.0"))
    agent = await _connected(server)
    try:
        url = f"/agents/{agent.agent_id}/plugins"
        first = await asyncio.to_thread(api.post, url, json={
            "plugin": f"{name}@1.0.0", "config": {"threshold": 7}, "isolation": "process"})
        assert first.status_code == 202, first.text
        assert first.json()["previous_version"] is None and first.json()["timed_out"] is False
        agent.report(1, status(name, "1.0.0", "running"))
        upgraded = await asyncio.to_thread(api.post, url, json={"plugin": f"{name}@2.0.0"})
        body = upgraded.json()
        assert upgraded.status_code == 202, upgraded.text
        assert body["previous_version"] == "1.0.0"
        assert body["desired"] == {"version": "2.0.0", "config": {"threshold": 7, "label": "x"},
                                   "isolation": "process", "interval": None,
                                   "effective_interval": 5.0, "resources": {},
                                   "effective_resources": {}, "revision": 2,
                                   "updated_at": body["desired"]["updated_at"]}
        # The answer is the new desired entry; what the agent runs so far is labelled as such.
        await until(lambda: api.get(url).json()[0]["actual"] is not None, blocking=True,
                    what="the 1.0.0 report stored")
        after = await asyncio.to_thread(api.post, url, json={"plugin": f"{name}@2.0.0"})
        assert after.json()["state"]["version"] == "1.0.0"
        assert after.json()["desired"]["version"] == "2.0.0"
        sent = await _desired_at(agent, 3)
        assert (sent.revision, json.loads(sent.plugins[0].config_json)) == (
            3, {"threshold": 7, "label": "x"})
        reset = await asyncio.to_thread(api.post, url, json={
            "plugin": f"{name}@2.0.0", "reset_config": True})
        assert reset.json()["config"] == {"threshold": 10, "label": "x"}
        assert reset.json()["isolation"] == "process"
        both = await asyncio.to_thread(api.post, url, json={
            "plugin": name, "reset_config": True, "config": {}})
        assert both.status_code == 422 and "not both" in both.json()["error"]
        # The selector form keeps each agent's own too.
        fleet = await asyncio.to_thread(api.post, "/assignments", json={
            "selector": {}, "plugin": f"{name}@1.0.0"})
        assert fleet.json()["revisions"][agent.agent_id] == 5
        listed = api.get(url).json()[0]["desired"]
        assert (listed["version"], listed["config"]["threshold"], listed["isolation"]) == (
            "1.0.0", 10, "process")
    finally:
        await agent.close()


async def test_uninstall_and_config_wait_for_the_agent_or_answer_202_timed_out(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name, "1.0.0"))
    agent = await _connected(server)
    try:
        base = f"/agents/{agent.agent_id}/plugins"
        await asyncio.to_thread(api.post, base, json={"plugin": name})
        agent.report((await _desired_at(agent, 1)).revision, status(name, "1.0.0", "running"))

        # Config: done when the agent reports the plugin final at the new revision.
        async def apply_config() -> None:
            desired = await _desired_at(agent, 2)
            agent.report(desired.revision, status(name, "1.0.0", "running"))

        reporter = asyncio.create_task(apply_config())
        changed = await asyncio.to_thread(
            api.put, f"{base}/{name}/config", json={"threshold": 3},
            params={"wait": server.settings.max_wait}, timeout=DEADLINE)
        await reporter
        assert changed.status_code == 200, changed.text
        assert changed.json()["timed_out"] is False
        assert changed.json()["state"]["revision"] == changed.json()["revision"] == 2
        assert changed.json()["desired"]["config"] == {"threshold": 3, "label": "x"}
        # Nobody applies the next one: 202, timed_out, the state so far (revision 2).
        started = time.monotonic()
        slow = await asyncio.to_thread(api.put, f"{base}/{name}/config",
                                       json={"threshold": 4}, params={"wait": 0.5})
        assert time.monotonic() - started > 0.4
        assert slow.status_code == 202, slow.text
        assert slow.json()["timed_out"] is True
        assert (slow.json()["revision"], slow.json()["state"]["revision"]) == (3, 2)

        # Uninstall: done when the agent applied the revision and reports it removed.
        async def remove() -> None:
            desired = await _desired_at(agent, 4)
            assert list(desired.plugins) == []
            agent.report(desired.revision, status(name, "1.0.0", "removed"))

        reporter = asyncio.create_task(remove())
        removed = await asyncio.to_thread(
            api.delete, f"{base}/{name}", params={"wait": server.settings.max_wait},
            timeout=DEADLINE)
        await reporter
        assert removed.status_code == 200, removed.text
        assert removed.json() | {"connected": True} == {
            "agent": agent.agent_id, "plugin": name, "removed": True, "revision": 4,
            "desired": None, "connected": True, "state": None, "timed_out": False}
        # Installed again, removed again, and nobody reports: 202 with the last report.
        await asyncio.to_thread(api.post, base, json={"plugin": name})
        agent.report((await _desired_at(agent, 5)).revision, status(name, "1.0.0", "running"))
        await until(lambda: (api.get(base).json()[0]["actual"] or {}).get("revision") == 5,
                    blocking=True, what="the report of revision 5 stored")
        pending = await asyncio.to_thread(api.delete, f"{base}/{name}", params={"wait": 0.3})
        assert pending.status_code == 202
        assert pending.json()["timed_out"] is True
        assert pending.json()["state"]["state"] == "running"
        # The selector form: 202 timed_out naming the agents still pending, then 200.
        await asyncio.to_thread(api.post, base, json={"plugin": name})
        waited = await asyncio.to_thread(api.post, "/assignments/remove", json={
            "selector": {}, "plugin": name}, params={"wait": 0.3})
        assert waited.status_code == 202
        assert (waited.json()["timed_out"], waited.json()["pending"]) == (True, [agent.agent_id])
        agent.report((await _desired_at(agent, 8)).revision, status(name, "1.0.0", "removed"))
        await until(lambda: api.get(base).json() == [], blocking=True, what="removal stored")
        none_left = await asyncio.to_thread(api.post, "/assignments/remove", json={
            "selector": {}, "plugin": name}, params={"wait": 0.3})
        assert none_left.json()["matched"] == 0 and none_left.json()["timed_out"] is False
    finally:
        await agent.close()
