"""Desired-state service functions against SQLite and a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from arcade_server.db import tables as t
from arcade_server.db.engine import Database
from arcade_server.errors import Invalid, NotFound
from arcade_server.services import (
    agents,
    assignments,
    desired,
    plugin_states,
    publishing,
    status_reports,
)
from tests.server.helpers import db_row, dependency_wheel, plugin_wheel, unique


def _publish(db: Database, *paths: Path) -> None:
    db.call(publishing.record_version, publishing.inspect_upload(list(paths)))


def _register(db: Database, agent_id: str, **labels: str) -> None:
    db.call(agents.register, agents.AgentInfo(agent_id=agent_id, labels=labels))


def test_assign_bumps_the_revision_and_builds_the_desired_state(
    database: Database, tmp_path: Path
) -> None:
    name, dep = unique(), unique("dep")
    _publish(database, plugin_wheel(tmp_path, name, "1.0.0", requires=[dep]),
             dependency_wheel(tmp_path, dep))
    _register(database, "a1")
    result = database.call(assignments.assign, "a1", name, config={"threshold": 1},
                           isolation="process")
    assert result.revisions == {"a1": 1}
    assert result.body["config"] == {"threshold": 1, "label": "x"}
    state = database.call(desired.desired_state, "a1")
    assert state.revision == 1
    [plugin] = state.plugins
    assert (plugin.name, plugin.version, plugin.isolation, plugin.interval) == (
        name, "1.0.0", "process", 5.0)
    assert [w.filename.split("-")[0] for w in plugin.wheels] == [
        name.replace("-", "_"), dep.replace("-", "_")]
    assert plugin.config_json == '{"label":"x","threshold":1}'
    with database.transaction(write=False) as conn:
        assert desired.may_download(conn, "a1", plugin.wheels[1].sha256)
        assert not desired.may_download(conn, "a2", plugin.wheels[1].sha256)


def test_reassigning_replaces_the_version_and_unassign_removes_it(
    database: Database, tmp_path: Path
) -> None:
    name = unique()
    _publish(database, plugin_wheel(tmp_path / "1", name, "1.0.0"))
    _publish(database, plugin_wheel(tmp_path / "2", name, "2.0.0"))
    _register(database, "a1")
    database.call(assignments.assign, "a1", f"{name}@1.0.0")
    database.call(assignments.assign, "a1", f"{name}@2.0.0")
    state = database.call(desired.desired_state, "a1")
    assert (state.revision, [p.version for p in state.plugins]) == (2, ["2.0.0"])
    result = database.call(assignments.unassign, "a1", name.upper())
    assert result.revisions == {"a1": 3}
    assert database.call(desired.desired_state, "a1").plugins == ()
    with pytest.raises(NotFound):
        database.call(assignments.unassign, "a1", name)


def test_selector_matches_all_labels_and_bumps_every_agent_at_once(
    database: Database, tmp_path: Path
) -> None:
    name = unique()
    _publish(database, plugin_wheel(tmp_path, name))
    _register(database, "web-1", role="web", dc="east")
    _register(database, "web-2", role="web", dc="west")
    _register(database, "db-1", role="db", dc="east")
    east_web = database.call(assignments.assign_selector, {"role": "web", "dc": "east"}, name)
    assert east_web.revisions == {"web-1": 1}
    everyone = database.call(assignments.assign_selector, {}, name)
    assert everyone.revisions == {"web-1": 2, "web-2": 1, "db-1": 1}
    states = database.call(desired.desired_states, ["web-1", "web-2", "db-1", "ghost"])
    assert sorted(states) == ["db-1", "web-1", "web-2"]
    assert all(len(s.plugins) == 1 for s in states.values())
    removed = database.call(assignments.unassign_selector, {"dc": "east"}, name)
    assert removed.revisions == {"web-1": 3, "db-1": 2}
    with database.transaction(write=False) as conn:
        left = conn.scalars(select(t.assignments.c.agent_id)).all()
        assert left == ["web-2"]


def test_invalid_config_and_isolation_change_nothing(database: Database, tmp_path: Path
                                                     ) -> None:
    name = unique()
    _publish(database, plugin_wheel(tmp_path, name))
    _register(database, "a1")
    with pytest.raises(Invalid, match=r"config\.threshold"):
        database.call(assignments.assign, "a1", name, config={"threshold": -5})
    with pytest.raises(Invalid, match="isolation"):
        database.call(assignments.assign, "a1", name, isolation="container")
    with database.transaction(write=False) as conn:
        agent = db_row(conn, t.agents, "a1")
        assert agent is not None and agent.desired_revision == 0
    database.call(assignments.assign, "a1", name)
    with pytest.raises(Invalid, match="JSON object"):
        database.call(assignments.set_config, "a1", name, [1])  # type: ignore[arg-type]
    changed = database.call(assignments.set_config, "a1", name, {"label": "y"})
    assert changed.body["config"] == {"threshold": 10, "label": "y"}


def test_install_outcomes_need_a_final_state_for_the_version_at_the_revision(
    database: Database, tmp_path: Path
) -> None:
    name = unique()
    _publish(database, plugin_wheel(tmp_path / "1", name, "1.0.0"))
    _publish(database, plugin_wheel(tmp_path / "2", name, "2.0.0"))
    _register(database, "a1")
    database.call(assignments.assign, "a1", f"{name}@1.0.0")
    running = [status_reports.ReportedPlugin(name, "1.0.0", "running")]
    database.call(status_reports.report_status, "a1", 1, running, complete=True)
    result = database.call(assignments.assign, "a1", f"{name}@2.0.0")
    outcomes = database.call(plugin_states.install_outcomes, result.revisions, name, "2.0.0")
    assert outcomes == {"a1": None}  # still runs 1.0.0
    database.call(status_reports.report_status, "a1", 2,
                  [status_reports.ReportedPlugin(name, "2.0.0", "installing")])
    assert database.call(plugin_states.install_outcomes, result.revisions, name, "2.0.0") == {
        "a1": None}
    database.call(status_reports.report_status, "a1", 2,
                  [status_reports.ReportedPlugin(name, "2.0.0", "running")], complete=True)
    outcome = database.call(plugin_states.install_outcomes, result.revisions, name, "2.0.0")
    assert outcome["a1"] is not None and outcome["a1"]["state"] == "running"


def _manifest(*, maximum: int | None = None, default_label: str = "x",
              secret: bool = False) -> dict[str, Any]:
    """A manifest like the helpers' one, with another ``threshold`` maximum, ``label``
    default, or a secret ``token`` field."""
    properties: dict[str, Any] = {
        "threshold": {"type": "integer", "minimum": 0, "default": 10,
                      **({"maximum": maximum} if maximum is not None else {})},
        "label": {"type": "string", "default": default_label},
    }
    if secret:
        properties["token"] = {"type": "string", "writeOnly": True}
    return {"description": "a test plugin", "type": "collector", "interval": 5,
            "config_schema": {"type": "object", "properties": properties,
                              "additionalProperties": False}}


def _desired(db: Database, agent_id: str) -> tuple[str, dict[str, Any], str]:
    [plugin] = db.call(desired.desired_state, agent_id).plugins
    return plugin.version, dict(plugin.config), plugin.isolation


def test_an_upgrade_keeps_the_config_and_isolation_the_operator_set(
    database: Database, tmp_path: Path
) -> None:
    name = unique()
    _publish(database, plugin_wheel(tmp_path / "1", name, "1.0.0"))
    _publish(database, plugin_wheel(tmp_path / "2", name, "2.0.0",
                                    manifest=_manifest(default_label="y")))
    _register(database, "a1")
    database.call(assignments.assign, "a1", f"{name}@1.0.0", config={"threshold": 3},
                  isolation="process")
    upgraded = database.call(assignments.assign, "a1", f"{name}@2.0.0")
    # The threshold the operator set and the isolation stay; the label was 1.0.0's default,
    # so it takes 2.0.0's.
    assert _desired(database, "a1") == ("2.0.0", {"threshold": 3, "label": "y"}, "process")
    assert upgraded.body["previous_version"] == "1.0.0"
    assert upgraded.body["desired"]["config"] == {"threshold": 3, "label": "y"}
    assert upgraded.body["desired"]["isolation"] == "process"
    assert upgraded.body["desired"]["revision"] == upgraded.body["revision"] == 2
    # New values replace what is kept; an isolation given replaces the kept one.
    database.call(assignments.assign, "a1", f"{name}@1.0.0", config={"label": "z"},
                  isolation="inline")
    assert _desired(database, "a1") == ("1.0.0", {"threshold": 10, "label": "z"}, "inline")
    database.call(assignments.assign, "a1", f"{name}@2.0.0", isolation="process")
    assert _desired(database, "a1") == ("2.0.0", {"threshold": 10, "label": "z"}, "process")
    # reset_config: the new version's defaults (the isolation is still kept).
    reset = database.call(assignments.assign, "a1", f"{name}@2.0.0", reset_config=True)
    assert _desired(database, "a1") == ("2.0.0", {"threshold": 10, "label": "y"}, "process")
    assert reset.body["previous_version"] == "2.0.0"
    with pytest.raises(Invalid, match="not both"):
        database.call(assignments.assign, "a1", name, config={}, reset_config=True)


def test_a_kept_config_the_new_version_refuses_is_422_naming_the_fix(
    database: Database, tmp_path: Path
) -> None:
    name = unique()
    _publish(database, plugin_wheel(tmp_path / "1", name, "1.0.0"))
    _publish(database, plugin_wheel(tmp_path / "2", name, "2.0.0",
                                    manifest=_manifest(maximum=20)))
    _register(database, "a1")
    database.call(assignments.assign, "a1", f"{name}@1.0.0", config={"threshold": 50})
    with pytest.raises(Invalid) as refused:
        database.call(assignments.assign, "a1", f"{name}@2.0.0")
    message = refused.value.message
    assert f"the config kept from agent a1 ({name}@1.0.0) does not fit {name}@2.0.0" in message
    assert "config.threshold: 50 is greater than the maximum of 20" in message
    assert {(h.rest, h.cli) for h in refused.value.hints} == {
        ('"config"', "--config JSON"), ('"reset_config": true', "--reset-config")}
    assert all(h.rest in message for h in refused.value.hints)
    # Nothing changed; either fix works.
    assert _desired(database, "a1")[0] == "1.0.0"
    assert database.call(desired.desired_state, "a1").revision == 1
    database.call(assignments.assign, "a1", f"{name}@2.0.0", reset_config=True)
    assert _desired(database, "a1")[1] == {"threshold": 10, "label": "x"}


def test_an_upgrade_keeps_the_secrets_and_a_selector_keeps_each_agents_own(
    database: Database, tmp_path: Path
) -> None:
    name = unique()
    _publish(database, plugin_wheel(tmp_path / "1", name, "1.0.0",
                                    manifest=_manifest(secret=True)))
    _publish(database, plugin_wheel(tmp_path / "2", name, "2.0.0",
                                    manifest=_manifest(secret=True)))
    _register(database, "w1", role=name)
    _register(database, "w2", role=name)
    _register(database, "w3", role=name)
    database.call(assignments.assign, "w1", f"{name}@1.0.0",
                  config={"token": "s3cret-one", "threshold": 1}, isolation="process")
    database.call(assignments.assign, "w2", f"{name}@1.0.0", config={"token": "s3cret-two"})
    result = database.call(assignments.assign_selector, {"role": name}, f"{name}@2.0.0")
    assert result.body["revisions"] == {"w1": 2, "w2": 2, "w3": 1}
    assert _desired(database, "w1") == (
        "2.0.0", {"token": "s3cret-one", "threshold": 1, "label": "x"}, "process")
    assert _desired(database, "w2") == (
        "2.0.0", {"token": "s3cret-two", "threshold": 10, "label": "x"}, "inline")
    assert _desired(database, "w3") == ("2.0.0", {"threshold": 10, "label": "x"}, "inline")
    assert "s3cret" not in str(result.body)
