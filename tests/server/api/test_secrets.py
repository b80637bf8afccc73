"""Secrets stay secret: config fields a plugin's schema marks secret and job env values are
stored and sent to the agent, never shown through REST or the CLI, never logged; an update
that omits them keeps them (a real server, a real gRPC agent, the CLI in-process)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from arcade_core.commands import main
from arcade_core.rpc.v1 import pb
from arcade_server.runner import ServerThread
from tests.server.helpers import ProtocolAgent, plugin_wheel, publish, unique

SECRET_MANIFEST = {
    "description": "a plugin with secrets",
    "type": "collector",
    "interval": 5,
    "config_schema": {
        "type": "object",
        "properties": {
            "token": {"type": "string", "writeOnly": True, "minLength": 8},
            "auth": {
                "type": "object",
                "properties": {
                    "user": {"type": "string"},
                    "password": {"type": "string", "format": "password"},
                },
            },
            "label": {"type": "string", "default": "x"},
        },
        "additionalProperties": False,
    },
}

TOKEN, PASSWORD, NEW_TOKEN = "tok-0123456789-A", "pw-9876543210-B", "tok-5555555555-C"
ENV_SECRET, JOB_TOKEN = "env-2468013579-D", "tok-1357924680-E"
ALL = (TOKEN, PASSWORD, NEW_TOKEN, ENV_SECRET, JOB_TOKEN)


def _clean(text: str) -> None:
    for secret in ALL:
        assert secret not in text, f"{secret} leaked in {text[:2000]}"


def _config_of(desired: Any, name: str) -> dict[str, Any]:
    [plugin] = [p for p in desired.plugins if p.name == name]
    config: dict[str, Any] = json.loads(plugin.config_json)
    return config


async def _call(fn: Any, *args: Any, **kwargs: Any) -> httpx.Response:
    response: httpx.Response = await asyncio.to_thread(fn, *args, **kwargs)
    return response


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], server: ServerThread) -> Any:
    def invoke(*args: str) -> str:
        capsys.readouterr()
        code = main([*args, "--api", server.http_url, "--json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        return out
    return invoke


async def test_secret_config_fields_and_env_are_write_only(
    server: ServerThread, api: httpx.Client, tmp_path: Path, cli: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="arcade_server")
    name = unique()
    publish(api, plugin_wheel(tmp_path, name, manifest=SECRET_MANIFEST))
    agent = ProtocolAgent(server.grpc_target, jobs_enabled=True)
    await agent.connect()
    await agent.desired()
    aid = agent.agent_id
    try:
        # install with secrets: the answer hides them, the agent gets them
        installed = await _call(api.post, f"/agents/{aid}/plugins", json={
            "plugin": name, "config": {"token": TOKEN, "label": "y",
                                       "auth": {"user": "u", "password": PASSWORD}}})
        assert installed.status_code == 202, installed.text
        assert installed.json()["config"] == {
            "token": "<set>", "label": "y", "auth": {"user": "u", "password": "<set>"}}
        _clean(installed.text)
        assert _config_of(await agent.desired(), name) == {
            "token": TOKEN, "label": "y", "auth": {"user": "u", "password": PASSWORD}}

        # every view that shows configs
        for url in (f"/agents/{aid}", f"/agents/{aid}/plugins", "/agents", "/plugins",
                    f"/plugins/{name}"):
            response = await _call(api.get, url)
            assert response.status_code == 200, (url, response.text)
            _clean(response.text)
        [row] = (await _call(api.get, f"/agents/{aid}/plugins")).json()
        assert row["desired"]["config"]["token"] == "<set>"
        assert row["desired"]["config"]["auth"]["password"] == "<set>"
        _clean(await asyncio.to_thread(cli, "status", "--agent", aid))

        # an update that omits the secrets (or passes "<set>" back) keeps them
        kept = await _call(api.put, f"/agents/{aid}/plugins/{name}/config",
                           json={"label": "z", "auth": {"user": "u2"}})
        assert kept.status_code == 202, kept.text
        assert kept.json()["config"] == {
            "token": "<set>", "label": "z", "auth": {"user": "u2", "password": "<set>"}}
        assert _config_of(await agent.desired(), name) == {
            "token": TOKEN, "label": "z", "auth": {"user": "u2", "password": PASSWORD}}
        echoed = await _call(api.put, f"/agents/{aid}/plugins/{name}/config",
                             json={"token": "<set>", "label": "w",
                                   "auth": {"user": "u2", "password": "<set>"}})
        assert echoed.status_code == 202, echoed.text
        assert _config_of(await agent.desired(), name)["token"] == TOKEN
        again = await _call(api.post, f"/agents/{aid}/plugins",
                            json={"plugin": name, "config": {"label": "v"}})
        assert again.status_code == 202, again.text
        assert _config_of(await agent.desired(), name)["token"] == TOKEN
        fleet = await _call(api.post, "/assignments",
                            json={"selector": {}, "plugin": name, "config": {"label": "s"}})
        assert fleet.status_code == 202, fleet.text
        assert fleet.json()["config"]["token"] == "<set>"
        desired = _config_of(await agent.desired(), name)
        assert desired["token"] == TOKEN and desired["label"] == "s"
        # dropping the enclosing object drops the nested secret with it
        assert "auth" not in desired

        # a new value replaces the stored one
        changed = await _call(api.put, f"/agents/{aid}/plugins/{name}/config",
                              json={"token": NEW_TOKEN})
        assert changed.status_code == 202, changed.text
        assert _config_of(await agent.desired(), name)["token"] == NEW_TOKEN

        # a refused secret is not quoted back
        short = await _call(api.put, f"/agents/{aid}/plugins/{name}/config",
                            json={"token": "abc12"})
        assert short.status_code == 422 and "abc12" not in short.text, short.text
        assert "config.token" in short.json()["error"]

        # job env and a job entry's secret config: shown as "<set>", sent for real
        created = await _call(api.post, "/jobs", json={
            "agent": aid, "commands": ["true"], "env": {"API_KEY": ENV_SECRET, "CI": "1"},
            "plugins": [{"plugin": name, "stage": "before", "config": {"token": JOB_TOKEN}}]})
        assert created.status_code in (201, 202), created.text
        job = created.json()
        assert job["env"] == {"API_KEY": "<set>", "CI": "<set>"}
        assert job["plugins"][0]["config"]["token"] == "<set>"
        _clean(created.text)
        while True:
            message = await agent.recv()
            if message.WhichOneof("body") == "job":
                break
        assert dict(message.job.env) == {"API_KEY": ENV_SECRET, "CI": "1"}
        assert json.loads(message.job.plugins[0].config_json)["token"] == JOB_TOKEN
        for url in (f"/jobs/{job['id']}", "/jobs"):
            response = await _call(api.get, url)
            assert response.status_code == 200
            _clean(response.text)
        _clean(await asyncio.to_thread(cli, "job", job["id"]))
        _clean(await asyncio.to_thread(cli, "jobs", "--agent", aid))
        refused = await _call(api.post, "/jobs", json={
            "agent": aid, "commands": ["true"],
            "plugins": [{"plugin": name, "stage": "before", "config": {"token": "<set>"}}]})
        assert refused.status_code == 422
        assert "plugins[0].config.token is '<set>' but no value is stored" in \
            refused.json()["error"]
        agent.send(pb.AgentMessage(job_event=pb.JobEvent(job_id=job["id"])))
    finally:
        await agent.close()
    _clean(caplog.text)
