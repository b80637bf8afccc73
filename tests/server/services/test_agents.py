"""Agent and metric service functions against SQLite and a real PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from arcade_server.db import tables as t
from arcade_server.db.engine import Database
from arcade_server.errors import Invalid, NotFound
from arcade_server.services import agents, metrics, status_reports
from arcade_server.services.status_reports import ReportedPlugin, status_update
from tests.server.helpers import db_row

RUNNING = ReportedPlugin("arcade-cpu", "1.0.0", "running", sha256="a" * 64)


def test_register_upserts_the_agent_labels_and_what_it_runs(database: Database) -> None:
    info = agents.AgentInfo(agent_id="a1", hostname="h1", labels={"role": "web"},
                            plugins=[RUNNING], applied_revision=4)
    database.call(agents.register, info)
    database.call(agents.register, agents.AgentInfo(agent_id="a1", hostname="h2",
                                                    labels={"dc": "x"}))
    with database.transaction(write=False) as conn:
        agent = db_row(conn, t.agents, "a1")
        assert agent is not None
        assert (agent.hostname, agent.labels, agent.applied_revision) == ("h2", {"dc": "x"}, 0)
        assert conn.scalars(select(t.agent_labels.c.key)).all() == ["dc"]
        # The second registration reported no plugins: the old actual state is gone.
        assert conn.scalar(select(func.count()).select_from(t.plugin_states)) == 0


@pytest.mark.parametrize("bad", ["", "has space", "../up", "x" * 201])
def test_register_refuses_bad_agent_ids(database: Database, bad: str) -> None:
    with pytest.raises(Invalid, match="invalid agent id"):
        database.call(agents.register, agents.AgentInfo(agent_id=bad))


def test_status_reports_upsert_and_removed_deletes(database: Database) -> None:
    database.call(agents.register, agents.AgentInfo(agent_id="a1"))
    database.call(status_reports.report_status, "a1", 3, [RUNNING], complete=True)
    failed = ReportedPlugin("arcade-cpu", "1.1.0", "failed", error="x" * 10_000)
    database.call(status_reports.report_status, "a1", 4, [failed])
    with database.transaction(write=False) as conn:
        state = db_row(conn, t.plugin_states, "a1", "arcade-cpu")
        assert state is not None
        assert (state.version, state.state, state.revision) == ("1.1.0", "failed", 4)
        assert len(state.error) == 8000
        assert db_row(conn, t.agents, "a1").applied_revision == 3
    database.call(status_reports.report_status, "a1", 5,
                  [ReportedPlugin("arcade-cpu", "1.1.0", "removed")], complete=True)
    with database.transaction(write=False) as conn:
        assert db_row(conn, t.plugin_states, "a1", "arcade-cpu") is None
    with pytest.raises(Invalid, match="unknown state"):
        database.call(status_reports.report_status, "a1", 6,
                      [ReportedPlugin("arcade-cpu", "1", "exploded")])


def test_presence_flush_and_online_offline(database: Database) -> None:
    database.call(agents.register, agents.AgentInfo(agent_id="a1"), now=1000.0)
    database.call(agents.register, agents.AgentInfo(agent_id="a2"), now=1000.0)
    database.call(agents.flush_presence, {"a1": (1100.0, 2)})
    with database.transaction(write=False) as conn:
        listed = agents.list_agents(conn, last_seen={"a2": 1095.0}, offline_after=30,
                                    now=1110.0)
        assert {a["id"]: a["status"] for a in listed} == {"a1": "online", "a2": "online"}
        listed = agents.list_agents(conn, last_seen={}, offline_after=30, now=1110.0)
        assert {a["id"]: a["status"] for a in listed} == {"a1": "online", "a2": "offline"}
        assert agents.list_agents(conn, last_seen={}, offline_after=30, now=1110.0,
                                  status="offline")[0]["id"] == "a2"
        with pytest.raises(NotFound):
            agents.get_agent(conn, "ghost", last_seen=None, offline_after=30)


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
    with database.transaction(write=False) as conn:
        latest = metrics.query(conn, "a1", name="cpu.percent", limit=3)
        assert [m["value"] for m in latest] == [97.0, 98.0, 99.0]
        tail = metrics.query(conn, "a1", name="cpu.*", since=now - 100 + 10, limit=2)
        assert [m["value"] for m in tail] == [10.0, 11.0]
        assert [m["name"] for m in metrics.query(conn, "a1", plugin="arcade-memory")] == [
            "memory.used"]
        with pytest.raises(Invalid):
            metrics.query(conn, "a1", limit=0)
        assert db_row(conn, t.agents, "a1").metrics_dropped == 7
    deleted = database.call(metrics.purge, now - 50)
    assert deleted == 50
    with database.transaction(write=False) as conn:
        assert conn.scalar(select(func.count()).select_from(t.metrics)) == 51


# ---------------------------------------------------------------- batched forms (fleet scale)


def test_register_many_writes_a_burst_of_registrations_in_one_transaction(
    database: Database,
) -> None:
    database.call(agents.register, agents.AgentInfo(agent_id="old", hostname="before",
                                                    labels={"role": "db"}), now=500.0)
    infos = [
        agents.AgentInfo(agent_id=f"a{i}", hostname=f"h{i}", labels={"shard": str(i % 2)},
                         plugins=[RUNNING], applied_revision=i)
        for i in range(40)
    ] + [
        agents.AgentInfo(agent_id="old", hostname="after", labels={"role": "web"}),
        agents.AgentInfo(agent_id="a0", hostname="h0-again"),  # a later one of the same id wins
    ]
    assert database.call(agents.register_many, infos, now=1000.0) == [None] * len(infos)
    with database.transaction(write=False) as conn:
        old = db_row(conn, t.agents, "old")
        assert old is not None
        assert (old.hostname, old.labels, old.registered_at, old.last_seen) == (
            "after", {"role": "web"}, 500.0, 1000.0)
        a0, a7 = db_row(conn, t.agents, "a0"), db_row(conn, t.agents, "a7")
        assert a0 is not None and a7 is not None
        assert (a0.hostname, a0.labels) == ("h0-again", {})
        assert (a7.hostname, a7.labels, a7.applied_revision, a7.desired_revision) == (
            "h7", {"shard": "1"}, 7, 0)
        states = conn.scalars(select(t.plugin_states.c.agent_id)).all()
        assert len(states) == 39 and "a0" not in states          # a0 re-registered with none
        labels = conn.execute(select(t.agent_labels.c.agent_id, t.agent_labels.c.key)).all()
        assert ("old", "role") in labels and ("a0", "shard") not in labels


def test_register_many_refuses_the_whole_batch_for_one_bad_id(database: Database) -> None:
    with pytest.raises(Invalid, match="invalid agent id"):
        database.call(agents.register_many, [agents.AgentInfo(agent_id="ok"),
                                             agents.AgentInfo(agent_id="bad id")])
    with database.transaction(write=False) as conn:
        assert db_row(conn, t.agents, "ok") is None                   # nothing half-written
    with pytest.raises(Invalid, match="unknown state"):
        agents.validate_registration(agents.AgentInfo(
            agent_id="x", plugins=[ReportedPlugin("p", "1", "exploded")]))


def test_report_statuses_applies_many_agents_reports_in_order(database: Database) -> None:
    database.call(agents.register_many, [agents.AgentInfo(agent_id=a) for a in ("a1", "a2")],
                  now=100.0)
    cpu = "arcade-cpu"
    updates = [
        status_update("a1", 5, [ReportedPlugin(cpu, "2", "downloading")],
                             now=200.0),
        status_update("a2", 5, [ReportedPlugin(cpu, "2", "running")],
                             complete=True, now=201.0),
        status_update("a1", 5, [ReportedPlugin(cpu, "2", "installing")],
                             now=202.0),
        status_update("a1", 5, [ReportedPlugin(cpu, "2", "running")],
                             complete=True, now=203.0),
        status_update("a1", 6, [ReportedPlugin(cpu, "2", "running")],
                             now=204.0),                  # incomplete: revision 5 stays applied
        status_update("a2", 7, [ReportedPlugin(cpu, "2", "removed")],
                             complete=True, now=205.0),
    ]
    database.call(status_reports.report_statuses, updates)
    with database.transaction(write=False) as conn:
        a1_state = db_row(conn, t.plugin_states, "a1", cpu)
        assert a1_state is not None and (a1_state.state, a1_state.revision) == ("running", 6)
        assert db_row(conn, t.plugin_states, "a2", cpu) is None      # its last report: removed
        a1, a2 = db_row(conn, t.agents, "a1"), db_row(conn, t.agents, "a2")
        assert a1 is not None and a2 is not None
        assert (a1.applied_revision, a1.last_seen) == (5, 204.0)
        assert (a2.applied_revision, a2.last_seen) == (7, 205.0)
    with pytest.raises(Invalid, match="unknown state"):
        status_update("a1", 8, [ReportedPlugin(cpu, "2", "exploded")])


def test_store_batches_writes_every_agents_rows_and_sums_drops(database: Database) -> None:
    database.call(agents.register_many, [agents.AgentInfo(agent_id=a) for a in ("a1", "a2")])
    now = time.time()
    batches = [
        metrics.MetricBatch("a1", [metrics.MetricData("cpu", "cpu.percent", 1.0),
                                   metrics.MetricData("cpu", "cpu.bad", float("inf"))],
                            dropped=2, now=now),
        metrics.MetricBatch("a2", [metrics.MetricData("cpu", "cpu.percent", 2.0,
                                                      {"core": "0"}, "%", now - 5)], now=now),
        metrics.MetricBatch("a1", [], dropped=3, now=now),
    ]
    assert database.call(metrics.store_batches, batches) == [1, 1, 0]
    with database.transaction(write=False) as conn:
        assert db_row(conn, t.agents, "a1").metrics_dropped == 5
        a2 = metrics.query(conn, "a2")
        assert [(m["value"], m["labels"], m["timestamp"]) for m in a2] == [
            (2.0, {"core": "0"}, now - 5)]
        assert metrics.query(conn, "a1")[0]["timestamp"] == now   # 0 → when it arrived
