"""Two server replicas on one PostgreSQL: a change made through one reaches an agent
connected to the other (revision sweep), and ``?wait`` on one sees a report received by the
other (database polling)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import httpx
import pytest

from arcade_server.runner import ServerThread
from tests.pg import PostgresCluster
from tests.server.conftest import start_server
from tests.server.helpers import ProtocolAgent, plugin_wheel, publish, status, unique


@pytest.mark.e2e
async def test_changes_and_reports_cross_replicas_sharing_one_database(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    url = postgres.create_database()
    tuning = {"database_url": url, "revision_poll_interval": 0.2, "wait_poll_interval": 0.2}
    first = start_server(tmp_path / "a", **tuning)
    second: ServerThread | None = None
    agent: ProtocolAgent | None = None
    try:
        second = start_server(tmp_path / "b", **tuning)
        agent = ProtocolAgent(second)
        with httpx.Client(base_url=first.http_url + "/api/v1",
                          headers=first.auth_headers, timeout=90) as api:
            name = unique()
            publish(api, plugin_wheel(tmp_path, name, "1.0.0"))
            await agent.connect()
            await agent.desired()

            async def on_second_replica() -> None:
                assert agent is not None
                desired = await agent.desired()
                agent.report(desired.revision, status(name, "1.0.0", "running"))

            reporter = asyncio.create_task(on_second_replica())
            response = await asyncio.to_thread(
                api.post, f"/agents/{agent.agent_id}/plugins", json={"plugin": name},
                params={"wait": 60},
            )
            await reporter
            assert response.status_code == 200, response.text
            assert response.json()["state"]["state"] == "running"
            assert response.json()["connected"] is False  # the stream is on the other replica
    finally:
        if agent is not None:
            await agent.close()
        first.stop()
        if second is not None:
            second.stop()
        postgres.drop_database(url)


@pytest.mark.e2e
async def test_a_revocation_on_one_replica_ends_the_stream_on_the_other(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    """The second replica trusts the certificate its open stream was checked with (for
    DownloadWheel); its sweep finds the revocation made through the first one, closes the
    stream and refuses the certificate from then on."""
    url = postgres.create_database()
    tuning = {"database_url": url, "revision_poll_interval": 0.2, "wait_poll_interval": 0.2}
    first = start_server(tmp_path / "a", **tuning)
    second: ServerThread | None = None
    agent: ProtocolAgent | None = None
    try:
        second = start_server(tmp_path / "b", **tuning)
        agent = ProtocolAgent(second)
        await agent.connect()
        await agent.desired()
        with httpx.Client(base_url=first.http_url + "/api/v1",
                          headers=first.auth_headers, timeout=90) as api:
            response = await asyncio.to_thread(api.post, f"/agents/{agent.agent_id}/revoke")
            assert response.status_code == 200, response.text
            assert response.json()["stream_closed"] is False   # not on this replica
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while True:
                await agent.recv()
        assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await agent.download("a" * 64)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        if agent is not None:
            await agent.close()
        first.stop()
        if second is not None:
            second.stop()
        postgres.drop_database(url)
