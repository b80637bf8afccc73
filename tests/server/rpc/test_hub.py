"""The hub's fleet-scale shortcuts: batched desired-state reads, the in-memory download
permission, and status waits that say which agents reported; and the hub as the server's
Notifier (desired states, jobs and cancels queued on the streams of this process)."""

from __future__ import annotations

import asyncio

import pytest

from arcade_core.states import Isolation, Stage
from arcade_server.db.engine import Database
from arcade_server.errors import NotFound
from arcade_server.rpc.hub import Hub
from arcade_server.services import agents
from arcade_server.services.desired import DesiredPlugin, DesiredState, WheelRef
from arcade_server.services.dispatch import Dispatch, DispatchEntry
from arcade_server.services.notifier import Notifier
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


async def test_the_hub_queues_jobs_and_cancels_only_on_streams_open_here(
    database: Database,
) -> None:
    await database.run(agents.register_many, [agents.AgentInfo(agent_id="a1")])
    hub = Hub(database)
    notifier: Notifier = hub
    try:
        stream = hub.attach("a1")
        stream.offer(await hub.desired("a1"))
        assert (await stream.next()).revision == 0
        entry = DispatchEntry(0, "p", "1.0", Stage.BEFORE, 3, {"k": 1}, Isolation.PROCESS,
                              (("p-1.0-py3-none-any.whl", SHA_A, 10),))
        here = Dispatch("j1", "a1", ("true",), {"CI": "1"}, 30.0, (entry,))
        elsewhere = Dispatch("j2", "a2", ("true",), {}, 30.0, ())
        assert await notifier.jobs_dispatched([here, elsewhere]) == ["j1"]
        job = (await stream.next()).job
        assert (job.job_id, list(job.commands), dict(job.env), job.timeout) == \
            ("j1", ["true"], {"CI": "1"}, 30.0)
        assert [(p.name, p.order, p.config_json, p.wheels[0].sha256) for p in job.plugins] == \
            [("p", 3, '{"k":1}', SHA_A)]
        assert notifier.job_cancelled("a1", "j1") and not notifier.job_cancelled("a2", "j2")
        assert (await stream.next()).cancel_job.job_id == "j1"
        assert await notifier.desired_changed(["a1", "a2"]) == 0  # revision 0 was sent already
        hub.detach(stream)
        assert not notifier.job_cancelled("a1", "j1")
        assert await notifier.jobs_dispatched([here]) == []
    finally:
        await hub.close()
