"""Agent and metric service functions against SQLite and a real PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from arcade_server.db.engine import Database
from arcade_server.db.models import Agent, AgentLabel, MetricRow, PluginState
from arcade_server.errors import Invalid, NotFound
from arcade_server.services import agents, metrics

RUNNING = agents.ReportedPlugin("arcade-cpu", "1.0.0", "running", sha256="a" * 64)


def test_register_upserts_the_agent_labels_and_what_it_runs(database: Database) -> None:
    info = agents.AgentInfo(agent_id="a1", hostname="h1", labels={"role": "web"},
                            plugins=[RUNNING], applied_revision=4)
    database.call(agents.register, info)
    database.call(agents.register, agents.AgentInfo(agent_id="a1", hostname="h2",
                                                    labels={"dc": "x"}))
    with database.session(write=False) as session:
        agent = session.get(Agent, "a1")
        assert agent is not None
        assert (agent.hostname, agent.labels, agent.applied_revision) == ("h2", {"dc": "x"}, 0)
        assert session.scalars(select(AgentLabel.key)).all() == ["dc"]
        # The second registration reported no plugins: the old actual state is gone.
        assert session.scalar(select(func.count()).select_from(PluginState)) == 0


@pytest.mark.parametrize("bad", ["", "has space", "../up", "x" * 201])
def test_register_refuses_bad_agent_ids(database: Database, bad: str) -> None:
    with pytest.raises(Invalid, match="invalid agent id"):
        database.call(agents.register, agents.AgentInfo(agent_id=bad))


def test_status_reports_upsert_and_removed_deletes(database: Database) -> None:
    database.call(agents.register, agents.AgentInfo(agent_id="a1"))
    database.call(agents.report_status, "a1", 3, [RUNNING], complete=True)
    failed = agents.ReportedPlugin("arcade-cpu", "1.1.0", "failed", error="x" * 10_000)
    database.call(agents.report_status, "a1", 4, [failed])
    with database.session(write=False) as session:
        state = session.get(PluginState, ("a1", "arcade-cpu"))
        assert state is not None
        assert (state.version, state.state, state.revision) == ("1.1.0", "failed", 4)
        assert len(state.error) == 8000
        assert session.get(Agent, "a1").applied_revision == 3  # type: ignore[union-attr]
    database.call(agents.report_status, "a1", 5,
                  [agents.ReportedPlugin("arcade-cpu", "1.1.0", "removed")], complete=True)
    with database.session(write=False) as session:
        assert session.get(PluginState, ("a1", "arcade-cpu")) is None
    with pytest.raises(Invalid, match="unknown state"):
        database.call(agents.report_status, "a1", 6,
                      [agents.ReportedPlugin("arcade-cpu", "1", "exploded")])


def test_presence_flush_and_online_offline(database: Database) -> None:
    database.call(agents.register, agents.AgentInfo(agent_id="a1"), now=1000.0)
    database.call(agents.register, agents.AgentInfo(agent_id="a2"), now=1000.0)
    database.call(agents.flush_presence, {"a1": (1100.0, 2)})
    with database.session(write=False) as session:
        listed = agents.list_agents(session, last_seen={"a2": 1095.0}, offline_after=30,
                                    now=1110.0)
        assert {a["id"]: a["status"] for a in listed} == {"a1": "online", "a2": "online"}
        listed = agents.list_agents(session, last_seen={}, offline_after=30, now=1110.0)
        assert {a["id"]: a["status"] for a in listed} == {"a1": "online", "a2": "offline"}
        assert agents.list_agents(session, last_seen={}, offline_after=30, now=1110.0,
                                  status="offline")[0]["id"] == "a2"
        with pytest.raises(NotFound):
            agents.get_agent(session, "ghost", last_seen=None, offline_after=30)


def test_metrics_are_stored_in_batches_queried_and_expired(database: Database) -> None:
    database.call(agents.register, agents.AgentInfo(agent_id="a1"))
    now = time.time()
    batch = [
        metrics.MetricData("arcade-cpu", "cpu.percent", float(i), {"cpu": str(i % 2)},
                           "percent", now - 100 + i)
        for i in range(100)
    ] + [metrics.MetricData("arcade-memory", "memory.used", 5.0, {}, "bytes", now),
         metrics.MetricData("arcade-memory", "memory.bad", float("nan"), {}, "", now)]
    assert database.call(metrics.store_batch, "a1", batch, dropped=7) == 101
    with database.session(write=False) as session:
        latest = metrics.query(session, "a1", name="cpu.percent", limit=3)
        assert [m["value"] for m in latest] == [97.0, 98.0, 99.0]
        tail = metrics.query(session, "a1", name="cpu.*", since=now - 100 + 10, limit=2)
        assert [m["value"] for m in tail] == [10.0, 11.0]
        assert [m["name"] for m in metrics.query(session, "a1", plugin="arcade-memory")] == [
            "memory.used"]
        with pytest.raises(Invalid):
            metrics.query(session, "a1", limit=0)
        assert session.get(Agent, "a1").metrics_dropped == 7  # type: ignore[union-attr]
    deleted = database.call(metrics.purge, now - 50)
    assert deleted == 50
    with database.session(write=False) as session:
        assert session.scalar(select(func.count()).select_from(MetricRow)) == 51
