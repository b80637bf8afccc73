"""The gRPC AgentService through a real grpc.aio channel to the real server."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest

from arcade_agent.downloader import download_stub
from arcade_core.rpc.v1 import pb
from arcade_core.rpc.v1.convert import to_pb
from arcade_core.states import Isolation
from arcade_server.runner import ServerThread
from tests.server.conftest import start_server
from tests.server.helpers import (
    ProtocolAgent,
    create_enrollment_token,
    db_row,
    dependency_wheel,
    plugin_wheel,
    publish,
    status,
    unique,
)
from tests.waiting import until, until_sync

REPO = Path(__file__).resolve().parents[3]


async def test_register_answers_welcome_then_the_current_desired_state(server: ServerThread,
                                                                       api: httpx.Client) -> None:
    agent = ProtocolAgent(server)
    try:
        welcome = await agent.connect(labels={"role": "web"})
        assert welcome.agent_id == agent.agent_id
        assert welcome.heartbeat_interval == server.settings.heartbeat_interval
        desired = await agent.desired()
        assert desired.revision == 0
        assert list(desired.plugins) == []
        listed = api.get(f"/agents/{agent.agent_id}").json()
        assert listed["labels"] == {"role": "web"}
        assert listed["status"] == "online"
        assert listed["connected"] is True
    finally:
        await agent.close()


async def test_first_message_other_than_register_is_refused(server: ServerThread) -> None:
    agent = ProtocolAgent(server)
    try:
        await agent.open(pb.AgentMessage(heartbeat=pb.Heartbeat(applied_revision=1)))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await agent.recv()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Register" in (caught.value.details() or "")
    finally:
        await agent.close()


async def test_invalid_agent_id_is_refused_with_the_rule(server: ServerThread) -> None:
    agent = ProtocolAgent(server, agent_id="../bad id")
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await agent.connect()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "invalid agent id" in (caught.value.details() or "")
    finally:
        await agent.close()


async def test_install_pushes_the_new_desired_state_to_the_open_stream(
    tmp_path: Path,
) -> None:
    # A server that never sweeps revisions: what reaches the stream was pushed by the install.
    server = start_server(tmp_path / "home", revision_poll_interval=3600)
    api = httpx.Client(base_url=server.http_url + "/api/v1",
                       headers=server.auth_headers, timeout=30)
    try:
        await _pushes_the_new_desired_state(server, api, tmp_path)
    finally:
        api.close()
        server.stop()


async def _pushes_the_new_desired_state(server: ServerThread, api: httpx.Client,
                                        tmp_path: Path) -> None:
    name = unique()
    dep = unique("dep")
    published = publish(
        api,
        plugin_wheel(tmp_path, name, "1.2.0", requires=[f"{dep}>=1"]),
        dependency_wheel(tmp_path, dep, "1.5"),
    )
    agent = ProtocolAgent(server)
    try:
        await agent.connect()
        first = await agent.desired()
        response = await asyncio.to_thread(
            api.post, f"/agents/{agent.agent_id}/plugins",
            json={"plugin": f"{name}@1.2.0", "config": {"threshold": 3}},
        )
        assert response.status_code == 202, response.text
        desired = await agent.desired()
        assert desired.revision == first.revision + 1 == response.json()["revision"]
        [plugin] = desired.plugins
        assert (plugin.name, plugin.version, plugin.isolation) == (
            name, "1.2.0", to_pb(Isolation.INLINE))
        assert json.loads(plugin.config_json) == {"threshold": 3, "label": "x"}
        assert plugin.interval == 5
        # Plugin wheel first, then its dependency, with real sha256s and sizes.
        assert [w.sha256 for w in plugin.wheels] == [w["sha256"] for w in published["wheels"]]
        assert plugin.wheels[0].sha256 == published["sha256"]
        assert plugin.wheels[1].filename.startswith(dep.replace("-", "_"))
        assert all(w.size > 0 for w in plugin.wheels)
    finally:
        await agent.close()


async def test_reconnect_gets_the_current_desired_state_at_once(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name))
    agent = ProtocolAgent(server)
    await agent.connect()
    await agent.desired()
    await agent.close()
    response = await asyncio.to_thread(
        api.post, f"/agents/{agent.agent_id}/plugins", json={"plugin": name}
    )
    assert response.status_code == 202
    again = ProtocolAgent(server, agent.agent_id)
    try:
        await again.connect()
        desired = await again.desired()
        assert [p.name for p in desired.plugins] == [name]
        assert desired.revision == response.json()["revision"]
    finally:
        await again.close()


async def test_second_connection_with_the_same_id_replaces_the_first(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name))
    first = ProtocolAgent(server)
    second = ProtocolAgent(server, first.agent_id)
    try:
        await first.connect()
        await first.desired()
        await second.connect()
        await second.desired()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await first.recv()
        assert caught.value.code() == grpc.StatusCode.ABORTED
        await asyncio.to_thread(
            api.post, f"/agents/{first.agent_id}/plugins", json={"plugin": name}
        )
        desired = await second.desired()
        assert [p.name for p in desired.plugins] == [name]
    finally:
        await first.close()
        await second.close()


async def test_status_reports_are_stored_as_actual_state_beside_desired(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name, "2.0.0"))
    agent = ProtocolAgent(server)
    try:
        await agent.connect()
        await agent.desired()
        await asyncio.to_thread(
            api.post, f"/agents/{agent.agent_id}/plugins", json={"plugin": name}
        )
        desired = await agent.desired()
        agent.report(desired.revision, status(name, "2.0.0", "failed", error="boom",
                                               restarts=3, isolation="process"))
        plugins = await until(
            lambda: (p := api.get(f"/agents/{agent.agent_id}/plugins").json())[0]["actual"]
            and p, blocking=True, what="the report stored as actual state")
        actual = plugins[0]["actual"]
        assert plugins[0]["name"] == name
        assert plugins[0]["desired"]["version"] == "2.0.0"
        assert actual["state"] == "failed"
        assert actual["error"] == "boom"
        assert actual["restarts"] == 3
        assert actual["revision"] == desired.revision
        assert plugins[0]["in_sync"] is False
        agent_info = (await asyncio.to_thread(api.get, f"/agents/{agent.agent_id}")).json()
        assert agent_info["applied_revision"] == desired.revision
    finally:
        await agent.close()


async def test_metric_batches_are_stored_and_queryable(
    server: ServerThread, api: httpx.Client
) -> None:
    agent = ProtocolAgent(server)
    try:
        await agent.connect()
        await agent.desired()
        now = time.time()
        agent.send(pb.AgentMessage(metrics=pb.MetricBatch(
            metrics=[
                pb.Metric(plugin="arcade-cpu", name="cpu.percent", value=12.5,
                          labels={"cpu": "total"}, unit="percent", timestamp=now - 2),
                pb.Metric(plugin="arcade-cpu", name="cpu.percent", value=14.0,
                          labels={"cpu": "total"}, unit="percent", timestamp=now - 1),
                pb.Metric(plugin="arcade-memory", name="memory.used", value=1024.0,
                          unit="bytes", timestamp=now),
            ],
            dropped=4,
        )))
        rows: list[dict[str, object]] = await until(
            lambda: (r := api.get(f"/agents/{agent.agent_id}/metrics").json())
            and len(r) >= 3 and r, blocking=True, what="three stored metrics")
        assert [r["value"] for r in rows] == [12.5, 14.0, 1024.0]
        cpu = (await asyncio.to_thread(
            api.get, f"/agents/{agent.agent_id}/metrics",
            params={"name": "cpu.*", "since": now - 1.5})).json()
        assert [(r["name"], r["value"], r["labels"]) for r in cpu] == [
            ("cpu.percent", 14.0, {"cpu": "total"})
        ]
        info = (await asyncio.to_thread(api.get, f"/agents/{agent.agent_id}")).json()
        assert info["metrics_dropped"] == 4
    finally:
        await agent.close()


async def test_download_wheel_streams_chunks_and_resumes_from_an_offset(
    tmp_path: Path,
) -> None:
    from tests.server.conftest import start_server

    server = start_server(tmp_path / "home", chunk_size=256 * 1024)
    try:
        with httpx.Client(base_url=server.http_url + "/api/v1",
                          headers=server.auth_headers, timeout=30) as api:
            name = unique()
            blob = bytes(range(256)) * 4096 * 3  # 3 MiB of incompressible-ish data
            import os

            payload = os.urandom(len(blob))
            wheel = plugin_wheel(tmp_path, name, files={
                f"{name.replace('-', '_')}/__init__.py": "class Plugin:\n"
                "    def __init__(self, config):\n        pass\n",
                f"{name.replace('-', '_')}/data.bin": payload,
            })
            published = publish(api, wheel)
            content = wheel.read_bytes()
            sha = published["sha256"]
            assert sha == hashlib.sha256(content).hexdigest()
            agent = ProtocolAgent(server)
            try:
                await agent.connect()
                await agent.desired()
                await asyncio.to_thread(
                    api.post, f"/agents/{agent.agent_id}/plugins", json={"plugin": name}
                )
                await agent.desired()
                chunks = await agent.download(sha)
                assert b"".join(c.data for c in chunks) == content
                assert all(len(c.data) <= 256 * 1024 for c in chunks)
                assert len(chunks) == -(-len(content) // (256 * 1024))
                assert [c.offset for c in chunks] == [
                    i * 256 * 1024 for i in range(len(chunks))
                ]
                assert {c.total_size for c in chunks} == {len(content)}
                # The agent's own stub reads the same stream as views of each message.
                views = [c async for c in download_stub(agent.channel).DownloadWheel(
                    pb.DownloadRequest(sha256=sha))]
                assert b"".join(bytes(c.data) for c in views) == content
                assert [(c.offset, c.total_size) for c in views] == [
                    (c.offset, c.total_size) for c in chunks]
                offset = len(content) // 2 + 17
                resumed = await agent.download(sha, offset=offset)
                assert resumed[0].offset == offset
                assert b"".join(c.data for c in resumed) == content[offset:]
                at_end = await agent.download(sha, offset=len(content))
                assert [(c.data, c.offset) for c in at_end] == [(b"", len(content))]
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await agent.download(sha, offset=len(content) + 1)
                assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            finally:
                await agent.close()
    finally:
        server.stop()


async def test_download_wheel_is_denied_to_agents_without_it_and_not_found_for_unknown(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    published = publish(api, plugin_wheel(tmp_path, name))
    agent = ProtocolAgent(server)
    try:
        await agent.connect()
        await agent.desired()
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await agent.download(published["sha256"])
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await agent.download("0" * 64)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await agent.download("not-a-sha")
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # After an uninstall the permission goes away again.
        await asyncio.to_thread(
            api.post, f"/agents/{agent.agent_id}/plugins", json={"plugin": name}
        )
        assert b"".join(c.data for c in await agent.download(published["sha256"]))
        await asyncio.to_thread(api.delete, f"/agents/{agent.agent_id}/plugins/{name}")
        with pytest.raises(grpc.aio.AioRpcError) as revoked:
            await agent.download(published["sha256"])
        assert revoked.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await agent.close()


@pytest.mark.e2e
async def test_heartbeats_keep_an_agent_online_and_silence_makes_it_offline(
    tmp_path: Path,
) -> None:
    from tests.server.conftest import start_server

    offline_after = 2.0
    server = start_server(tmp_path / "home", heartbeat_interval=0.2,
                          offline_after=offline_after, presence_flush_interval=0.1)
    try:
        with httpx.Client(base_url=server.http_url + "/api/v1",
                          headers=server.auth_headers, timeout=30) as api:
            agent = ProtocolAgent(server)

            async def heartbeats() -> None:
                while True:  # the agent's side of the contract: a beat per interval
                    agent.heartbeat()
                    await asyncio.sleep(0.2)

            beating: asyncio.Task[None] | None = None
            try:
                await agent.connect()
                await agent.desired()
                connected_at = time.time()
                beating = asyncio.create_task(heartbeats())
                # Heartbeats went on for longer than offline_after: still online.
                info = await until(
                    lambda: (i := api.get(f"/agents/{agent.agent_id}").json())["last_seen"]
                    > connected_at + offline_after and i,
                    blocking=True, what="a heartbeat seen offline_after after connecting")
                assert info["status"] == "online"
                beating.cancel()
                await until(lambda: api.get(f"/agents/{agent.agent_id}").json()["status"]
                            == "offline", blocking=True, what="silence to make it offline")
                listed = (await asyncio.to_thread(
                    api.get, "/agents", params={"status": "offline"})).json()
                assert agent.agent_id in [a["id"] for a in listed]
            finally:
                if beating is not None:
                    beating.cancel()
                await agent.close()
        # Last-seen times were flushed to the database (other replicas see them).
        from arcade_server.db import tables as t

        def flushed() -> bool:
            with server.state.db.transaction(write=False) as conn:
                row = db_row(conn, t.agents, agent.agent_id)
                return row is not None and (row.last_seen or 0) >= info["last_seen"]

        await until(flushed, blocking=True, what="the last heartbeat flushed to the database")
    finally:
        server.stop()


async def test_a_fleet_wide_rollout_reaches_every_agent_with_batched_writes(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    """Thirty agents on real streams: register together, all get the selector install,
    download the (cached) wheel, report downloading/installing/running; the ?wait answer
    lists every one running, and the reports went through the batch writer."""
    name, fleet = unique(), unique("fleet")
    wheel = plugin_wheel(tmp_path, name, "3.0.0")
    published = publish(api, wheel)
    state = server.state
    reports_before, reads_before = state.status_reports.items, state.blobs.reads
    agents = [ProtocolAgent(server) for _ in range(30)]
    try:
        await asyncio.gather(*(a.connect(labels={"fleet": fleet}) for a in agents))
        await asyncio.gather(*(a.desired() for a in agents))
        rollout = asyncio.create_task(asyncio.to_thread(
            api.post, "/assignments", params={"wait": 60},
            json={"selector": {"fleet": fleet}, "plugin": f"{name}@3.0.0"}))
        desired = await asyncio.gather(*(a.desired() for a in agents))
        for agent, d in zip(agents, desired, strict=True):
            agent.report(d.revision, status(name, "3.0.0", "downloading"), complete=False)
        blobs = await asyncio.gather(*(a.download(published["sha256"]) for a in agents))
        for chunks in blobs:
            data = b"".join(c.data for c in chunks)
            assert data == wheel.read_bytes()
        tail = await agents[0].download(published["sha256"], offset=10)
        assert b"".join(c.data for c in tail) == b"".join(c.data for c in blobs[0])[10:]
        for agent, d in zip(agents, desired, strict=True):
            agent.report(d.revision, status(name, "3.0.0", "installing"), complete=False)
            agent.report(d.revision, status(name, "3.0.0", "running"))
        response = await rollout
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["matched"], body["running"], body["failed"]) == (30, 30, 0)
        assert sorted(body["states"]) == sorted(a.agent_id for a in agents)
        listed = (await asyncio.to_thread(
            api.get, "/agents", params={"label": f"fleet={fleet}"})).json()
        assert len(listed) == 30
        assert all(a["applied_revision"] == a["desired_revision"] for a in listed)
        written = state.status_reports.items - reports_before
        assert written >= 90                        # every report went through the batcher
        assert state.status_reports.largest > 1     # ... and some shared a transaction
        assert state.blobs.reads - reads_before == 1  # one disk read served the fleet
    finally:
        await asyncio.gather(*(a.close() for a in agents))


_AGENTS_SCRIPT = """
import asyncio, sys
from arcade_core.rpc.v1 import pb
from tests.server.helpers import Endpoint, ProtocolAgent, status

