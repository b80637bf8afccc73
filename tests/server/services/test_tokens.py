"""API tokens and the audit log at the service level, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from arcade_server.auth.roles import ActorKind, Principal, Role
from arcade_server.db import tables as t
from arcade_server.db.engine import Database
from arcade_server.errors import Conflict, Invalid, NotFound
from arcade_server.services import audit, tokens


def test_a_created_token_authenticates_as_its_name_and_role_and_is_stored_hashed(
    database: Database,
) -> None:
    created = database.call(tokens.create, name="ci", role="publisher")
    assert created.secret.startswith(tokens.PREFIX) and len(created.secret) > 40
    assert created.token["name"] == "ci" and created.token["role"] == Role.PUBLISHER
    assert created.token["active"] is True and created.token["expires_at"] is None
    principal = database.call(tokens.authenticate, created.secret)
    assert principal == Principal("ci", Role.PUBLISHER, token_id=created.token["id"])
    assert database.call(tokens.authenticate, created.secret + "x") is None
    assert database.call(tokens.authenticate, "") is None
    with database.transaction() as conn:
        stored = conn.execute(select(t.api_tokens)).one()._mapping
    assert created.secret not in [str(v) for v in stored.values()]
    assert stored["secret_hash"] == tokens.hash_secret(created.secret)
    listed = database.call(tokens.list_tokens)
    assert listed == [created.token]
    assert "secret_hash" not in listed[0] and "token" not in listed[0]


def test_roles_include_exactly_what_the_issue_says() -> None:
    allowed = {(held, needed) for held in Role for needed in Role if held.includes(needed)}
    assert allowed == {
        (Role.VIEWER, Role.VIEWER),
        (Role.PUBLISHER, Role.VIEWER), (Role.PUBLISHER, Role.PUBLISHER),
        (Role.OPERATOR, Role.VIEWER), (Role.OPERATOR, Role.OPERATOR),
        *((Role.ADMIN, needed) for needed in Role),
    }
    assert Role.OPERATOR.holders() == [Role.OPERATOR, Role.ADMIN]


def test_expired_and_revoked_tokens_do_not_authenticate(database: Database) -> None:
    now = time.time()
    short = database.call(tokens.create, name="short", role="viewer", ttl=60, now=now - 120)
    assert database.call(tokens.authenticate, short.secret) is None
    assert database.call(tokens.list_tokens)[0]["active"] is False
    live = database.call(tokens.create, name="live", role="viewer", ttl=3600)
    assert database.call(tokens.authenticate, live.secret) is not None
    assert database.call(tokens.authenticate, live.secret, now=now + 7200) is None
    revoked = database.call(tokens.revoke, "live")
    assert revoked.token["revoked_at"] is not None and revoked.token["active"] is False
    assert revoked.secret_hash == tokens.hash_secret(live.secret)
    assert database.call(tokens.authenticate, live.secret) is None
    again = database.call(tokens.revoke, str(live.token["id"]))  # by id; nothing changes
    assert again.token["revoked_at"] == revoked.token["revoked_at"]
    with pytest.raises(NotFound, match="no token named 'ghost'"):
        database.call(tokens.revoke, "ghost")


def test_names_are_unique_among_usable_tokens_and_reusable_after_revocation(
    database: Database,
) -> None:
    first = database.call(tokens.create, name="deploy", role="operator")
    with pytest.raises(Conflict, match="a token named 'deploy' exists"):
        database.call(tokens.create, name="deploy", role="viewer")
    database.call(tokens.revoke, "deploy")
    second = database.call(tokens.create, name="deploy", role="viewer")
    assert second.token["role"] == Role.VIEWER and second.secret != first.secret
    assert [tok["name"] for tok in database.call(tokens.list_tokens)] == ["deploy"]
    assert database.call(tokens.authenticate, first.secret) is None


@pytest.mark.parametrize(("fields", "message"), [
    ({"name": "x", "role": "root"}, "unknown role 'root'; use one of viewer, publisher"),
    ({"name": "has space", "role": "viewer"}, "token name 'has space' must be"),
    ({"name": "", "role": "viewer"}, "token name '' must be"),
    ({"name": "x", "role": "viewer", "ttl": 0}, "ttl must be a number of seconds"),
    ({"name": "x", "role": "viewer", "ttl": -5}, "ttl must be a number of seconds"),
    ({"name": "x", "role": "viewer", "ttl": float("nan")}, "ttl must be"),
    ({"name": "x", "role": "viewer", "ttl": 1e12}, "ttl must be"),
    ({"name": "x", "role": "viewer", "secret": "short"}, "at least 16 characters"),
])
def test_bad_input_is_refused_before_anything_is_written(
    database: Database, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(Invalid, match=message):
        database.call(tokens.create, **fields)  # type: ignore[arg-type]
    assert database.call(tokens.list_tokens) == []


def test_the_last_usable_admin_token_cannot_be_revoked(database: Database) -> None:
    database.call(tokens.create, name="root", role="admin")
    with pytest.raises(Conflict, match="last usable admin token"):
        database.call(tokens.revoke, "root")
    database.call(tokens.create, name="root2", role="admin")
    database.call(tokens.revoke, "root")
    with pytest.raises(Conflict, match="last usable admin token"):
        database.call(tokens.revoke, "root2")


def test_ensure_admin_makes_one_token_on_an_empty_table_only(database: Database) -> None:
    secret = database.call(tokens.ensure_admin, secret="s" * 20)
    assert secret == "s" * 20
    assert database.call(tokens.ensure_admin) is None
    assert database.call(tokens.ensure_admin, secret="t" * 20) is None
    [admin] = database.call(tokens.list_tokens)
    assert database.call(tokens.authenticate, "s" * 20) == Principal(
        tokens.ADMIN_NAME, Role.ADMIN, token_id=admin["id"])


def test_touch_records_the_last_use(database: Database) -> None:
    created = database.call(tokens.create, name="used", role="viewer")
    database.call(tokens.touch, created.token["id"], 1234.5)
    assert database.call(tokens.list_tokens)[0]["last_used_at"] == 1234.5


def test_audit_rows_are_recorded_and_filtered_newest_first(database: Database) -> None:
    database.call(audit.record, actor="alice", actor_kind=ActorKind.TOKEN, role="operator",
                  action="POST /api/v1/agents/{agent_id}/plugins",
                  target="agents/web-1/plugins/cpu", outcome="202", remote="10.0.0.1")
    database.call(audit.record, actor="web-1", actor_kind=ActorKind.AGENT,
                  action="agent.enroll", target="agents/web-1", outcome="ok")
    database.call(audit.record, actor="bob", actor_kind=ActorKind.TOKEN, role="viewer",
                  action="POST /api/v1/jobs", target="jobs", outcome="403")
    database.call(audit.record_many, [audit.AuditEntry(
        actor="anonymous", actor_kind=ActorKind.ANONYMOUS, action="DELETE /x",
        target="agents/web-10", outcome="401", at=1.0)])
    rows = database.call(audit.query)
    assert [r["actor"] for r in rows] == ["anonymous", "bob", "web-1", "alice"]
    assert rows[-1] == {**rows[-1], "role": "operator", "remote": "10.0.0.1",
                        "actor_kind": "token", "outcome": "202"}
    # A target matches itself and what is below it, not a longer name.
    assert [r["actor"] for r in database.call(audit.query, target="agents/web-1")] == [
        "web-1", "alice"]
    assert [r["actor"] for r in database.call(audit.query, target="/agents/web-1/")] == [
        "web-1", "alice"]
    assert [r["actor"] for r in database.call(audit.query, actor="bob")] == ["bob"]
    assert [r["actor"] for r in database.call(audit.query, until=2.0)] == ["anonymous"]
    assert "anonymous" not in [r["actor"] for r in database.call(audit.query, since=2.0)]
    assert len(database.call(audit.query, limit=2)) == 2
    with pytest.raises(Invalid, match="limit must be between 1 and 1000"):
        database.call(audit.query, limit=0)
    with pytest.raises(Invalid, match="since must be"):
        database.call(audit.query, since=float("inf"))
    # Over-long fields are cut to their column, not refused (the call already happened).
    database.call(audit.record, actor="a" * 500, actor_kind=ActorKind.SYSTEM,
                  action="x", outcome="ok", target="t" * 900)
    assert len(database.call(audit.query, limit=1)[0]["target"]) == 500


def test_the_audit_retention_keeps_recent_rows_and_at_most_the_newest_n(
    database: Database,
) -> None:
    def entry(i: int, at: float) -> audit.AuditEntry:
        return audit.AuditEntry(actor=f"a{i}", actor_kind=ActorKind.ANONYMOUS,
                                action="POST /x", outcome="401", at=at)

    database.call(audit.record_many, [entry(i, 100.0 + i) for i in range(10)])
    assert database.call(audit.purge, before=103.0, keep_rows=100) == 3   # a0-a2 too old
    assert database.call(audit.purge, before=0.0, keep_rows=4) == 3       # a3-a5 beyond 4
    assert [r["actor"] for r in database.call(audit.query)] == ["a9", "a8", "a7", "a6"]
    assert database.call(audit.purge, before=0.0, keep_rows=4) == 0


def test_audit_retention_settings_are_validated() -> None:
    from arcade_server.errors import SettingsError
    from arcade_server.settings import Settings

    loaded = Settings.from_mapping({"audit_retention": "30d", "audit_max_rows": "5000"})
    assert (loaded.audit_retention, loaded.audit_max_rows) == (30 * 86400.0, 5000)
    with pytest.raises(SettingsError, match="audit_max_rows"):
        Settings(audit_max_rows=0)
    with pytest.raises(SettingsError, match="audit_retention"):
        Settings(audit_retention=0)
