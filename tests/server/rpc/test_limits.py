"""Limits on what agents (or anyone speaking gRPC) may make the server hold: a stream that
never reads keeps one desired state, not a backlog; an oversized message is
``RESOURCE_EXHAUSTED`` and the server carries on; 10,000 labels are ``INVALID_ARGUMENT``;
metrics are rate-limited and capped per batch, and the retention sweep enforces both age and
rows per agent and plugin."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from arcade_core.rpc.v1 import pb, pb_grpc
from arcade_server.db.engine import Database
from arcade_server.limits import RateLimiter
from arcade_server.runner import ServerThread
from arcade_server.services import agents, metrics
from tests.server.conftest import start_server
from tests.server.helpers import ProtocolAgent, plugin_wheel, publish, unique
from tests.waiting import until

FREE_MANIFEST = {"description": "free-form config", "type": "collector",
                 "config_schema": {"type": "object"}}


async def _channel(server: ServerThread, agent_id: str) -> grpc.aio.Channel:
    """An mTLS channel with a certificate enrolled for ``agent_id``."""
    agent = ProtocolAgent(server, agent_id)
    await agent.ensure_channel()
    channel: grpc.aio.Channel = agent.channel
    return channel


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    running = start_server(tmp_path_factory.mktemp("rpc-limits"), metric_rate=10,
                           metric_burst=100, metric_batch_max=50, metric_rows_per_plugin=60,
                           grpc_max_receive_bytes=256 * 1024)
    yield running
    running.stop()


def _register(agent_id: str, **labels: str) -> Any:
    return pb.AgentMessage(register=pb.Register(agent_id=agent_id, hostname="h",
                                                labels=labels))


async def test_a_stream_that_never_reads_holds_only_the_latest_desired_state(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    names = [unique() for _ in range(8)]
    for i, name in enumerate(names):
        publish(api, plugin_wheel(tmp_path / str(i), name, manifest=FREE_MANIFEST))
    agent_id = unique("deaf")
    hub = server.server.state.hub
    stop = asyncio.Event()

    async def requests() -> AsyncIterator[Any]:
        yield _register(agent_id)
        await stop.wait()

    channel = await _channel(server, agent_id)
    stub = pb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]
    call = stub.Connect(requests())  # never read
    try:
        stream = await until(lambda: hub.stream(agent_id), what="the stream attached")
        pad = "x" * 60_000
        most = 0

        def change_config_many_times() -> int:
            nonlocal most
            for name in names:  # each desired state: 8 plugins x 60 KB
                response = api.post(f"/agents/{agent_id}/plugins",
                                    json={"plugin": name, "config": {"pad": pad}})
                assert response.status_code == 202, response.text
            revision = 0
            for i in range(40):  # ~19 MB of desired states in all
                response = api.put(f"/agents/{agent_id}/plugins/{names[0]}/config",
                                   json={"i": i, "pad": pad})
                assert response.status_code == 202, response.text
                revision = response.json()["revision"]
                most = max(most, stream.pending)
            return int(revision)

        last = await asyncio.to_thread(change_config_many_times)
        await until(lambda: stream.offered_revision == last, what="the last state offered")
        # The sender is blocked on the full window: one state waits, never forty.
        assert stream.pending <= 1 and most <= 1
        assert stream.sent_revision < last
        # And the server is fine.
        assert (await asyncio.to_thread(api.get, "/health")).status_code == 200
    finally:
        stop.set()
        call.cancel()
        await channel.close()


async def test_jobs_queued_on_a_stream_that_never_reads_are_bounded() -> None:
    from arcade_server.rpc.streams import MAX_PENDING, OVERFLOW, AgentStream

    stream = AgentStream("deaf")
    for i in range(MAX_PENDING + 10):
        stream.send(pb.ServerMessage(cancel_job=pb.CancelJob(job_id=str(i))))
    assert stream.closed and stream.pending == 1
    assert await stream.next() is OVERFLOW


async def test_an_oversized_message_is_resource_exhausted_and_the_server_carries_on(
    server: ServerThread, api: httpx.Client
) -> None:
    agent = ProtocolAgent(server)
    try:
        await agent.connect()
        await agent.desired()
        agent.send(pb.AgentMessage(metrics=pb.MetricBatch(metrics=[
            pb.Metric(plugin="p", name="m", value=1.0, unit="x" * 300_000)])))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            while True:
                await agent.recv()
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await agent.close()
    again = ProtocolAgent(server)
    try:
        await again.connect()
        await again.desired()
    finally:
        await again.close()
    assert (await asyncio.to_thread(api.get, "/health")).status_code == 200


async def test_a_register_with_too_many_or_too_large_labels_is_invalid_argument(
    server: ServerThread,
) -> None:
    for labels, words in [
        ({f"k{i}": "v" for i in range(10_000)}, "at most 64"),
        ({"k": "v" * 300}, "at most 256"),
        ({"n" * 70: "v"}, "invalid label key"),
    ]:
        agent_id = unique("labels")
        async with await _channel(server, agent_id) as channel:
            stub = pb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]

            async def requests(labels: dict[str, str] = labels,
                               agent_id: str = agent_id) -> AsyncIterator[Any]:
                yield _register(agent_id, **labels)

            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in stub.Connect(requests()):
                    pass
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert words in (caught.value.details() or "")


async def test_metrics_beyond_the_batch_cap_and_the_rate_are_dropped_and_counted(
    server: ServerThread, api: httpx.Client
) -> None:
    agent = ProtocolAgent(server)
    try:
        await agent.connect()
        await agent.desired()
        for _ in range(4):  # 4 x 80: 50 kept per batch at most, 100 in all (the burst)
            agent.send(pb.AgentMessage(metrics=pb.MetricBatch(metrics=[
                pb.Metric(plugin="p", name="m", value=float(i), timestamp=time.time())
                for i in range(80)])))

        def dropped() -> Any:
            detail = api.get(f"/agents/{agent.agent_id}").json()
            return detail if detail["metrics_dropped"] >= 220 else None

        detail = await until(dropped, blocking=True, what="the excess counted")
        stored = (await asyncio.to_thread(
            api.get, f"/agents/{agent.agent_id}/metrics", params={"limit": 1000})).json()
        assert detail["metrics_dropped"] + len(stored) == 320
        assert 100 <= len(stored) <= 110  # the burst, plus what 10/s refilled meanwhile
        # The server's retention sweep keeps metric_rows_per_plugin rows (and drops old ones).
        state = server.server.state
        deleted = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            state.expire_metrics(), server.loop))
        assert deleted == len(stored) - 60
        kept = (await asyncio.to_thread(
            api.get, f"/agents/{agent.agent_id}/metrics", params={"limit": 1000})).json()
        assert len(kept) == 60
    finally:
        await agent.close()


def test_the_rate_limiter_refills_at_its_rate_and_warns_once_per_interval() -> None:
    limiter = RateLimiter(10.0, 100.0, warn_interval=60.0)
    assert limiter.take("a", 150, now=0.0) == 100
    assert limiter.take("a", 50, now=0.0) == 0
    assert limiter.take("a", 50, now=2.0) == 20
    assert limiter.take("b", 5, now=2.0) == 5
    assert limiter.should_warn("a", now=0.0)
    assert not limiter.should_warn("a", now=59.0)
    assert limiter.should_warn("a", now=61.0)


def test_the_retention_sweep_enforces_age_and_rows_per_agent_and_plugin(
    database: Database,
) -> None:
    database.call(agents.register, agents.AgentInfo(agent_id="retained"))
    now = time.time()
    old = [metrics.MetricData("p", "m", 1.0, timestamp=now - 10_000) for _ in range(5)]
    many = [metrics.MetricData("p", "m", float(i), timestamp=now) for i in range(30)]
    other = [metrics.MetricData("q", "m", 1.0, timestamp=now) for _ in range(3)]
    database.call(metrics.store_batch, "retained", old + many + other, now=now)
    assert database.call(metrics.purge, now - 5_000) == 5
    assert database.call(metrics.purge_excess, 10) == 20
    kept = database.call(metrics.query, "retained", plugin="p", limit=100)
    assert [m["value"] for m in kept] == [float(i) for i in range(20, 30)]
    assert len(database.call(metrics.query, "retained", plugin="q", limit=100)) == 3
    assert database.call(metrics.purge_excess, 10) == 0
