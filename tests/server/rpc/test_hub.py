"""The hub's fleet-scale shortcuts: batched desired-state reads, the in-memory download
permission, and status waits that say which agents reported."""

from __future__ import annotations

import asyncio

import pytest

from arcade_server.db.engine import Database
from arcade_server.errors import NotFound
from arcade_server.rpc.hub import Hub
from arcade_server.services import agents
from arcade_server.services.assignments import DesiredPlugin, DesiredState, WheelRef
from tests.waiting import DEADLINE

SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64


def _state(agent_id: str, revision: int, *shas: str) -> DesiredState:
    wheels = tuple(WheelRef(f"w{i}.whl", sha, 10) for i, sha in enumerate(shas))
    plugins = (DesiredPlugin("p", "1.0", "inline", {}, wheels, 0.0),) if wheels else ()
    return DesiredState(agent_id, revision, plugins)


async def test_agents_connecting_together_share_one_desired_state_read(
    database: Database,
) -> None:
    ids = [f"agent-{i}" for i in range(25)]
    await database.run(agents.register_many, [agents.AgentInfo(agent_id=a) for a in ids])
    hub = Hub(database)
    try:
        states = await asyncio.gather(*(hub.desired(agent_id) for agent_id in ids))
        assert [s.agent_id for s in states] == ids
        assert all(s.revision == 0 and s.plugins == () for s in states)
        # The first read goes alone; everything asked meanwhile goes in the next one.
        assert hub.desired_reads.items == 25 and hub.desired_reads.batches <= 2
        with pytest.raises(NotFound, match="ghost"):
            await hub.desired("ghost")
    finally:
        await hub.close()


async def test_downloads_are_allowed_from_memory_only_for_the_state_queued_to_the_stream(
    database: Database,
) -> None:
    hub = Hub(database)
    try:
        assert not hub.allows_download("a1", SHA_A)           # not connected here
        stream = hub.attach("a1")
        assert stream.offer(_state("a1", 3, SHA_A, SHA_B))
        assert hub.allows_download("a1", SHA_A) and hub.allows_download("a1", SHA_B)
        assert not hub.allows_download("a1", SHA_C)
        assert not hub.allows_download("a2", SHA_A)           # another agent's wheel
        assert not stream.offer(_state("a1", 2, SHA_C))        # older: ignored
        assert not hub.allows_download("a1", SHA_C)
        assert stream.offer(_state("a1", 4))                   # the plugin was removed
        assert not hub.allows_download("a1", SHA_A)
        stream.offer(_state("a1", 5, SHA_A))
        hub.detach(stream)
        assert not hub.allows_download("a1", SHA_A)           # stream gone: ask the database
    finally:
        await hub.close()


async def test_a_waiter_learns_which_of_its_agents_reported(database: Database) -> None:
    hub = Hub(database)
    try:
        with hub.waiter(["a1", "a2"]) as waiter:
            hub.status_reported("a3")                          # not one of ours
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(waiter.wait(), 0.05)
            hub.status_reported("a2")
            hub.status_reported("a1")
            await asyncio.wait_for(waiter.wait(), DEADLINE)
            assert waiter.take() == {"a1", "a2"}
            assert waiter.take() == set()
        hub.status_reported("a1")                              # after the wait: no error
    finally:
        await hub.close()
