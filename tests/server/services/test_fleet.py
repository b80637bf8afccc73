"""The fleet views' service functions against SQLite and a real PostgreSQL: the fleet
status in a fixed number of queries, deleting an agent (refused online, its rows gone and
its identity revoked in one transaction), finished jobs' retention, the latest metric
values chosen in SQL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

from arcade_server.db import tables as t
from arcade_server.db.engine import Database
from arcade_server.errors import Conflict, NotFound
from arcade_server.services import agents, assignments, fleet, jobs, metrics, publishing
from arcade_server.services.agents import Liveness
from arcade_server.services.job_requests import JobRequest
from arcade_server.services.status_reports import ReportedPlugin
from tests.server.helpers import plugin_wheel, unique

NOW = 10_000.0


def _liveness(online: frozenset[str] | set[str] = frozenset(),
              left: dict[str, float] | None = None) -> Liveness:
    """Agents ``online`` seen a second ago, the rest last seen long before (registration)."""
    return Liveness({a: NOW - 1 for a in online}, left or {}, offline_after=30.0, now=NOW)


def _register(db: Database, agent_id: str, labels: dict[str, str], *plugins: ReportedPlugin,
              seen: float = NOW - 1000) -> None:
    db.call(agents.register, agents.AgentInfo(agent_id=agent_id, labels=labels,
                                              plugins=list(plugins), jobs_enabled=True),
            now=seen)


def _fleet(database: Database, tmp_path: Path) -> str:
    """Agents w1, w2 (role=web), d1 (role=db); ``name`` assigned to w1 and w2; w1 reports
    it running, w2 has not reported; d1 runs another plugin and is offline."""
    name = unique()
    database.call(publishing.record_version,
                  publishing.inspect_upload([plugin_wheel(tmp_path, name, "1.0.0")]))
    _register(database, "w1", {"role": "web"}, ReportedPlugin(name, "1.0.0", "running"))
    _register(database, "w2", {"role": "web"})
    _register(database, "d1", {"role": "db"}, ReportedPlugin("other", "2.0.0", "failed",
                                                             error="boom"))
    database.call(assignments.assign_selector, {"role": "web"}, name)
    return name


def test_fleet_status_lists_agents_and_plugins_with_counts_and_stale_states(
    database: Database, tmp_path: Path
) -> None:
    name = _fleet(database, tmp_path)
    with database.transaction(write=False) as conn:
        body = fleet.fleet_status(conn, _liveness({"w1", "w2"}))
        assert [a["id"] for a in body["agents"]] == ["d1", "w1", "w2"]
        assert (body["online"], body["offline"]) == (2, 1)
        assert body["states"] == {"failed": 1, "pending": 1, "running": 1}
        assert body["stale"] == 1                       # d1 is offline: its report is stale
        by_id = {a["id"]: a for a in body["agents"]}
        d1 = by_id["d1"]["plugins"][0]
        assert d1["actual"]["state"] == "failed" and d1["actual"]["stale"] is True
        w1 = by_id["w1"]["plugins"][0]
        assert w1["name"] == name and w1["in_sync"] and w1["actual"]["stale"] is False
        assert by_id["w2"]["plugins"][0]["actual"] is None   # assigned, not reported yet

        web = fleet.fleet_status(conn, _liveness({"w1", "w2"}), {"role": "web"})
        assert [a["id"] for a in web["agents"]] == ["w1", "w2"]
        assert web["selector"] == {"role": "web"} and web["stale"] == 0
        assert fleet.fleet_status(conn, _liveness(), {"role": "none"})["agents"] == []
        # An agent whose stream closed after it was last seen is offline: its state is stale.
        gone = fleet.fleet_status(conn, _liveness({"w1"}, left={"w1": NOW - 0.5}))
        assert {a["id"]: a["online"] for a in gone["agents"]}["w1"] is False


def test_fleet_status_reads_any_number_of_agents_in_a_fixed_number_of_queries(
    database: Database, tmp_path: Path
) -> None:
    _fleet(database, tmp_path)

    def statements(extra: int) -> int:
        for i in range(extra):
            _register(database, f"x{extra}-{i}", {"role": "web"},
                      ReportedPlugin("p", "1.0.0", "running"))
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(str(args[2]))

        event.listen(database.engine, "before_cursor_execute", count)
        try:
            with database.transaction(write=False) as conn:
                fleet.fleet_status(conn, _liveness())
        finally:
            event.remove(database.engine, "before_cursor_execute", count)
        return len([s for s in seen if s.lstrip().upper().startswith("SELECT")])

    assert statements(1) == statements(60)


def test_deleting_an_agent_is_refused_online_and_removes_its_rows_and_identity(
    database: Database, tmp_path: Path
) -> None:
    name = _fleet(database, tmp_path)
    database.call(metrics.store_batch, "w1", [
        metrics.MetricData(name, "m", 1.0, {}, "", NOW)], dropped=0)
    job = database.call(jobs.create_job, JobRequest(agent="w1", commands=["true"]))
    with database.transaction() as conn:
        conn.execute(t.agent_identities.insert().values(
            agent_id="w1", serial="1", fingerprint="f", not_after=NOW + 1000, labels={},
            enrolled_at=NOW, enrollment_token_id="tok"))

    with pytest.raises(Conflict, match="--force"):
        database.call(fleet.delete_agent, "w1", _liveness({"w1"}))
    with database.transaction(write=False) as conn:   # refused: nothing changed
        assert conn.scalar(select(t.agent_identities.c.revoked_at)) is None
        assert conn.scalar(select(func.count()).select_from(t.jobs)) == 1

    done = database.call(fleet.delete_agent, "w1", _liveness({"w1"}), force=True, now=NOW)
    assert done["was_online"] and done["revoked"] and done["deleted"]
    assert done["rows"] == {"metrics": 1, "jobs": 1, "plugins": 1, "assignments": 1}
    with database.transaction(write=False) as conn:
        for table in (t.agents, t.agent_labels, t.plugin_states, t.assignments, t.metrics,
                      t.jobs, t.job_plugins):
            column = table.c.id if table is t.agents else (
                table.c.job_id if table is t.job_plugins else table.c.agent_id)
            value = job.job["id"] if table is t.job_plugins else "w1"
            assert conn.scalar(select(func.count()).select_from(table)
                               .where(column == value)) == 0, table.name
        assert conn.scalar(select(t.agent_identities.c.revoked_at)) == NOW
        assert [a.id for a in conn.execute(select(t.agents.c.id))] == ["d1", "w2"]
    offline = database.call(fleet.delete_agent, "d1", _liveness({"w2"}))  # offline: no force
    assert offline["revoked"] is False and offline["rows"]["plugins"] == 1
    with pytest.raises(NotFound):
        database.call(fleet.delete_agent, "w1", _liveness())


def test_finished_jobs_are_purged_by_age_and_count_and_open_ones_never(
    database: Database,
) -> None:
    _register(database, "j1", {})
    ids = [database.call(jobs.create_job, JobRequest(agent="j1", commands=["true"])).job["id"]
           for _ in range(6)]
    finished = {ids[0]: 100.0, ids[1]: 200.0, ids[2]: 300.0, ids[3]: 400.0}
    with database.transaction() as conn:
        for job_id, at in finished.items():
            conn.execute(update(t.jobs).where(t.jobs.c.id == job_id)
                         .values(status="succeeded", finished_at=at))
        conn.execute(update(t.jobs).where(t.jobs.c.id == ids[4]).values(status="running"))
    # Older than 150: ids[0]; beyond the newest 2 finished: ids[1].
    assert database.call(jobs.purge, before=150.0, keep_rows=2) == 2
    with database.transaction(write=False) as conn:
        left = set(conn.scalars(select(t.jobs.c.id)))
    assert left == {ids[2], ids[3], ids[4], ids[5]}     # running and queued stay
    assert database.call(jobs.purge, before=0.0, keep_rows=2) == 0
    assert database.call(jobs.purge, before=NOW * 1000, keep_rows=100) == 2


def test_latest_metric_values_are_one_per_series_chosen_in_sql(database: Database) -> None:
    _register(database, "m1", {})
    now = time.time()
    batch = [metrics.MetricData("cpu", "cpu.percent", float(i), {"cpu": str(i % 2)},
                                "percent", now - 100 + i) for i in range(50)]
    batch += [metrics.MetricData("mem", "memory.used", float(i), {}, "bytes", now - 10 + i)
              for i in range(3)]
    database.call(metrics.store_batch, "m1", batch, dropped=0)
    with database.transaction(write=False) as conn:
        latest = metrics.query(conn, "m1", latest=True)
        assert [(m["name"], m["labels"], m["value"]) for m in latest] == [
            ("cpu.percent", {"cpu": "0"}, 48.0), ("cpu.percent", {"cpu": "1"}, 49.0),
            ("memory.used", {}, 2.0)]
        assert [m["value"] for m in metrics.query(conn, "m1", latest=True, name="memory.*")
                ] == [2.0]
        old = metrics.query(conn, "m1", latest=True, since=now - 200, name="cpu.percent",
                            limit=1)
        assert len(old) == 1
        assert metrics.query(conn, "m1", latest=True, since=now + 10) == []
