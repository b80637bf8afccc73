"""Job service functions against SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from arcade_server.db.engine import Database
from arcade_server.errors import Conflict, Invalid, NotFound
from arcade_server.rpc.convert import job_to_pb
from arcade_server.services import agents, desired, job_runs, jobs, publishing, registry
from arcade_server.services.job_requests import JobRequest, PluginEntryRequest
from arcade_server.services.job_runs import JobEventData, RecordData
from tests.server.helpers import dependency_wheel, plugin_wheel, unique


def _publish(db: Database, *paths: Path) -> None:
    db.call(publishing.record_version, publishing.inspect_upload(list(paths)))


def _register(db: Database, agent_id: str) -> None:
    db.call(agents.register, agents.AgentInfo(agent_id=agent_id, jobs_enabled=True))


def _create(db: Database, agent: str = "a1", **kwargs: Any) -> jobs.CreateResult:
    request = JobRequest(agent=agent, **{"commands": ["true"], **kwargs})
    return db.call(jobs.create_job, request)


@pytest.fixture
def plugin(database: Database, tmp_path: Path) -> tuple[str, str]:
    """A published plugin (with one dependency) and a registered agent ``a1``."""
    name, dep = unique(), unique("dep")
    _publish(database, plugin_wheel(tmp_path, name, "1.0.0", requires=[dep]),
             dependency_wheel(tmp_path, dep))
    _register(database, "a1")
    return name, dep


def test_create_validates_and_queues_with_one_pending_record_per_entry(
    database: Database, plugin: tuple[str, str]
) -> None:
    name, dep = plugin
    result = _create(database, commands=["make", "make test"], env={"CI": "1"}, timeout=30,
                     plugins=[PluginEntryRequest(f"{name}@1.0.0", "before", order=2),
                              PluginEntryRequest(name, "notify", config={"threshold": 3},
                                                 isolation="process")])
    job = result.job
    assert job["status"] == "queued" and job["agent"] == "a1"
    # env values are write-only: the API shows the names, the agent gets the values
    assert job["commands"] == ["make", "make test"] and job["env"] == {"CI": "<set>"}
    assert job["timeout"] == 30 and job["exit_code"] is None
    assert [(p["index"], p["stage"], p["order"], p["status"], p["isolation"], p["config"])
            for p in job["plugins"]] == [
        (0, "before", 2, "pending", "inline", {"threshold": 10, "label": "x"}),
        (1, "notify", 0, "pending", "process", {"threshold": 3, "label": "x"}),
    ]
    dispatch = result.dispatch
    assert dispatch.job_id == job["id"] and dispatch.timeout == 30
    assert dict(dispatch.env) == {"CI": "1"}
    first = dispatch.plugins[0]
    assert [w[0].split("-")[0] for w in first.wheels] == [name.replace("-", "_"),
                                                         dep.replace("-", "_")]
    message = job_to_pb(dispatch)
    assert json.loads(message.job.plugins[1].config_json) == {"threshold": 3, "label": "x"}
    assert database.call(jobs.get_job, job["id"]) == job


def test_timeout_defaults_to_the_servers_setting(database: Database,
                                                  plugin: tuple[str, str]) -> None:
    job = database.call(jobs.create_job, JobRequest("a1", ["true"]), default_timeout=42.0)
    assert job.job["timeout"] == 42.0


@pytest.mark.parametrize(("changes", "message"), [
    ({"commands": []}, "commands is empty"),
    ({"commands": ["  "]}, "commands[0] is empty"),
    ({"env": {"1BAD": "x"}}, "is not a variable name"),
    ({"timeout": 0}, "timeout must be a number of seconds above 0"),
    ({"timeout": 10**9}, "timeout must be a number of seconds above 0"),
    ({"plugins": [("{name}", "during", {})]}, "stage 'during' is not one of"),
    ({"plugins": [("nope-nothing", "before", {})]},
     "plugins[0] ('nope-nothing'): no plugin named 'nope-nothing' is published"),
    ({"plugins": [("{name}@9.9", "before", {})]}, "no published version of"),
    ({"plugins": [("{name}", "after", {"config": {"threshold": "x"}})]}, "invalid config for"),
    ({"plugins": [("{name}", "after", {"isolation": "docker"})]},
     "isolation 'docker' is not supported"),
])
def test_create_refuses_bad_input_saying_what_to_fix(
    database: Database, plugin: tuple[str, str], changes: dict[str, Any], message: str
) -> None:
    name, _ = plugin
    if "plugins" in changes:
        changes = {**changes, "plugins": [
            PluginEntryRequest(spec.format(name=name), stage, **extra)
            for spec, stage, extra in changes["plugins"]
        ]}
    with pytest.raises(Invalid) as caught:
        _create(database, **changes)
    assert message in caught.value.message
    assert database.call(jobs.list_jobs) == []


def test_create_for_an_unknown_agent_is_not_found_and_disabled_plugins_are_refused(
    database: Database, plugin: tuple[str, str]
) -> None:
    name, _ = plugin
    with pytest.raises(NotFound, match="no agent with id 'ghost'"):
        _create(database, agent="ghost")
    database.call(registry.set_enabled, name, False)
    with pytest.raises(Invalid, match="is disabled"):
        _create(database, plugins=[PluginEntryRequest(name, "before")])


def _event(job_id: str, status: str, *records: RecordData, **kwargs: Any) -> JobEventData:
    return JobEventData(job_id=job_id, status=status, plugins=records, **kwargs)


def test_events_update_status_records_and_output_and_a_final_status_is_kept(
    database: Database, plugin: tuple[str, str]
) -> None:
    name, _ = plugin
    job_id = _create(database, plugins=[PluginEntryRequest(name, "before"),
                                        PluginEntryRequest(name, "on_failure")]).job["id"]
    applied = database.call(job_runs.record_event, "a1", _event(
        job_id, "running", RecordData(0, "succeeded", '{"workdir": "/w"}', started_at=10.0,
                                      completed_at=11.0),
        started_at=10.0, output_tail="$ true\n", output_size=7))
    assert applied == job_runs.EventOutcome(applied=True)
    job = database.call(jobs.get_job, job_id)
    assert (job["status"], job["started_at"], job["output_tail"]) == ("running", 10.0, "$ true\n")
    assert job["plugins"][0]["result"] == {"workdir": "/w"}
    assert job["plugins"][1]["status"] == "pending"

    database.call(job_runs.record_event, "a1", _event(
        job_id, "succeeded", RecordData(0, "succeeded", '{"workdir": "/w"}'),
        exit_code=0, started_at=10.0, finished_at=12.5, output_tail="x" * 100_000,
        output_size=100_000))
    job = database.call(jobs.get_job, job_id)
    assert (job["status"], job["exit_code"], job["duration"]) == ("succeeded", 0, 2.5)
    assert len(job["output_tail"]) == job_runs.OUTPUT_LIMIT and job["output_size"] == 100_000
    assert job["plugins"][1]["status"] == "skipped"  # never reached: closed with the job

    late = database.call(job_runs.record_event, "a1", _event(job_id, "failed", exit_code=3))
    assert late == job_runs.EventOutcome(applied=False, cancel=False)
    still_running = database.call(job_runs.record_event, "a1", _event(job_id, "running"))
    assert still_running.cancel  # the agent runs a job that is over here: tell it to stop
    assert database.call(jobs.get_job, job_id)["status"] == "succeeded"


def test_events_from_another_agent_or_with_unknown_status_are_refused(
    database: Database, plugin: tuple[str, str]
) -> None:
    job_id = _create(database).job["id"]
    _register(database, "a2")
    with pytest.raises(Invalid, match="belongs to agent a1"):
        database.call(job_runs.record_event, "a2", _event(job_id, "running"))
    with pytest.raises(Invalid, match="unknown status 'exploded'"):
        database.call(job_runs.record_event, "a1", _event(job_id, "exploded"))
    with pytest.raises(NotFound):
        database.call(job_runs.record_event, "a1", _event("nope", "running"))


def test_cancel_queued_at_once_running_via_agent_and_finished_is_a_conflict(
    database: Database, plugin: tuple[str, str]
) -> None:
    name, _ = plugin
    queued = _create(database, plugins=[PluginEntryRequest(name, "after")]).job["id"]
    result = database.call(jobs.cancel_job, queued)
    assert result.job["status"] == "cancelled" and not result.notify_agent
    assert result.job["plugins"][0]["status"] == "skipped"
    assert result.job["error"] == "cancelled before it started"

    running = _create(database).job["id"]
    database.call(job_runs.record_event, "a1", _event(running, "running", started_at=1.0))
    result = database.call(jobs.cancel_job, running)
    assert result.job["status"] == "running" and result.notify_agent
    assert result.job["cancel_requested_at"] is not None

    with pytest.raises(Conflict, match="already ended cancelled"):
        database.call(jobs.cancel_job, queued)
    with pytest.raises(NotFound):
        database.call(jobs.cancel_job, "missing")


def test_reconnect_fails_forgotten_running_jobs_resends_queued_and_cancels_stale(
    database: Database, plugin: tuple[str, str]
) -> None:
    forgotten = _create(database).job["id"]
    kept = _create(database).job["id"]
    stopping = _create(database).job["id"]
    for job_id in (forgotten, kept, stopping):
        database.call(job_runs.record_event, "a1", _event(job_id, "running", started_at=1.0))
    database.call(jobs.cancel_job, stopping)
    ended = _create(database).job["id"]
    database.call(jobs.cancel_job, ended)
    queued = _create(database).job["id"]

    result = database.call(job_runs.agent_connected, "a1", [kept, stopping, ended], now=100.0)
    assert result.failed == (forgotten,)
    assert [d.job_id for d in result.dispatches] == [queued]
    assert sorted(result.cancels) == sorted([stopping, ended])
    failed = database.call(jobs.get_job, forgotten)
    assert failed["status"] == "failed" and "connected again without this job" in failed["error"]
    assert database.call(jobs.get_job, kept)["status"] == "running"
    assert database.call(jobs.get_job, queued)["dispatched_at"] == 100.0


def test_sweep_fails_jobs_of_gone_agents_and_overdue_jobs(
    database: Database, plugin: tuple[str, str]
) -> None:
    now = time.time()
    database.call(agents.register, agents.AgentInfo(agent_id="gone", jobs_enabled=True),
                  now=now - 120)
    _register(database, "here")
    _register(database, "slow")
    gone = _create(database, agent="gone").job["id"]
    here = _create(database, agent="here", timeout=100).job["id"]
    slow = _create(database, agent="slow", timeout=10).job["id"]
    assert database.call(job_runs.sweep_needed) == (True, False)  # queued, never sent
    for job_id, agent_id in ((gone, "gone"), (here, "here"), (slow, "slow")):
        database.call(job_runs.record_event, agent_id, _event(job_id, "running",
                                                          started_at=now - 20))
    database.call(jobs.cancel_job, here)
    result = database.call(
        job_runs.fail_lost_jobs, last_seen={"slow": now - 1}, connected=["here"],
        lost_after=60, grace=5, now=now,
    )
    assert sorted(result.failed) == sorted([(gone, "gone", False), (slow, "slow", True)])
    assert result.cancels == ((here, "here"),)
    assert "has not been seen for 120s" in database.call(jobs.get_job, gone)["error"]
    assert "within its timeout (10s) plus 5s" in database.call(jobs.get_job, slow)["error"]
    assert database.call(jobs.get_job, here)["status"] == "running"
    assert database.call(job_runs.sweep_needed) == (False, True)


def test_job_wheels_may_be_downloaded_only_while_the_job_is_open(
    database: Database, plugin: tuple[str, str]
) -> None:
    name, _ = plugin
    created = _create(database, plugins=[PluginEntryRequest(name, "before")])
    sha = created.dispatch.plugins[0].wheels[1][1]  # the dependency wheel
    with database.transaction(write=False) as conn:
        assert desired.may_download(conn, "a1", sha)
    database.call(jobs.cancel_job, created.job["id"])
    with database.transaction(write=False) as conn:
        assert not desired.may_download(conn, "a1", sha)


def test_list_filters_by_agent_and_status_newest_first(
    database: Database, plugin: tuple[str, str]
) -> None:
    _register(database, "a2")
    first = _create(database).job["id"]
    second = _create(database, agent="a2").job["id"]
    third = _create(database).job["id"]
    database.call(jobs.cancel_job, third)
    assert [j["id"] for j in database.call(jobs.list_jobs, agent="a1")] == [third, first]
    assert [j["id"] for j in database.call(jobs.list_jobs, status="queued")] == [second, first]
    assert "output_tail" not in database.call(jobs.list_jobs)[0]
    with pytest.raises(Invalid, match="status 'done' is not one of"):
        database.call(jobs.list_jobs, status="done")


def test_a_queued_job_whose_plugin_version_was_deleted_fails_instead_of_being_sent(
    database: Database, tmp_path: Path
) -> None:
    name = unique()
    _publish(database, plugin_wheel(tmp_path, name, "1.0.0"))
    _register(database, "a1")
    job_id = _create(database, plugins=[PluginEntryRequest(name, "after")]).job["id"]
    database.call(registry.delete_version, name, "1.0.0")
    result = database.call(job_runs.agent_connected, "a1", [])
    assert result.dispatches == ()
    job = database.call(jobs.get_job, job_id)
    assert job["status"] == "failed" and "was deleted from the registry" in job["error"]


def test_one_query_tells_which_connecting_agents_have_open_jobs(database: Database) -> None:
    for agent_id in ("a1", "a2", "a3"):
        _register(database, agent_id)
    _create(database, "a1")                                   # queued: open
    finished = _create(database, "a3").job["id"]
    database.call(job_runs.record_event, "a3", JobEventData(job_id=finished, status="running"))
    database.call(job_runs.record_event, "a3", JobEventData(job_id=finished, status="succeeded"))
    with database.transaction(write=False) as conn:
        assert job_runs.with_open_jobs(conn, ["a1", "a2", "a3", "ghost", "a1"]) == [
            True, False, False, False, True]
        assert job_runs.with_open_jobs(conn, []) == []
