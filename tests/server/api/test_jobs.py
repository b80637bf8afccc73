"""Jobs over REST, with real agents speaking the gRPC protocol (a real server per module)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from arcade_core.rpc.v1 import pb
from arcade_core.rpc.v1.convert import to_pb
from arcade_core.states import JobStatus, RecordStatus, Stage
from arcade_server.runner import ServerThread
from tests.server.conftest import start_server
from tests.server.helpers import ProtocolAgent, dependency_wheel, plugin_wheel, publish, unique
from tests.waiting import DEADLINE, until


async def _connected(server: ServerThread, agent_id: str | None = None,
                     jobs: list[str] | None = None, *, jobs_enabled: bool = True,
                     jobs_allow: tuple[str, ...] = ()) -> ProtocolAgent:
    """An agent that opted in to jobs (unless ``jobs_enabled=False``)."""
    agent = ProtocolAgent(server.grpc_target, agent_id)
    agent.open(pb.AgentMessage(register=pb.Register(
        agent_id=agent.agent_id, jobs=jobs or [], jobs_enabled=jobs_enabled,
        jobs_allow=list(jobs_allow))))
    welcome = await agent.recv()
    assert welcome.WhichOneof("body") == "welcome"
    await agent.desired()
    return agent


async def _next(agent: ProtocolAgent, kind: str, timeout: float = DEADLINE) -> Any:
    while True:
        message = await agent.recv(timeout)
        if message.WhichOneof("body") == kind:
            return getattr(message, kind)


async def _until(check: Callable[[], Any]) -> Any:
    """``check`` (blocking: it calls the API) polled in a thread until truthy."""
    return await until(check, blocking=True)


def _event(job_id: str, status: str, **kwargs: Any) -> pb.AgentMessage:
    return pb.AgentMessage(job_event=pb.JobEvent(
        job_id=job_id, status=to_pb(JobStatus(status)), **kwargs))


async def test_create_validates_and_says_what_to_fix(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name))
    agent = await _connected(server)
    await agent.close()
    aid = agent.agent_id

    def post(body: dict[str, Any]) -> httpx.Response:
        return api.post("/jobs", json=body)

    unknown = await asyncio.to_thread(post, {"agent": "nobody", "commands": ["true"]})
    assert unknown.status_code == 404 and "no agent with id 'nobody'" in unknown.json()["error"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"agent": aid, "commands": []}, "commands is empty"),
        ({"agent": aid, "commands": "make"}, "invalid request: commands"),
        ({"agent": aid, "commands": ["true"], "timeout": -1}, "timeout must be"),
        ({"agent": aid, "commands": ["true"],
          "plugins": [{"plugin": name, "stage": "sometimes"}]},
         "plugins[0] ('" + name + "'): stage 'sometimes' is not one of before, after, "
         "on_success, on_failure, notify"),
        ({"agent": aid, "commands": ["true"],
          "plugins": [{"plugin": name, "stage": "after", "config": {"threshold": -1}}]},
         f"invalid config for {name}@1.0.0"),
        ({"agent": aid, "commands": ["true"], "plugins": [{"plugin": "x@@1", "stage": "after"}]},
         "plugins[0] ('x@@1')"),
        ({"agent": aid, "commands": ["true"], "colour": "blue"}, "invalid request: colour"),
    ]
    for body, message in cases:
        response = await asyncio.to_thread(post, body)
        assert response.status_code == 422, (body, response.text)
        assert message in response.json()["error"], response.json()
    listed = await asyncio.to_thread(api.get, "/jobs", params={"agent": aid})
    assert listed.json() == []
    assert (await asyncio.to_thread(api.get, "/jobs/nope")).status_code == 404
    bad_status = await asyncio.to_thread(api.get, "/jobs", params={"status": "done"})
    assert bad_status.status_code == 422 and "status 'done'" in bad_status.json()["error"]


async def test_job_is_sent_to_the_connected_agent_and_follows_its_events(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name, dep = unique(), unique("dep")
    published = publish(api, plugin_wheel(tmp_path, name, requires=[dep]),
                        dependency_wheel(tmp_path, dep))
    agent = await _connected(server)
    try:
        response = await asyncio.to_thread(api.post, "/jobs", json={
            "agent": agent.agent_id, "commands": ["echo hi"], "env": {"A": "1"}, "timeout": 9,
            "plugins": [{"plugin": name, "stage": "before", "config": {"threshold": 2}},
                        {"plugin": name, "stage": "notify", "order": -1}],
        })
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["status"] == "queued" and created["connected"] is True
        assert response.headers["location"] == f"/api/v1/jobs/{created['id']}"
        job = await _next(agent, "job")
        assert (job.job_id, list(job.commands), dict(job.env), job.timeout) == (
            created["id"], ["echo hi"], {"A": "1"}, 9.0)
        assert [(p.index, p.stage, p.order, p.name) for p in job.plugins] == [
            (0, to_pb(Stage.BEFORE), 0, name), (1, to_pb(Stage.NOTIFY), -1, name)]
        assert [w.sha256 for w in job.plugins[0].wheels] == [
            w["sha256"] for w in published["wheels"]]
        # A job's wheels may be downloaded by its agent (and not by others).
        chunks = await agent.download(job.plugins[0].wheels[1].sha256)
        assert b"".join(c.data for c in chunks)
        other = await _connected(server)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await other.download(job.plugins[0].wheels[1].sha256)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        await other.close()

        agent.send(_event(job.job_id, "running", started_at=100.0, plugins=[
            pb.JobPluginRecord(index=0, status=to_pb(RecordStatus.SUCCEEDED),
                               result_json='{"env": {"X": "1"}}',
                               started_at=100.0, completed_at=100.5)]))

        def shows_running() -> dict[str, Any] | None:
            body: dict[str, Any] = api.get(f"/jobs/{job.job_id}").json()
            return body if body["status"] == "running" else None

        running = await _until(shows_running)
        assert running["plugins"][0]["result"] == {"env": {"X": "1"}}
        assert running["plugins"][0]["status"] == "succeeded"
        agent.send(_event(job.job_id, "failed", exit_code=3, has_exit_code=True,
                          output_tail="$ echo hi\nhi\n", output_size=13, started_at=100.0,
                          finished_at=104.0, error="command 1 of 1 exited with code 3"))

        def shows_failed() -> dict[str, Any] | None:
            body: dict[str, Any] = api.get(f"/jobs/{job.job_id}").json()
            return body if body["status"] == "failed" else None

        final = await _until(shows_failed)
        assert (final["exit_code"], final["duration"], final["output_tail"]) == (
            3, 4.0, "$ echo hi\nhi\n")
        assert [p["status"] for p in final["plugins"]] == ["succeeded", "skipped"]
        listed = (await asyncio.to_thread(api.get, "/jobs", params={
            "agent": agent.agent_id, "status": "failed"})).json()
        assert [j["id"] for j in listed] == [job.job_id]
        cancel = await asyncio.to_thread(api.post, f"/jobs/{job.job_id}/cancel")
        assert cancel.status_code == 409 and "already ended failed" in cancel.json()["error"]
    finally:
        await agent.close()


async def test_cancel_of_a_running_job_reaches_the_agent(server: ServerThread,
                                                          api: httpx.Client) -> None:
    agent = await _connected(server)
    try:
        created = (await asyncio.to_thread(api.post, "/jobs", json={
            "agent": agent.agent_id, "commands": ["sleep 100"]})).json()
        job = await _next(agent, "job")
        agent.send(_event(job.job_id, "running", started_at=time.time()))
        await _until(lambda: api.get(f"/jobs/{created['id']}").json()["status"] == "running")
        response = await asyncio.to_thread(api.post, f"/jobs/{created['id']}/cancel")
        assert response.status_code == 202 and response.json()["cancel_sent"] is True
        cancel = await _next(agent, "cancel_job")
        assert cancel.job_id == created["id"]
        agent.send(_event(job.job_id, "cancelled", error="cancelled on request"))
        await _until(lambda: api.get(f"/jobs/{created['id']}").json()["status"] == "cancelled")
    finally:
        await agent.close()


async def test_job_for_an_offline_agent_waits_and_is_sent_when_it_connects(
    server: ServerThread, api: httpx.Client
) -> None:
    agent = await _connected(server)
    await agent.close()
    await _until(lambda: not server.state.hub.connected(agent.agent_id))
    first = (await asyncio.to_thread(api.post, "/jobs", json={
        "agent": agent.agent_id, "commands": ["true"]})).json()
    assert first["connected"] is False and first["dispatched_at"] is None
    dropped = (await asyncio.to_thread(api.post, "/jobs", json={
        "agent": agent.agent_id, "commands": ["true"]})).json()
    response = await asyncio.to_thread(api.post, f"/jobs/{dropped['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert response.json()["cancel_sent"] is False
    again = await _connected(server, agent.agent_id)
    try:
        job = await _next(again, "job")
        assert job.job_id == first["id"]
        body = (await asyncio.to_thread(api.get, f"/jobs/{first['id']}")).json()
        assert body["status"] == "queued" and body["dispatched_at"] is not None
    finally:
        await again.close()


async def test_agent_back_without_its_running_job_fails_it_and_known_jobs_survive(
    server: ServerThread, api: httpx.Client
) -> None:
    agent = await _connected(server)
    ids = []
    try:
        for _ in range(2):
            ids.append((await asyncio.to_thread(api.post, "/jobs", json={
                "agent": agent.agent_id, "commands": ["sleep 60"]})).json()["id"])
            await _next(agent, "job")
        for job_id in ids:
            agent.send(_event(job_id, "running", started_at=time.time()))
        await _until(lambda: all(api.get(f"/jobs/{i}").json()["status"] == "running"
                                 for i in ids))
    finally:
        await agent.close()
    again = await _connected(server, agent.agent_id, jobs=[ids[1]])
    try:
        lost = (await asyncio.to_thread(api.get, f"/jobs/{ids[0]}")).json()
        assert lost["status"] == "failed"
        assert "connected again without this job" in lost["error"]
        assert (await asyncio.to_thread(api.get, f"/jobs/{ids[1]}")).json()["status"] == \
            "running"
        # A late "running" report for the failed job is answered with a cancel.
        again.send(_event(ids[0], "running"))
        assert (await _next(again, "cancel_job")).job_id == ids[0]
    finally:
        await again.close()


@pytest.mark.e2e
async def test_jobs_survive_a_restart_and_a_vanished_agent_fails_them(tmp_path: Path) -> None:
    settings = {"heartbeat_interval": 0.2, "offline_after": 0.5, "job_lost_after": 1.0,
                "job_sweep_interval": 0.2}
    home = tmp_path / "home"
    server = await asyncio.to_thread(start_server, home, **settings)
    agent: ProtocolAgent | None = None
    try:
        agent = await _connected(server)
        with httpx.Client(base_url=server.http_url + "/api/v1",
                          headers=server.auth_headers, timeout=30) as api:
            job_id = (await asyncio.to_thread(api.post, "/jobs", json={
                "agent": agent.agent_id, "commands": ["sleep 60"]})).json()["id"]
            await _next(agent, "job")
            agent.send(_event(job_id, "running", started_at=time.time()))
            await _until(lambda: api.get(f"/jobs/{job_id}").json()["status"] == "running")
        await asyncio.to_thread(server.stop)
        await agent.close()
        server = await asyncio.to_thread(start_server, home, **settings)
        with httpx.Client(base_url=server.http_url + "/api/v1",
                          headers=server.auth_headers, timeout=30) as api:
            body = (await asyncio.to_thread(api.get, f"/jobs/{job_id}")).json()
            assert body["status"] in ("running", "failed")  # the record survived the restart

            def failed() -> dict[str, Any] | None:
                data: dict[str, Any] = api.get(f"/jobs/{job_id}").json()
                return data if data["status"] == "failed" else None

            lost = await _until(failed)
            assert f"agent {agent.agent_id} has not been seen" in lost["error"]
            assert lost["finished_at"] is not None
    finally:
        if agent is not None:
            await agent.close()
        await asyncio.to_thread(server.stop)


async def test_jobs_are_refused_unless_the_agent_opted_in_and_allows_the_command(
    server: ServerThread, api: httpx.Client
) -> None:
    closed = await _connected(server, jobs_enabled=False)
    await closed.close()
    limited = await _connected(server, jobs_allow=("make *", "pytest -q"))
    try:
        def post(agent: str, *commands: str) -> httpx.Response:
            return api.post("/jobs", json={"agent": agent, "commands": list(commands)})

        refused = await asyncio.to_thread(post, closed.agent_id, "true")
        assert refused.status_code == 409, refused.text
        assert "does not run jobs: set `[jobs] enabled = true` in the agent's config" in \
            refused.json()["error"]
        shown = (await asyncio.to_thread(api.get, f"/agents/{limited.agent_id}")).json()
        assert shown["jobs"] == {"enabled": True, "allow": ["make *", "pytest -q"]}

        allowed = await asyncio.to_thread(post, limited.agent_id, "make test", "pytest -q")
        assert allowed.status_code == 201, allowed.text
        for command in ("make test; id", "make $(id)", "pytest -q -x", "id"):
            outside = await asyncio.to_thread(post, limited.agent_id, "make lint", command)
            assert outside.status_code == 409, (command, outside.text)
            assert outside.json()["error"] == (
                f"commands[1] {command!r} is not allowed on agent {limited.agent_id!r}: it "
                "matches none of its [jobs] allow patterns ['make *', 'pytest -q']")
        jobs = (await asyncio.to_thread(api.get, "/jobs",
                                        params={"agent": limited.agent_id})).json()
        assert [j["commands"] for j in jobs] == [["make test", "pytest -q"]]
    finally:
        await limited.close()