async def main() -> None:
    end = Endpoint(sys.argv[1], sys.argv[2].encode(), sys.argv[3])
    agents = [ProtocolAgent(end) for _ in range(3)]
    for agent in agents:
        await agent.connect()
        await agent.desired()
        agent.report(1, status("held-plugin", "1.0", "running"))
        agent.send(pb.AgentMessage(metrics=pb.MetricBatch(metrics=[
            pb.Metric(plugin="cpu", name="cpu.percent", value=1.0, labels={"a": "b"})])))
    print("sent", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for agent in agents:
        await agent.close()

asyncio.run(main())
"""


def _live_agent_messages() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is pb.AgentMessage)


@pytest.mark.e2e
def test_open_streams_do_not_keep_their_last_message_alive(server: ServerThread) -> None:
    # A Connect stream lives as long as its agent: holding each stream's last message (a
    # status report, a metric batch: KBs of protobuf) would cost a fleet MBs for nothing.
    # The agents run in another process, so every AgentMessage alive here is the server's
    # (or left by an earlier test in this process: those are counted first).
    state = server.state
    earlier = _live_agent_messages()
    reports, batches = state.status_reports.items, state.metric_batches.items
    with subprocess.Popen(
        [sys.executable, "-c", _AGENTS_SCRIPT, server.grpc_target,
         server.state.tls.ca.pem.decode(), create_enrollment_token(server, uses=3)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "sent"
            until_sync(lambda: state.status_reports.items >= reports + 3
                       and state.metric_batches.items >= batches + 3,
                       what="the server to store the messages")
            assert server.state.hub.connected_ids()
            assert _live_agent_messages() <= earlier
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)
