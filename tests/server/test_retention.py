"""Finished jobs' retention runs in the server's background retention sweep, beside metrics
and audit rows, with its settings validated (real ServerState and SQLite)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, select, update

from arcade_server.db import tables as t
from arcade_server.errors import SettingsError
from arcade_server.services import agents, jobs
from arcade_server.services.job_requests import JobRequest
from arcade_server.settings import Settings
from arcade_server.state import ServerState


def test_job_retention_settings_are_read_and_checked() -> None:
    loaded = Settings.from_mapping({"job_retention": "7d", "job_max_rows": "500"})
    assert (loaded.job_retention, loaded.job_max_rows) == (7 * 86400.0, 500)
    assert (Settings().job_retention, Settings().job_max_rows) == (30 * 86400.0, 100_000)
    with pytest.raises(SettingsError, match="job_max_rows"):
        Settings(job_max_rows=0)
    with pytest.raises(SettingsError, match="job_retention"):
        Settings(job_retention=0)


def test_offline_after_defaults_to_three_heartbeat_intervals() -> None:
    assert Settings().offline_after == 3 * Settings().heartbeat_interval
    assert Settings(heartbeat_interval=4).offline_after == 12
    assert Settings(heartbeat_interval=4, offline_after=9).offline_after == 9


async def test_the_retention_sweep_deletes_finished_jobs_beyond_the_limits(
    tmp_path: Path,
) -> None:
    state = ServerState(Settings(home=tmp_path / "home", job_max_rows=1))
    await state.start()
    try:
        db = state.db
        await db.run(agents.register, agents.AgentInfo(agent_id="a1", jobs_enabled=True))
        ids = [(await db.run(jobs.create_job, JobRequest(agent="a1", commands=["true"])))
               .job["id"] for _ in range(3)]

        now = time.time()

        def finish(conn: Connection) -> None:  # recent: only job_max_rows applies
            for n, job_id in enumerate(ids[:2]):
                conn.execute(update(t.jobs).where(t.jobs.c.id == job_id)
                             .values(status="failed", finished_at=now - 10 + n))

        await db.run(finish)
        assert await state.expire_metrics() == 1   # the older finished job; queued one stays

        def left(conn: Connection) -> set[str]:
            return set(conn.scalars(select(t.jobs.c.id)))

        assert await db.read(left) == {ids[1], ids[2]}
    finally:
        await state.close()
