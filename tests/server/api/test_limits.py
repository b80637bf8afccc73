"""Limits on REST input, each reproducing a probe finding: oversized and non-finite configs,
plugins per agent, 5,000-digit versions, label caps, per-wheel upload size, and rejected
publishes or crashed uploads leaving files behind. Every refusal is a 4xx with the ``Error``
body and leaves the desired state (revision, assignments) as it was."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from arcade_server import limits
from arcade_server.errors import SettingsError
from arcade_server.runner import ServerThread
from arcade_server.services import job_requests
from arcade_server.settings import Settings
from tests.server.conftest import start_server
from tests.server.helpers import ProtocolAgent, plugin_wheel, publish, unique, upload
from tests.wheelmaker import make_wheel

#: A plugin whose config schema takes anything (so only the server's limits refuse it).
FREE_MANIFEST = {"description": "free-form config", "type": "collector",
                 "config_schema": {"type": "object"}}
BIG_VERSION = "1" * 5000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    running = start_server(tmp_path_factory.mktemp("limits-home"), max_plugins_per_agent=2,
                           max_wheel_bytes=200_000)
    yield running
    running.stop()


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) in ({"error", "detail"}, {"error", "detail", "hints"}), body
    for hint in body.get("hints", []):  # each hint's REST form is named by the message
        assert hint["rest"] in body["error"] and hint["cli"].startswith(("arcade ", "--"))
    message: str = body["error"]
    return message


def _revision(api: httpx.Client, agent_id: str) -> Any:
    detail = api.get(f"/agents/{agent_id}").json()
    return detail["desired_revision"], api.get(f"/agents/{agent_id}/plugins").json()


async def _agent(server: ServerThread) -> ProtocolAgent:
    agent = ProtocolAgent(server, jobs_enabled=True)
    await agent.connect(labels={"team": "limits"})
    await agent.desired()
    return agent


async def test_configs_over_the_size_limit_or_not_finite_are_refused_before_writing(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name, manifest=FREE_MANIFEST))
    agent = await _agent(server)
    try:
        aid = agent.agent_id
        big = {"blob": "x" * (64 * 1024)}

        def call() -> None:
            installed = api.post(f"/agents/{aid}/plugins", json={"plugin": name})
            assert installed.status_code == 202, installed.text
            before = _revision(api, aid)
            refusals = [
                (api.post(f"/agents/{aid}/plugins", json={"plugin": name, "config": big}), 413),
                (api.put(f"/agents/{aid}/plugins/{name}/config", json=big), 413),
                (api.post("/assignments", json={"selector": {"team": "limits"},
                                                "plugin": name, "config": big}), 413),
                (api.post("/jobs", json={"agent": aid, "commands": ["true"], "plugins": [
                    {"plugin": name, "stage": "before", "config": big}]}), 413),
            ]
            for response, status in refusals:
                assert "max_config_bytes" in _error(response, status)
                assert response.json()["detail"]["max_config_bytes"] == 64 * 1024
            # NaN and Infinity are not JSON: 422 before the change is saved or pushed.
            for text in ('{"plugin": "NAME", "config": {"x": NaN}}'.replace("NAME", name),
                         '{"plugin": "NAME", "config": {"x": [Infinity]}}'.replace("NAME", name)):
                refused = api.post(f"/agents/{aid}/plugins", content=text,
                                   headers={"content-type": "application/json"})
                assert "not finite" in _error(refused, 422)
            nan = api.put(f"/agents/{aid}/plugins/{name}/config", content='{"x": -Infinity}',
                          headers={"content-type": "application/json"})
            assert "not finite" in _error(nan, 422)
            job_text = ('{"agent": "AID", "commands": ["true"], "plugins": '
                        '[{"plugin": "NAME", "stage": "before", "config": {"x": NaN}}]}')
            job = api.post("/jobs", content=job_text.replace("AID", aid).replace("NAME", name),
                           headers={"content-type": "application/json"})
            assert "not finite" in _error(job, 422)
            assert _revision(api, aid) == before
            assert api.get("/jobs", params={"agent": aid}).json() == []
            # Just under the limit is fine.
            fits = {"blob": "x" * (64 * 1024 - 20)}
            ok = api.put(f"/agents/{aid}/plugins/{name}/config", json=fits)
            assert ok.status_code == 202, ok.text

        await asyncio.to_thread(call)
    finally:
        await agent.close()


async def test_plugins_per_agent_are_bounded_so_the_desired_state_stays_sendable(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    names = [unique() for _ in range(3)]
    for i, name in enumerate(names):
        publish(api, plugin_wheel(tmp_path / str(i), name))
    agent = await _agent(server)
    try:
        aid = agent.agent_id

        def call() -> None:
            for name in names[:2]:
                assert api.post(f"/agents/{aid}/plugins", json={"plugin": name}
                                ).status_code == 202
            before = _revision(api, aid)
            third = api.post(f"/agents/{aid}/plugins", json={"plugin": names[2]})
            assert "max_plugins_per_agent" in _error(third, 409)
            fleet = api.post("/assignments", json={"selector": {"team": "limits"},
                                                   "plugin": names[2]})
            assert aid in _error(fleet, 409)
            assert _revision(api, aid) == before
            # Re-installing (or reconfiguring) one it has is not one more.
            again = api.post(f"/agents/{aid}/plugins", json={"plugin": names[0],
                                                             "config": {"threshold": 3}})
            assert again.status_code == 202, again.text

        await asyncio.to_thread(call)
    finally:
        await agent.close()


def test_the_settings_refuse_limits_whose_desired_state_could_not_be_sent() -> None:
    # The arithmetic of arcade_server.limits: defaults fit, and the agent accepts 16 MiB.
    defaults = Settings()
    bound = limits.desired_state_bound(defaults.max_config_bytes,
                                       defaults.max_plugins_per_agent)
    assert bound == 64 + 64 * (64 * 1024 + limits.PLUGIN_OVERHEAD) < limits.GRPC_MAX_SEND
    assert limits.MAX_JOB_PLUGINS == job_requests.MAX_PLUGINS
    with pytest.raises(SettingsError, match="could not be sent"):
        Settings(max_plugins_per_agent=200)
    with pytest.raises(SettingsError, match="max_config_bytes"):
        Settings(max_config_bytes=1024 * 1024, max_plugins_per_agent=1)


async def test_huge_versions_and_names_are_4xx_on_every_route_that_parses_them(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name))
    agent = await _agent(server)
    try:
        aid = agent.agent_id

        def call() -> None:
            long_name = "a" * 300
            checks = [
                (api.post(f"/agents/{aid}/plugins", json={"plugin": f"{name}@{BIG_VERSION}"}),
                 422),
                (api.post(f"/agents/{aid}/plugins", json={"plugin": f"{name}@>={BIG_VERSION}"}),
                 422),
                (api.post(f"/agents/{aid}/plugins", json={"plugin": f"{name}@>=1,<{'9' * 150}"}),
                 422),
                (api.post("/assignments", json={"plugin": f"{name}@{BIG_VERSION}"}), 422),
                (api.post("/jobs", json={"agent": aid, "commands": ["true"], "plugins": [
                    {"plugin": f"{name}@=={BIG_VERSION}", "stage": "before"}]}), 422),
                (api.get(f"/plugins/{name}/versions/{BIG_VERSION}"), 404),
                (api.delete(f"/plugins/{name}/versions/{BIG_VERSION}"), 404),
                (api.post(f"/agents/{aid}/plugins", json={"plugin": long_name}), 422),
                (api.delete(f"/agents/{aid}/plugins/{long_name}"), 422),
                (api.post("/assignments/remove", json={"plugin": long_name}), 422),
                (api.get(f"/plugins/{long_name}"), 404),
            ]
            for response, status in checks:
                message = _error(response, status)
                assert "characters" in message or "at most" in message, message

        await asyncio.to_thread(call)
    finally:
        await agent.close()


def test_wheels_with_names_or_versions_longer_than_their_columns_are_refused(
    api: httpx.Client, tmp_path: Path
) -> None:
    long_version = ".".join(["1"] * 60)  # normalized as is: 119 characters
    refused = upload(api, plugin_wheel(tmp_path, unique(), long_version))
    assert "at most 100" in _error(refused, 422)


def test_labels_set_through_rest_are_capped(api: httpx.Client) -> None:
    too_many = {f"k{i}": "v" for i in range(limits.MAX_LABELS + 1)}
    for selector, words in [
        (too_many, "at most 64"),
        ({"a" * 64: "v"}, "invalid label key"),
        ({"example.com/" + "a" * 64: "v"}, "invalid label key"),
        ({"k": "v" * 257}, "at most 256"),
    ]:
        response = api.post("/assignments", json={"selector": selector, "plugin": "x"})
        assert words in _error(response, 422)


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


def test_rejected_publishes_leave_no_files_and_a_wheel_over_the_limit_is_413(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    settings = server.settings
    name = unique()
    publish(api, plugin_wheel(tmp_path / "a", name, "1.0.0"))
    blobs_before = _files(settings.blob_dir)
    # Same name@version, other content: 409, and neither its upload nor its blob stays.
    for i in range(3):
        other = plugin_wheel(tmp_path / f"b{i}", name, "1.0.0", files={"extra.txt": str(i)})
        assert "immutable" in _error(upload(api, other), 409)
    invalid = tmp_path / "bad-1.0-py3-none-any.whl"
    invalid.write_bytes(b"not a zip")
    _error(upload(api, invalid), 422)
    big = make_wheel(tmp_path / "big", unique(), "1.0.0",
                     files={"big.bin": os.urandom(300_000)})  # incompressible
    assert big.stat().st_size > 200_000
    assert "max_wheel_bytes" in _error(upload(api, big), 413)
    assert _files(settings.upload_dir) == []
    assert _files(settings.blob_dir) == blobs_before


def test_a_partial_upload_left_by_a_crash_is_swept_at_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = start_server(home)
    first.stop()
    partial = first.settings.upload_dir / "up-crashed" / "0" / "half.whl"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"PK" + b"\0" * 1000)
    again = start_server(home)
    try:
        assert _files(again.settings.upload_dir) == []
    finally:
        again.stop()
