"""Per-assignment interval and resource limits, and the exec isolation rules, in the services
(against SQLite and a real PostgreSQL): what is stored, kept, reset and sent to the agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from arcade_core.states import Isolation
from arcade_server.db import tables as t
from arcade_server.db.engine import Database
from arcade_server.errors import Invalid
from arcade_server.rpc.convert import desired_to_pb
from arcade_server.services import agents, assignments, desired, jobs, publishing
from arcade_server.services._overrides import check_interval, check_resources, parse_quantity
from arcade_server.services.job_requests import JobRequest, PluginEntryRequest
from tests.server.helpers import SCHEMA_MANIFEST, plugin_wheel, unique

#: An exec plugin's manifest: the executable its wheel installs into the env's bin/.
EXEC_MANIFEST = {"description": "an exec plugin", "exec": "loadavg", "interval": 30,
                 "resources": {"memory": "64Mi", "cpu": "50m"}}


def exec_wheel(directory: Path, name: str, version: str = "1.0.0") -> Path:
    """A real exec plugin wheel: a package holding only the manifest, and a shell script in
    ``<dist>.data/scripts/``."""
    module = name.replace("-", "_")
    script = '#!/bin/sh\necho \'{"type": "hello", "protocol": 1, "hooks": []}\'\n'
    return plugin_wheel(directory, name, version, manifest=EXEC_MANIFEST, files={
        f"{module}/__init__.py": "",
        f"{module}-{version}.data/scripts/loadavg": script,
    }, entry_points=[f"{name} = {module}"])


def _publish(db: Database, *paths: Path) -> None:
    db.call(publishing.record_version, publishing.inspect_upload(list(paths)))


def _register(db: Database, agent_id: str, **labels: str) -> None:
    db.call(agents.register, agents.AgentInfo(agent_id=agent_id, labels=labels,
                                              jobs_enabled=True))


def _row(db: Database, agent_id: str, name: str) -> Any:
    a = t.assignments.c
    with db.transaction(write=False) as conn:
        return conn.execute(select(t.assignments).where(
            a.agent_id == agent_id, a.plugin_name == name)).one()


@pytest.mark.parametrize(("text", "kind", "amount"), [
    ("128Mi", "memory", 128 * 2**20), ("1G", "memory", 10**9), ("512000", "disk", 512000),
    (" 1.5Ki ", "disk", 1536), ("100m", "cpu", 100), ("0.5", "cpu", 500), ("2", "cpu", 2000),
])
def test_a_quantity_is_bytes_or_millicores(text: str, kind: str, amount: int) -> None:
    assert parse_quantity(text, kind) == amount


@pytest.mark.parametrize(("text", "kind", "message"), [
    ("0", "memory", "above zero"), ("-1Mi", "memory", "not a quantity"),
    ("12 MB", "memory", "not a quantity"), ("1Xi", "memory", "unknown suffix"),
    ("0.5", "memory", "whole number of bytes"), ("100Mi", "cpu", "only suffix is 'm'"),
    ("0.1m", "cpu", "whole number of millicores"), ("1e3", "cpu", "not a quantity"),
    ("1" * 50, "disk", "such as '1Gi'"), ("1", "gpu", "unknown resource"),
])
def test_a_bad_quantity_says_what_to_write(text: str, kind: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_quantity(text, kind)


@pytest.mark.parametrize(("value", "message"), [
    (True, "number of seconds"), ("5", "number of seconds"), (float("nan"), "number of seconds"),
    (float("inf"), "number of seconds"), (0, "from 0.1 s to 86400 s"),
    (0.05, "from 0.1 s"), (86_401, r"86400 s \(a day\)"), (None, "number of seconds"),
])
def test_an_interval_is_a_finite_number_of_seconds_within_bounds(value: Any, message: str
                                                                 ) -> None:
    with pytest.raises(Invalid, match=message):
        check_interval(value)
    assert check_interval(5) == 5.0 and check_interval(0.1) == 0.1


@pytest.mark.parametrize(("value", "message"), [
    ([], "JSON object"), ({"gpu": "1"}, "unknown resource 'gpu'"),
    ({"memory": 128}, "resources.memory must be a string"),
    ({"cpu": "lots"}, "resources.cpu: cpu 'lots' is not a quantity"),
])
def test_bad_resources_name_the_key_to_fix(value: Any, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        check_resources(value)
    assert check_resources({"memory": " 1Gi"}) == {"memory": "1Gi"}


def test_interval_and_limits_are_stored_sent_and_kept_across_an_upgrade(
    database: Database, tmp_path: Path
) -> None:
    name = unique()
    _publish(database, plugin_wheel(tmp_path / "1", name, "1.0.0"))
    _publish(database, plugin_wheel(tmp_path / "2", name, "2.0.0", manifest={
        **SCHEMA_MANIFEST, "interval": 7, "resources": {"memory": "1Gi", "disk": "2Gi"}}))
    _register(database, "a1")
    first = database.call(assignments.assign, "a1", f"{name}@1.0.0", interval=2.5,
                          resources={"memory": "128Mi", "cpu": "100m"})
    assert (first.body["interval"], first.body["resources"]) == (
        2.5, {"memory": "128Mi", "cpu": "100m"})
    assert first.body["desired"]["effective_interval"] == 2.5
    [plugin] = database.call(desired.desired_state, "a1").plugins
    assert (plugin.interval, dict(plugin.resources)) == (2.5, {"cpu": "100m",
                                                                "memory": "128Mi"})
    # An upgrade keeps both; the new manifest's limits fill in the kinds not overridden.
    upgraded = database.call(assignments.assign, "a1", f"{name}@2.0.0")
    assert (upgraded.body["interval"], upgraded.body["resources"]) == (
        2.5, {"memory": "128Mi", "cpu": "100m"})
    assert upgraded.body["desired"]["effective_resources"] == {
        "cpu": "100m", "disk": "2Gi", "memory": "128Mi"}
    sent = desired_to_pb(database.call(desired.desired_state, "a1")).desired.plugins[0]
    assert (sent.interval, dict(sent.resources)) == (
        2.5, {"cpu": "100m", "disk": "2Gi", "memory": "128Mi"})
    # reset_config resets the interval (to the manifest's), not the operator's limits.
    reset = database.call(assignments.assign, "a1", f"{name}@2.0.0", reset_config=True)
    assert (reset.body["interval"], reset.body["desired"]["effective_interval"]) == (None, 7.0)
    assert _row(database, "a1", name).resources == {"memory": "128Mi", "cpu": "100m"}
    # {} drops the override: the manifest's limits are sent.
    database.call(assignments.assign, "a1", name, resources={})
    assert _row(database, "a1", name).resources is None
    [plugin] = database.call(desired.desired_state, "a1").plugins
    assert (plugin.interval, dict(plugin.resources)) == (7.0, {"disk": "2Gi", "memory": "1Gi"})


def test_no_interval_anywhere_sends_zero_the_agents_default(database: Database,
                                                            tmp_path: Path) -> None:
    name = unique()
    _publish(database, plugin_wheel(tmp_path, name, manifest={"description": "no interval"}))
    _register(database, "a1")
    database.call(assignments.assign, "a1", name)
    [plugin] = database.call(desired.desired_state, "a1").plugins
    assert (plugin.interval, dict(plugin.resources)) == (0.0, {})


def test_a_selector_install_keeps_each_agents_own_interval_unless_given(
    database: Database, tmp_path: Path
) -> None:
    name = unique()
    _publish(database, plugin_wheel(tmp_path, name))
    _register(database, "w1", role="web")
    _register(database, "w2", role="web")
    database.call(assignments.assign, "w1", name, interval=3)
    kept = database.call(assignments.assign_selector, {"role": "web"}, name)
    assert (_row(database, "w1", name).interval, _row(database, "w2", name).interval) == (
        3.0, None)
    assert kept.body["interval"] == 3.0  # the first matched agent's
    database.call(assignments.assign_selector, {"role": "web"}, name, interval=9,
                  resources={"cpu": "1"})
    assert {_row(database, a, name).interval for a in ("w1", "w2")} == {9.0}
    assert {str(_row(database, a, name).resources) for a in ("w1", "w2")} == {"{'cpu': '1'}"}


def test_update_changes_only_what_is_given_and_checks_before_writing(
    database: Database, tmp_path: Path
) -> None:
    name = unique()
    _publish(database, plugin_wheel(tmp_path, name))
    _register(database, "a1")
    database.call(assignments.assign, "a1", name, config={"threshold": 4},
                  resources={"memory": "1Gi"})
    result = database.call(assignments.update_assignment, "a1", name, interval=12)
    assert (result.body["config"], result.body["interval"], result.body["resources"]) == (
        {"threshold": 4, "label": "x"}, 12.0, {"memory": "1Gi"})
    assert result.revisions == {"a1": 2}
    for bad in ({"interval": 0}, {"resources": {"memory": "lots"}},
                {"config": {"threshold": -1}, "interval": 3}):
        with pytest.raises(Invalid):
            database.call(assignments.update_assignment, "a1", name, **bad)
    row = _row(database, "a1", name)
    assert (row.interval, row.revision, row.config["threshold"]) == (12.0, 2, 4)
    back = database.call(assignments.update_assignment, "a1", name, interval=None,
                         resources=None)
    assert (back.body["interval"], back.body["resources"]) == (None, {})
    assert back.body["desired"]["effective_interval"] == 5.0
    # A config change alone keeps the interval and the limits.
    database.call(assignments.update_assignment, "a1", name, interval=1, resources={"cpu": "1"})
    database.call(assignments.set_config, "a1", name, {"label": "y"})
    row = _row(database, "a1", name)
    assert (row.interval, row.resources, row.config["label"]) == (1.0, {"cpu": "1"}, "y")


def test_exec_plugins_run_only_as_exec_and_python_plugins_never(
    database: Database, tmp_path: Path
) -> None:
    tool, py = unique("exec"), unique()
    _publish(database, exec_wheel(tmp_path / "e", tool))
    _publish(database, plugin_wheel(tmp_path / "p", py))
    _register(database, "a1")
    for isolation in ("inline", "process"):
        with pytest.raises(Invalid, match=r"is an exec plugin .*'loadavg'.* give \"exec\""):
            database.call(assignments.assign, "a1", tool, isolation=isolation)
    with pytest.raises(Invalid, match=r"is a Python plugin .* inline or process"):
        database.call(assignments.assign, "a1", py, isolation="exec")
    with database.transaction(write=False) as conn:
        assert conn.execute(select(t.assignments)).all() == []
    done = database.call(assignments.assign, "a1", tool)
    assert done.body["isolation"] == Isolation.EXEC
    assert done.body["desired"]["effective_resources"] == {"cpu": "50m", "memory": "64Mi"}
    assert database.call(assignments.assign, "a1", tool, isolation="exec").body[
        "isolation"] == Isolation.EXEC
    [plugin] = database.call(desired.desired_state, "a1").plugins
    assert (plugin.isolation, plugin.interval) == ("exec", 30.0)


def test_an_upgrade_to_an_exec_version_takes_its_isolation_not_the_kept_one(
    database: Database, tmp_path: Path
) -> None:
    name = unique()
    _publish(database, plugin_wheel(tmp_path / "1", name, "1.0.0"))
    _publish(database, exec_wheel(tmp_path / "2", name, "2.0.0"))
    _publish(database, plugin_wheel(tmp_path / "3", name, "3.0.0"))
    _register(database, "a1")
    database.call(assignments.assign, "a1", f"{name}@1.0.0", isolation="process",
                  config={"threshold": 1})
    assert database.call(assignments.assign, "a1", f"{name}@2.0.0",
                         reset_config=True).body["isolation"] == Isolation.EXEC
    # Back to a Python version: exec gives way to the manifest's (inline).
    assert database.call(assignments.assign, "a1", f"{name}@3.0.0").body["isolation"] == (
        Isolation.INLINE)


def test_a_jobs_plugin_entries_follow_the_same_isolation_rules(
    database: Database, tmp_path: Path
) -> None:
    tool, py = unique("exec"), unique()
    _publish(database, exec_wheel(tmp_path / "e", tool))
    _publish(database, plugin_wheel(tmp_path / "p", py))
    _register(database, "a1")
    for entry, message in ((PluginEntryRequest(tool, "before", isolation="process"),
                            r"plugins\[0\] \('exec-.*'\) is an exec plugin"),
                           (PluginEntryRequest(py, "before", isolation="exec"),
                            r"plugins\[0\] \('plug-.*'\) is a Python plugin")):
        with pytest.raises(Invalid, match=message):
            database.call(jobs.create_job, JobRequest(agent="a1", commands=["true"],
                                                      plugins=[entry]))
    job = database.call(jobs.create_job, JobRequest(
        agent="a1", commands=["true"], plugins=[PluginEntryRequest(tool, "notify")]))
    assert [p["isolation"] for p in job.job["plugins"]] == ["exec"]
