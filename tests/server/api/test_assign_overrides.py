"""Interval and resource limits per assignment over REST (install, selector install, the
in-place PATCH), strictly validated, shown in the GET views and sent to a real agent stream;
the exec isolation rules and publishing an exec plugin."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from arcade_server.runner import ServerThread
from arcade_server.services import agents
from tests.server.helpers import ProtocolAgent, plugin_wheel, publish, unique
from tests.server.services.test_overrides import exec_wheel


def _agent(server: ServerThread, **labels: str) -> str:
    agent_id = unique("agent")
    server.state.db.call(agents.register, agents.AgentInfo(agent_id=agent_id, labels=labels,
                                                           jobs_enabled=True))
    return agent_id


def _revision(server: ServerThread, agent_id: str) -> int:
    return int(server.state.db.call(agents.get_agent_row, agent_id).desired_revision)


@pytest.mark.parametrize(("body", "message"), [
    ({"interval": True}, "invalid request: interval"),
    ({"interval": "5"}, "invalid request: interval"),
    ({"interval": 0}, "interval is 0 s; give from 0.1 s to 86400 s"),
    ({"interval": -3}, "give from 0.1 s"),
    ({"interval": 1e9}, "to 86400 s (a day)"),
    ({"resources": {"gpu": "1"}}, "invalid request: resources.gpu"),
    ({"resources": {"memory": 128}}, "invalid request: resources.memory"),
    # The quantity parser's own words follow the key (tested in services/test_overrides.py).
    ({"resources": {"memory": "lots"}}, "resources.memory: "),
    ({"resources": {"cpu": "0"}}, "resources.cpu: "),
    ({"resources": ["memory"]}, "invalid request: resources"),
])
def test_bad_interval_or_limits_are_422_saying_what_to_fix_and_change_nothing(
    server: ServerThread, api: httpx.Client, tmp_path: Path, body: dict[str, Any],
    message: str
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name))
    agent_id = _agent(server, team="bad")
    for url, extra in ((f"/agents/{agent_id}/plugins", {}),
                       ("/assignments", {"selector": {"team": "bad"}})):
        answer = api.post(url, json={"plugin": name, **extra, **body})
        assert answer.status_code == 422, answer.text
        assert message in answer.json()["error"]
    assert api.post(f"/agents/{agent_id}/plugins", json={"plugin": name}).status_code == 202
    patched = api.patch(f"/agents/{agent_id}/plugins/{name}", json=body)
    assert patched.status_code == 422 and message in patched.json()["error"]
    assert _revision(server, agent_id) == 1


def test_nan_is_refused_though_python_json_reads_it(server: ServerThread, api: httpx.Client,
                                                    tmp_path: Path) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name))
    agent_id = _agent(server)
    for literal in (b"NaN", b"Infinity"):
        answer = api.post(f"/agents/{agent_id}/plugins", content=b'{"plugin": "%s", '
                          b'"interval": %s}' % (name.encode(), literal),
                          headers={"Content-Type": "application/json"})
        assert answer.status_code == 422, answer.text
        assert "interval" in answer.json()["error"]


async def test_interval_and_limits_reach_the_agent_and_show_in_every_view(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name))  # manifest interval 5
    agent = ProtocolAgent(server)
    await agent.connect()
    await agent.desired()
    try:
        url = f"/agents/{agent.agent_id}/plugins"
        installed = await asyncio.to_thread(api.post, url, json={
            "plugin": name, "interval": 2, "resources": {"memory": "128Mi", "cpu": "100m"}})
        assert installed.status_code == 202, installed.text
        body = installed.json()
        assert (body["interval"], body["resources"]) == (2, {"memory": "128Mi", "cpu": "100m"})
        assert body["desired"]["effective_interval"] == 2
        sent = await agent.desired()
        assert (sent.plugins[0].interval, dict(sent.plugins[0].resources)) == (
            2.0, {"cpu": "100m", "memory": "128Mi"})
        # PATCH: only the interval; the limits and config are kept; no config needed.
        patched = await asyncio.to_thread(api.patch, f"{url}/{name}", json={"interval": 0.5})
        assert patched.status_code == 202, patched.text
        assert (patched.json()["interval"], patched.json()["resources"]) == (
            0.5, {"memory": "128Mi", "cpu": "100m"})
        sent = await agent.desired()
        assert (sent.revision, sent.plugins[0].interval) == (2, 0.5)
        assert json.loads(sent.plugins[0].config_json) == {"threshold": 10, "label": "x"}
        # null: back to the manifest's interval; resources null: the override is gone.
        back = await asyncio.to_thread(api.patch, f"{url}/{name}", json={
            "interval": None, "resources": None, "config": {"threshold": 3}})
        assert back.json()["desired"]["effective_interval"] == 5
        sent = await agent.desired()
        assert (sent.plugins[0].interval, dict(sent.plugins[0].resources)) == (5.0, {})
        [view] = (await asyncio.to_thread(api.get, url)).json()
        assert {k: view["desired"][k] for k in ("interval", "effective_interval", "resources",
                                                "effective_resources", "config")} == {
            "interval": None, "effective_interval": 5, "resources": {},
            "effective_resources": {}, "config": {"threshold": 3, "label": "x"}}
        fleet = (await asyncio.to_thread(api.get, "/status")).json()
        [mine] = [a for a in fleet["agents"] if a["id"] == agent.agent_id]
        assert mine["plugins"][0]["desired"]["effective_interval"] == 5
        # The PUT config route keeps working: config only, interval and limits kept.
        await asyncio.to_thread(api.patch, f"{url}/{name}", json={"interval": 8,
                                                                   "resources": {"disk": "1Gi"}})
        put = await asyncio.to_thread(api.put, f"{url}/{name}/config", json={"label": "y"})
        assert (put.json()["interval"], put.json()["resources"]) == (8, {"disk": "1Gi"})
    finally:
        await agent.close()


def test_patch_needs_something_to_change_and_an_assigned_plugin(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name))
    agent_id = _agent(server)
    url = f"/agents/{agent_id}/plugins/{name}"
    missing = api.patch(url, json={"interval": 3})
    assert missing.status_code == 404 and "install it first" in missing.json()["error"]
    api.post(f"/agents/{agent_id}/plugins", json={"plugin": name})
    empty = api.patch(url, json={})
    assert empty.status_code == 422
    assert 'nothing to change: give "config", "interval"' in empty.json()["error"]
    unknown = api.patch(url, json={"isolation": "process"})
    assert unknown.status_code == 422 and "isolation" in unknown.json()["error"]
    bad_config = api.patch(url, json={"config": {"threshold": -1}, "interval": 3})
    assert bad_config.status_code == 422 and "config.threshold" in bad_config.json()["error"]
    assert api.patch(f"/agents/{agent_id}/plugins/not%20a%20name",
                     json={"interval": 3}).status_code == 422
    assert _revision(server, agent_id) == 1


def test_selector_install_sets_each_matched_agents_interval(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    team = unique("team")
    publish(api, plugin_wheel(tmp_path, name))
    ids = [_agent(server, team=team) for _ in range(2)]
    answer = api.post("/assignments", json={"plugin": name, "selector": {"team": team},
                                            "interval": 30, "resources": {"cpu": "0.5"}})
    assert answer.status_code == 202, answer.text
    assert (answer.json()["interval"], answer.json()["resources"]) == (30, {"cpu": "0.5"})
    for agent_id in ids:
        [view] = api.get(f"/agents/{agent_id}/plugins").json()
        assert (view["desired"]["interval"], view["desired"]["resources"]) == (
            30, {"cpu": "0.5"})


def test_an_exec_plugin_publishes_and_takes_only_exec_isolation(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    tool, py = unique("exec"), unique()
    published = publish(api, exec_wheel(tmp_path / "e", tool))
    assert published["manifest"]["isolation"] == "exec"
    publish(api, plugin_wheel(tmp_path / "p", py))
    agent_id = _agent(server)
    url = f"/agents/{agent_id}/plugins"
    refused = api.post(url, json={"plugin": tool, "isolation": "process"})
    assert refused.status_code == 422
    assert "runs only with isolation exec; drop the isolation or give \"exec\"" in (
        refused.json()["error"])
    python = api.post(url, json={"plugin": py, "isolation": "exec"})
    assert python.status_code == 422
    assert "is a Python plugin" in python.json()["error"]
    job = api.post("/jobs", json={"agent": agent_id, "commands": ["true"], "plugins": [
        {"plugin": tool, "stage": "before", "isolation": "inline"}]})
    assert job.status_code == 422 and "is an exec plugin" in job.json()["error"]
    ok = api.post(url, json={"plugin": tool})
    assert ok.status_code == 202, ok.text
    assert ok.json()["isolation"] == "exec"
    assert ok.json()["desired"]["effective_resources"] == {"cpu": "50m", "memory": "64Mi"}
    assert ok.json()["desired"]["effective_interval"] == 30
