"""Who may call what: a table of every route and the role it needs, checked against a real
server with real tokens of every role; 401/403 answers; revocation and expiry; the first
admin token; the audit log of mutating calls."""

from __future__ import annotations

import json
import logging
import re
import stat
import time
from pathlib import Path

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from arcade_server.api.app import create_app
from arcade_server.api.auth import CACHE_TTL
from arcade_server.auth.roles import Role
from arcade_server.runner import ServerThread
from arcade_server.services import tokens
from arcade_server.settings import Settings
from tests.server.conftest import start_server
from tests.waiting import until_sync

V, P, OP, A = Role.VIEWER, Role.PUBLISHER, Role.OPERATOR, Role.ADMIN
PUBLIC = None

#: EVERY route of the app, with the role it needs (None: anyone). A route missing here fails.
TABLE: dict[tuple[str, str], Role | None] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("HEAD", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("HEAD", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("HEAD", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/api/v1/health"): V,
    ("GET", "/api/v1/whoami"): V,
    ("POST", "/api/v1/plugins"): P,
    ("POST", "/api/v1/plugins/validate"): P,
    ("POST", "/api/v1/plugins/import"): P,
    ("GET", "/api/v1/plugins/{name}/updates"): V,
    ("GET", "/api/v1/plugins"): V,
    ("GET", "/api/v1/plugins/{name}"): V,
    ("GET", "/api/v1/plugins/{name}/versions"): V,
    ("GET", "/api/v1/plugins/{name}/versions/{version}"): V,
    ("DELETE", "/api/v1/plugins/{name}/versions/{version}"): A,
    ("POST", "/api/v1/plugins/{name}/enable"): OP,
    ("POST", "/api/v1/plugins/{name}/disable"): OP,
    ("POST", "/api/v1/plugins/{name}/versions/{version}/signatures"): P,
    ("GET", "/api/v1/plugins/{name}/keys"): V,
    ("PUT", "/api/v1/plugins/{name}/keys"): A,
    ("GET", "/api/v1/agents"): V,
    ("GET", "/api/v1/agents/{agent_id}"): V,
    ("DELETE", "/api/v1/agents/{agent_id}"): A,
    ("GET", "/api/v1/status"): V,
    ("GET", "/api/v1/agents/{agent_id}/plugins"): V,
    ("POST", "/api/v1/agents/{agent_id}/plugins"): OP,
    ("DELETE", "/api/v1/agents/{agent_id}/plugins/{name}"): OP,
    ("PUT", "/api/v1/agents/{agent_id}/plugins/{name}/config"): OP,
    ("PATCH", "/api/v1/agents/{agent_id}/plugins/{name}"): OP,
    # Operator, not viewer: a plugin's output may hold secrets it printed.
    ("GET", "/api/v1/agents/{agent_id}/plugins/{name}/logs"): OP,
    ("GET", "/api/v1/agents/{agent_id}/metrics"): V,
    ("POST", "/api/v1/assignments"): OP,
    ("POST", "/api/v1/assignments/remove"): OP,
    ("POST", "/api/v1/jobs"): OP,
    ("GET", "/api/v1/jobs"): V,
    ("GET", "/api/v1/jobs/{job_id}"): V,
    ("POST", "/api/v1/jobs/{job_id}/cancel"): OP,
    ("POST", "/api/v1/tokens"): A,
    ("GET", "/api/v1/tokens"): A,
    ("DELETE", "/api/v1/tokens/{ref}"): A,
    ("GET", "/api/v1/audit"): A,
    ("POST", "/api/v1/enrollment-tokens"): A,
    ("GET", "/api/v1/enrollment-tokens"): A,
    ("DELETE", "/api/v1/enrollment-tokens/{token_id}"): A,
    ("POST", "/api/v1/agents/{agent_id}/revoke"): A,
    ("GET", "/api/v1/tls/ca.pem"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
}


def _operations(app_routes: list[object]) -> set[tuple[str, str]]:
    found = set()
    for context in iter_route_contexts(app_routes):  # type: ignore[arg-type]
        for method in context.methods or ():
            found.add((method, str(context.path)))
    return found


@pytest.fixture(scope="module")
def role_tokens(server: ServerThread) -> dict[Role, str]:
    """A real token of every role, made through the API by the admin."""
    made = {}
    with httpx.Client(base_url=server.http_url + "/api/v1", headers=server.auth_headers,
                      timeout=30) as admin:
        for role in Role:
            answer = admin.post("/tokens", json={"name": f"table-{role}", "role": role})
            assert answer.status_code == 201, answer.text
            made[role] = answer.json()["token"]
    return made


def test_the_table_lists_every_route_of_the_app(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path))
    assert _operations(app.routes) == set(TABLE)


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "nobody-zz", path)


def _call(client: httpx.Client, method: str, path: str) -> httpx.Response:
    body = {"json": {}} if method in ("POST", "PUT") and path[-8:] != "/plugins" else {}
    return client.request(method, _url(path), **body)  # type: ignore[arg-type]


def test_each_role_is_allowed_exactly_what_the_table_says(
    server: ServerThread, role_tokens: dict[Role, str]
) -> None:
    wrong: list[str] = []
    with httpx.Client(base_url=server.http_url, timeout=30) as client:
        for (method, path), needed in sorted(TABLE.items()):
            anonymous = _call(client, method, path)
            if needed is None:
                if anonymous.status_code in (401, 403):
                    wrong.append(f"anonymous {method} {path}: {anonymous.status_code}")
                continue
            if anonymous.status_code != 401 or \
                    anonymous.headers.get("www-authenticate") != "Bearer":
                wrong.append(f"anonymous {method} {path}: {anonymous.status_code}")
            for role, secret in role_tokens.items():
                client.headers["Authorization"] = f"Bearer {secret}"
                answer = _call(client, method, path)
                del client.headers["Authorization"]
                allowed = role.includes(needed)
                if allowed and answer.status_code in (401, 403):
                    wrong.append(f"{role} {method} {path}: {answer.status_code} {answer.text}")
                if not allowed and answer.status_code != 403:
                    wrong.append(f"{role} {method} {path}: {answer.status_code}, wanted 403")
    assert not wrong, "\n".join(wrong)


def test_refusals_say_why_in_the_error_schema(
    server: ServerThread, role_tokens: dict[Role, str]
) -> None:
    url = server.http_url + "/api/v1/jobs"
    missing = httpx.post(url, json={}, timeout=30)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert set(missing.json()) == {"error", "detail"}
    assert "needs an API token" in missing.json()["error"]
    assert "arcade login" in missing.json()["error"]
    for header in ("Bearer arcade_not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer"):
        bad = httpx.post(url, json={}, headers={"Authorization": header}, timeout=30)
        assert bad.status_code == 401, (header, bad.text)
        assert bad.headers["www-authenticate"] == "Bearer"
    viewer = httpx.post(url, json={}, timeout=30,
                        headers={"Authorization": f"Bearer {role_tokens[Role.VIEWER]}"})
    assert viewer.status_code == 403
    assert viewer.json()["error"] == ("this call needs the operator role (operator or admin); "
                                      "token 'table-viewer' has the viewer role")
    assert viewer.json()["detail"] == {"needed": "operator", "role": "viewer"}
    me = httpx.get(server.http_url + "/api/v1/whoami", timeout=30,
                   headers={"Authorization": f"Bearer {role_tokens[Role.PUBLISHER]}"})
    assert me.json() == {"name": "table-publisher", "role": "publisher", "kind": "token"}


def test_token_routes_create_list_revoke_and_refuse_bad_input(api: httpx.Client) -> None:
    created = api.post("/tokens", json={"name": "ci-bot", "role": "publisher", "ttl": 3600})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["token"].startswith("arcade_") and body["active"] is True
    assert body["expires_at"] == pytest.approx(time.time() + 3600, abs=60)
    listed = api.get("/tokens").json()
    assert "ci-bot" in [tok["name"] for tok in listed]
    assert body["token"] not in json.dumps(listed)
    for bad in ({"name": "x1", "role": "root"}, {"name": "x2", "role": "viewer", "ttl": -1},
                {"name": "x3", "role": "viewer", "ttl": "soon"},
                {"name": "x4", "role": "viewer", "ttl": 1e12}, {"name": "a b", "role": "viewer"},
                {"name": "x5", "role": "viewer", "token": "mine"},
                {"name": "x6", "role": "viewer", "ttl": True}):  # not a number (fuzz found it)
        refused = api.post("/tokens", json=bad)
        assert refused.status_code == 422, (bad, refused.text)
    assert api.post("/tokens", json={"name": "ci-bot", "role": "viewer"}).status_code == 409
    # Booleans and numeric strings are not numbers anywhere a request takes one.
    for body in ({"ttl": True}, {"uses": True}, {"uses": 1.0}, {"ttl": "60"}):
        refused = api.post("/enrollment-tokens", json=body)
        assert refused.status_code == 422, (body, refused.text)
    revoked = api.delete("/tokens/ci-bot")
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert api.delete("/tokens/no-such-token").status_code == 404


def test_a_revoked_token_is_refused_at_once_here_and_within_a_second_elsewhere(
    server: ServerThread, api: httpx.Client
) -> None:
    here = api.post("/tokens", json={"name": "revoke-here", "role": "viewer"}).json()["token"]
    elsewhere = api.post("/tokens", json={"name": "revoke-elsewhere", "role": "viewer"}
                         ).json()["token"]
    url = server.http_url + "/api/v1/health"

    def status(secret: str) -> int:
        return httpx.get(url, headers={"Authorization": f"Bearer {secret}"}, timeout=30
                         ).status_code

    assert status(here) == 200 and status(elsewhere) == 200  # both cached now
    assert api.delete("/tokens/revoke-here").status_code == 200
    assert status(here) == 401
    # Revoked by another replica: straight in the database, this process's cache untouched.
    server.call(server.state.db.run(tokens.revoke, "revoke-elsewhere"))
    revoked_at = time.monotonic()
    until_sync(lambda: status(elsewhere) == 401, what="the revocation to take effect")
    assert time.monotonic() - revoked_at <= CACHE_TTL + 1.0


def test_an_expired_token_is_refused(server: ServerThread, api: httpx.Client) -> None:
    secret = api.post("/tokens", json={"name": "brief", "role": "viewer", "ttl": 0.5}
                      ).json()["token"]
    url = server.http_url + "/api/v1/health"
    headers = {"Authorization": f"Bearer {secret}"}
    first = httpx.get(url, headers=headers, timeout=30).status_code
    assert first in (200, 401)  # 401 only on a machine slower than the ttl
    until_sync(lambda: httpx.get(url, headers=headers, timeout=30).status_code == 401,
               what="the token to expire")
    assert [tok["active"] for tok in api.get("/tokens").json() if tok["name"] == "brief"] == [
        False]


def test_mutating_calls_are_audited_once_including_refused_ones_never_bodies(
    server: ServerThread, api: httpx.Client, role_tokens: dict[Role, str]
) -> None:
    start = time.time() - 1
    base = server.http_url + "/api/v1"
    operator = {"Authorization": f"Bearer {role_tokens[Role.OPERATOR]}"}
    viewer = {"Authorization": f"Bearer {role_tokens[Role.VIEWER]}"}
    assert httpx.post(f"{base}/agents/audited-1/plugins", json={"plugin": "p"},
                      headers=operator, timeout=30).status_code == 404
    assert httpx.post(f"{base}/jobs", json={"agent": "audited-1", "commands": ["id"],
                                            "env": {"SECRET": "hunter2-env"}},
                      headers=viewer, timeout=30).status_code == 403
    assert httpx.delete(f"{base}/agents/audited-1/plugins/p", timeout=30).status_code == 401
    assert httpx.get(f"{base}/agents/audited-1", headers=operator, timeout=30
                     ).status_code == 404  # a read: not audited
    made = api.post("/tokens", json={"name": "audited-token", "role": "viewer"}).json()
    rows = api.get("/audit", params={"since": start}).json()
    mine = [r for r in rows if "audited" in r["target"] or r["action"] == "POST /api/v1/jobs"]
    assert [(r["actor"], r["role"], r["action"], r["target"], r["outcome"]) for r in mine] == [
        ("admin", "admin", "POST /api/v1/tokens", "tokens/audited-token", "201"),
        ("anonymous", "", "DELETE /api/v1/agents/{agent_id}/plugins/{name}",
         "agents/audited-1/plugins/p", "401"),
        ("table-viewer", "viewer", "POST /api/v1/jobs", "jobs", "403"),
        ("table-operator", "operator", "POST /api/v1/agents/{agent_id}/plugins",
         "agents/audited-1/plugins", "404"),
    ]
    assert {r["remote"] for r in mine} == {"127.0.0.1"}
    assert [r["actor_kind"] for r in mine] == ["token", "anonymous", "token", "token"]
    everything = json.dumps(api.get("/audit", params={"limit": 1000}).json())
    assert made["token"] not in everything and "hunter2" not in everything
    # Filters: actor, target (and what is below it), time window, limit; newest first.
    by_actor = api.get("/audit", params={"actor": "table-operator", "since": start}).json()
    assert {r["actor"] for r in by_actor} == {"table-operator"}
    below = api.get("/audit", params={"target": "agents/audited-1"}).json()
    assert [r["outcome"] for r in below] == ["401", "404"]
    earlier = api.get("/audit", params={"until": start}).json()
    assert all(r["at"] < start for r in earlier)
    assert not {r["id"] for r in earlier} & {r["id"] for r in mine}
    assert len(api.get("/audit", params={"limit": 2}).json()) == 2
    assert api.get("/audit", params={"limit": 0}).status_code == 422
    ids = [r["id"] for r in api.get("/audit").json()]
    assert ids == sorted(ids, reverse=True)
    # The audit log has no route that changes it.
    assert api.delete("/audit").status_code == 405
    assert api.put("/audit").status_code == 405


@pytest.fixture
def fresh_home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_first_start_writes_a_random_admin_token_file_and_says_where(
    fresh_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="arcade.server")
    server = start_server(fresh_home)
    try:
        path = fresh_home / "admin-token"
        secret = path.read_text().strip()
        assert secret.startswith("arcade_") and len(secret) > 40
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert str(path) in caplog.text and secret not in caplog.text
        answer = httpx.get(server.http_url + "/api/v1/whoami", timeout=30,
                           headers={"Authorization": f"Bearer {secret}"})
        assert answer.json() == {"name": "admin", "role": "admin", "kind": "token"}
        audit = httpx.get(server.http_url + "/api/v1/audit", timeout=30,
                          headers={"Authorization": f"Bearer {secret}"}).json()
        assert [(r["actor"], r["action"], r["target"]) for r in audit] == [
            ("system", "token.create", "tokens/admin")]
    finally:
        server.stop()


def test_the_admin_token_comes_from_the_setting_and_is_not_made_again_on_restart(
    fresh_home: Path,
) -> None:
    chosen = "my-own-admin-token-0123456789"
    server = start_server(fresh_home, admin_token=chosen)
    server.stop()
    path = fresh_home / "admin-token"
    assert path.read_text().strip() == chosen
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.stat().st_mtime_ns
    again = start_server(fresh_home, admin_token="another-token-0123456789")
    try:
        assert path.stat().st_mtime_ns == written
        url = again.http_url + "/api/v1/whoami"
        assert httpx.get(url, headers={"Authorization": f"Bearer {chosen}"}, timeout=30
                         ).status_code == 200
        assert httpx.get(url, headers={"Authorization": "Bearer another-token-0123456789"},
                         timeout=30).status_code == 401
        assert len(again.call(again.state.db.read(tokens.list_tokens))) == 1
        last = httpx.delete(again.http_url + "/api/v1/tokens/admin", timeout=30,
                            headers={"Authorization": f"Bearer {chosen}"})
        assert last.status_code == 409 and "last usable admin token" in last.json()["error"]
    finally:
        again.stop()
    assert "another-token" not in repr(Settings(home=fresh_home, admin_token="x" * 16 + "y"))


def test_a_short_admin_token_setting_is_refused() -> None:
    from arcade_server.errors import SettingsError

    with pytest.raises(SettingsError, match="admin_token: must be at least 16"):
        Settings.load(env={"ARCADE_SERVER_ADMIN_TOKEN": "short"})
