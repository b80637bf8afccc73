"""The OpenAPI document is the contract: it describes every route's bodies and statuses, every
error is the one ``Error`` schema, real answers validate against it, and the typed routes
answer exactly what the services return (no field dropped, same values, same order)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from arcade_server.api.app import create_app
from arcade_server.runner import ServerThread
from arcade_server.services import agents, job_requests, jobs, metrics, plugin_states, registry
from arcade_server.settings import Settings
from tests.server.conftest import start_server
from tests.server.helpers import ProtocolAgent, plugin_wheel, publish, status, unique, upload

ERROR_REF = "#/components/schemas/Error"

#: The error statuses each operation can answer besides 422 (request validation) and 401/403
#: (authentication, authorization), from the services it calls: NotFound 404, Conflict 409,
#: PayloadTooLarge 413, AgentTimeout 504,
#: IndexUnavailable 502; 400 for a JSON body that cannot be decoded.
RAISES: dict[tuple[str, str], set[int]] = {
    ("post", "/api/v1/plugins"): {409, 413},
    ("post", "/api/v1/plugins/validate"): {413},
    ("post", "/api/v1/plugins/import"): {409, 413, 502},
    ("get", "/api/v1/plugins/{name}/updates"): {404, 409, 502},
    ("get", "/api/v1/plugins"): set(),
    ("get", "/api/v1/plugins/{name}"): {404},
    ("get", "/api/v1/plugins/{name}/versions"): {404},
    ("get", "/api/v1/plugins/{name}/versions/{version}"): {404},
    ("delete", "/api/v1/plugins/{name}/versions/{version}"): {404, 409},
    ("post", "/api/v1/plugins/{name}/enable"): {404},
    ("post", "/api/v1/plugins/{name}/disable"): {404},
    ("post", "/api/v1/plugins/{name}/versions/{version}/signatures"): {404},
    ("get", "/api/v1/plugins/{name}/keys"): set(),
    ("put", "/api/v1/plugins/{name}/keys"): set(),
    ("get", "/api/v1/agents"): set(),
    ("get", "/api/v1/agents/{agent_id}"): {404},
    ("delete", "/api/v1/agents/{agent_id}"): {404, 409},
    ("get", "/api/v1/status"): set(),
    ("get", "/api/v1/agents/{agent_id}/plugins"): {404},
    ("post", "/api/v1/agents/{agent_id}/plugins"): {400, 404, 409},
    ("delete", "/api/v1/agents/{agent_id}/plugins/{name}"): {404},
    ("put", "/api/v1/agents/{agent_id}/plugins/{name}/config"): {400, 404},
    ("patch", "/api/v1/agents/{agent_id}/plugins/{name}"): {400, 404},
    ("get", "/api/v1/agents/{agent_id}/plugins/{name}/logs"): {404, 409, 504},
    ("get", "/api/v1/agents/{agent_id}/metrics"): {404},
    ("post", "/api/v1/assignments"): {400, 404, 409},
    ("post", "/api/v1/assignments/remove"): {400},
    ("post", "/api/v1/jobs"): {400, 404},
    ("get", "/api/v1/jobs"): set(),
    ("get", "/api/v1/jobs/{job_id}"): {404},
    ("post", "/api/v1/jobs/{job_id}/cancel"): {404, 409},
    ("get", "/api/v1/health"): set(),
    ("post", "/api/v1/tokens"): {400, 409},
    ("get", "/api/v1/tokens"): set(),
    ("delete", "/api/v1/tokens/{ref}"): {404, 409},
    ("get", "/api/v1/whoami"): set(),
    ("get", "/api/v1/audit"): set(),
    ("post", "/api/v1/enrollment-tokens"): set(),
    ("get", "/api/v1/enrollment-tokens"): set(),
    ("delete", "/api/v1/enrollment-tokens/{token_id}"): {404},
    ("post", "/api/v1/agents/{agent_id}/revoke"): {404},
    ("get", "/api/v1/tls/ca.pem"): set(),
    ("get", "/healthz"): set(),
    ("get", "/readyz"): {503},
}
#: Operations anyone may call (no token): every other one documents 401 and 403.
PUBLIC = {("get", "/api/v1/tls/ca.pem"), ("get", "/healthz"), ("get", "/readyz")}
#: Operations whose success body is not JSON (its media type).
NOT_JSON = {("get", "/api/v1/tls/ca.pem"): "application/x-pem-file"}
#: Operations answering one of two 2xx statuses (the body is the same model).
TWO_SUCCESSES = {
    ("post", "/api/v1/plugins"): {"200", "201"},
    ("post", "/api/v1/plugins/import"): {"200", "201"},
    ("post", "/api/v1/agents/{agent_id}/plugins"): {"200", "202"},
    ("delete", "/api/v1/agents/{agent_id}/plugins/{name}"): {"200", "202"},
    ("put", "/api/v1/agents/{agent_id}/plugins/{name}/config"): {"200", "202"},
    ("patch", "/api/v1/agents/{agent_id}/plugins/{name}"): {"200", "202"},
    ("post", "/api/v1/assignments"): {"200", "202"},
    ("post", "/api/v1/assignments/remove"): {"200", "202"},
    ("post", "/api/v1/jobs/{job_id}/cancel"): {"200", "202"},
}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("openapi-home")
    doc: dict[str, Any] = create_app(Settings(home=home)).openapi()
    return doc


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in document["paths"].items()
            for method, op in ops.items()]


def _body_schema(response: dict[str, Any]) -> dict[str, Any] | None:
    content = response.get("content")
    if not content:
        return None
    assert list(content) == ["application/json"], content
    schema: dict[str, Any] = content["application/json"]["schema"]
    return schema


def _refs(schema: dict[str, Any]) -> str:
    """The component a body schema names (``$ref`` or an array of ``$ref``), else ''."""
    if "$ref" in schema:
        return str(schema["$ref"])
    if schema.get("type") == "array":
        return str(schema["items"].get("$ref", ""))
    return ""


def test_every_route_is_in_the_table(document: dict[str, Any]) -> None:
    assert {(m, p) for m, p, _ in _operations(document)} == set(RAISES)


def test_every_success_has_a_response_model(document: dict[str, Any]) -> None:
    for method, path, op in _operations(document):
        successes = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert successes, (method, path)
        expected = TWO_SUCCESSES.get((method, path))
        if expected is not None:
            assert set(successes) == expected, (method, path, set(successes))
        else:
            assert len(successes) == 1, (method, path, set(successes))
        for code, response in successes.items():
            if (method, path) in NOT_JSON:
                assert list(response["content"]) == [NOT_JSON[(method, path)]]
                continue
            schema = _body_schema(response)
            if code == "204":
                assert schema is None, (method, path)
                continue
            assert schema is not None, (method, path, code)
            ref = _refs(schema)
            assert ref.startswith("#/components/schemas/") and ref != ERROR_REF, \
                (method, path, code, schema)


def test_every_error_status_is_documented_with_the_error_schema(
    document: dict[str, Any]
) -> None:
    for method, path, op in _operations(document):
        responses = op["responses"]
        documented = {int(code) for code in responses if not code.startswith("2")}
        auth = set() if (method, path) in PUBLIC else {401, 403}
        assert documented >= RAISES[(method, path)] | auth | {422}, (method, path, documented)
        assert ("security" in op) == bool(auth), (method, path)
        for code in documented:
            schema = _body_schema(responses[str(code)])
            assert schema == {"$ref": ERROR_REF}, (method, path, code, schema)
            assert responses[str(code)]["description"], (method, path, code)
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["Error"]["required"] == ["error", "detail"]


def test_enums_and_settings_limits_are_stated(tmp_path: Path) -> None:
    doc = create_app(Settings(home=tmp_path, max_wait=7, metric_query_limit=321,
                              job_default_timeout=60, job_max_timeout=99)).openapi()
    schemas = doc["components"]["schemas"]
    assert schemas["PluginState"]["enum"] == [
        "pending", "downloading", "installing", "running", "restarting", "failed", "stopped",
        "removed", "degraded", "untrusted", "drifted"]
    assert schemas["JobSummary"]["properties"]["status"] == {
        "$ref": "#/components/schemas/JobStatus"}
    assert schemas["InstallResult"]["properties"]["isolation"] == {
        "$ref": "#/components/schemas/Isolation"}
    install = doc["paths"]["/api/v1/agents/{agent_id}/plugins"]["post"]
    [wait] = [p for p in install["parameters"] if p["name"] == "wait"]
    assert wait["schema"]["anyOf"][0]["maximum"] == 7
    assert wait["schema"]["minimum"] == 0
    metrics_op = doc["paths"]["/api/v1/agents/{agent_id}/metrics"]["get"]
    [limit] = [p for p in metrics_op["parameters"] if p["name"] == "limit"]
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 321)
    timeout = schemas["JobCreateRequest"]["properties"]["timeout"]
    assert timeout["anyOf"][0]["maximum"] == 99 and timeout["exclusiveMinimum"] == 0
    commands = schemas["JobCreateRequest"]["properties"]["commands"]
    assert (commands["minItems"], commands["maxItems"]) == (1, job_requests.MAX_COMMANDS)


# ---------------------------------------------------------------- real answers


def _validator(document: dict[str, Any], ref: str) -> jsonschema.Draft202012Validator:
    root = {"$ref": ref, "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


def _check_error(document: dict[str, Any], response: httpx.Response, status_code: int) -> None:
    assert response.status_code == status_code, response.text
    assert response.headers["content-type"] == "application/json"
    _validator(document, ERROR_REF).validate(response.json())
    assert response.json()["error"]


def test_real_errors_are_the_error_schema(
    document: dict[str, Any], server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    _check_error(document, api.get("/agents/nobody"), 404)
    # A fix that is another call: the message names the route, hints add the CLI form.
    nobody = api.get("/agents/nobody").json()
    assert nobody["error"].endswith("list agents with GET /api/v1/agents")
    assert nobody["hints"] == [{"rest": "GET /api/v1/agents", "cli": "arcade agents"}]
    _check_error(document, api.get("/plugins/nothing-here/versions/1.0"), 404)
    _check_error(document, api.get("/no/such/route"), 404)
    missing = api.get("/no/such/route")
    assert "/api/v1" in missing.json()["error"]
    # 409: the same name@version with other content.
    name = unique()
    publish(api, plugin_wheel(tmp_path / "a", name, "1.0.0"))
    _check_error(document, upload(api, plugin_wheel(tmp_path / "b", name, "1.0.0",
                                                     summary="other")), 409)
    # 422 from request validation: the problems are in detail, the message names the field.
    invalid = api.post("/agents/x/plugins", json={"plugin": name, "isolation": "sideways"})
    _check_error(document, invalid, 422)
    assert invalid.json()["error"].startswith("invalid request: isolation")
    assert invalid.json()["detail"][0]["loc"] == ["body", "isolation"]
    assert "input" not in invalid.json()["detail"][0]
    _check_error(document, api.post("/jobs", content=b"{", headers={
        "content-type": "application/json"}), 422)
    _check_error(document, api.get("/jobs", params={"limit": "many"}), 422)
    undecodable = api.post("/jobs", content=b"\xff\xfe{", headers={
        "content-type": "application/json"})
    _check_error(document, undecodable, 400)
    assert "UTF-8" in undecodable.json()["error"]
    # 422 from a service.
    _check_error(document, api.get("/agents", params={"label": "novalue"}), 422)
    # 405, with Allow listing every method of the path (two routes share /plugins).
    wrong = api.put("/plugins")
    _check_error(document, wrong, 405)
    assert wrong.headers["allow"] == "GET, HEAD, POST"
    assert "use GET, HEAD, POST" in wrong.json()["error"]
    delete_only = api.post(f"/plugins/{name}/versions/1.0.0")
    _check_error(document, delete_only, 405)
    assert delete_only.headers["allow"] == "GET, HEAD, DELETE"
    # /plugins/validate is its own path (POST only), not /plugins/{name}.
    assert api.put("/plugins/validate").headers["allow"] == "POST"


def test_an_upload_over_the_limit_is_413_in_the_error_schema(
    document: dict[str, Any], tmp_path: Path
) -> None:
    small = start_server(tmp_path / "home", max_upload_bytes=2048)
    try:
        with httpx.Client(base_url=small.http_url + "/api/v1",
                          headers=small.auth_headers, timeout=30) as client:
            name = unique()
            wheel = plugin_wheel(tmp_path, name, files={
                f"{name.replace('-', '_')}/noise.bin": os.urandom(8192)})
            too_large = upload(client, wheel)
            _check_error(document, too_large, 413)
            assert too_large.json()["detail"] == {"max_upload_bytes": 2048}
    finally:
        small.stop()


def _same(answer: httpx.Response, expected: Any) -> None:
    """The route answers what the service returned: same keys in the same order, same
    values (through JSON, as the routes answered before they were typed)."""
    body = answer.json()
    wanted = json.loads(json.dumps(expected))
    assert body == wanted
    if isinstance(wanted, dict):
        assert list(body) == list(wanted)
    elif wanted:
        assert list(body[0]) == list(wanted[0])


async def test_typed_routes_answer_what_the_services_return(
    document: dict[str, Any], server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    publish(api, plugin_wheel(tmp_path, name, "1.0.0"))
    agent = ProtocolAgent(server, jobs_enabled=True)
    await agent.connect(labels={"tier": name})
    await agent.desired()
    try:
        aid = agent.agent_id
        db, call = server.state.db, server.call
        installed = await asyncio.to_thread(
            api.post, f"/agents/{aid}/plugins", json={"plugin": name})
        assert installed.status_code == 202, installed.text
        _validator(document, "#/components/schemas/InstallResult").validate(installed.json())
        agent.report(1, status(name, "1.0.0", "running", isolation="inline"))
        agent.heartbeat(1)

        def reported() -> bool:
            rows = call(db.read(plugin_states.agent_plugins, aid))
            return bool(rows and rows[0]["actual"])

        await _poll(reported)
        job = await asyncio.to_thread(api.post, "/jobs", json={
            "agent": aid, "commands": ["true"], "plugins": [{"plugin": name, "stage": "after"}]})
        assert job.status_code == 201, job.text
        assert job.headers["location"] == f"/api/v1/jobs/{job.json()['id']}"
        job_id = job.json()["id"]

        def get(url: str, **params: Any) -> httpx.Response:
            response = api.get(url, params=params)
            assert response.status_code == 200, response.text
            return response

        offline_after = server.state.settings.offline_after
        _same(await asyncio.to_thread(get, f"/plugins/{name}/versions/1.0.0"),
              call(db.read(registry.get_version, name, "1.0.0")))
        _same(await asyncio.to_thread(get, f"/plugins/{name}"),
              call(db.read(registry.get_plugin, name)))
        _same(await asyncio.to_thread(get, "/plugins", text=name),
              call(db.read(registry.list_plugins, text=name)))
        _same(await asyncio.to_thread(get, f"/agents/{aid}/plugins"),
              call(db.read(plugin_states.agent_plugins, aid)))
        _same(await asyncio.to_thread(get, f"/agents/{aid}/metrics"),
              call(db.read(metrics.query, aid)))
        _same(await asyncio.to_thread(get, f"/jobs/{job_id}"),
              call(db.read(jobs.get_job, job_id)))
        _same(await asyncio.to_thread(get, "/jobs", agent=aid),
              call(db.read(jobs.list_jobs, agent=aid)))
        listed = (await asyncio.to_thread(get, "/agents", label=f"tier={name}")).json()
        expected = call(db.read(agents.list_agents, last_seen=server.state.presence.snapshot(),
                                offline_after=offline_after, labels={"tier": name}))
        assert [list(a) for a in listed] == [list(a) for a in expected]
        assert [{**a, "last_seen": None} for a in listed] == \
            [{**a, "last_seen": None} for a in json.loads(json.dumps(expected))]
        one = (await asyncio.to_thread(get, f"/agents/{aid}")).json()
        assert list(one) == [*expected[0], "connected"] and one["connected"] is True
        for url, ref in [
            (f"/plugins/{name}/versions/1.0.0", "VersionDetail"),
            (f"/agents/{aid}", "AgentDetail"),
            (f"/jobs/{job_id}", "Job"),
        ]:
            body = (await asyncio.to_thread(get, url)).json()
            _validator(document, f"#/components/schemas/{ref}").validate(body)
        cancelled = await asyncio.to_thread(api.post, f"/jobs/{job_id}/cancel")
        assert cancelled.status_code in (200, 202), cancelled.text
        _validator(document, "#/components/schemas/CancelledJob").validate(cancelled.json())
        assert list(cancelled.json())[-1] == "cancel_sent"
    finally:
        await agent.close()


async def _poll(check: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(check):
        assert loop.time() < deadline, "timed out waiting for the agent's report"
        await asyncio.sleep(0.05)
