"""The registry over REST: real wheels published to a real uvicorn through httpx."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from arcade_server.runner import ServerThread
from tests.pg import PostgresCluster
from tests.server.conftest import start_server
from tests.server.helpers import dependency_wheel, plugin_wheel, publish, unique, upload
from tests.waiting import DEADLINE
from tests.wheelmaker import make_wheel


def test_publish_stores_the_version_and_its_blob_once(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    wheel = plugin_wheel(tmp_path, name, "1.0.0", summary="counts things")
    response = upload(api, wheel)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] is True
    assert (body["name"], body["version"]) == (name, "1.0.0")
    assert body["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert body["size"] == wheel.stat().st_size
    assert body["manifest"]["config_schema"]["properties"]["threshold"]["default"] == 10
    assert body["entry_point"] == f"{name.replace('-', '_')}:Plugin"
    blob = server.state.store.path(body["sha256"])
    assert blob is not None and blob.read_bytes() == wheel.read_bytes()


def test_publish_with_dependency_wheels_records_them_in_install_order(
    api: httpx.Client, tmp_path: Path
) -> None:
    name, dep, subdep = unique(), unique("dep"), unique("sub")
    plugin = plugin_wheel(tmp_path, name, requires=[f"{dep}>=2", "pluggy>=1"])
    dep_module = dep.replace("-", "_")
    dependency = make_wheel(tmp_path, dep, "2.1", entry_points=[], requires=[subdep],
                            files={f"{dep_module}/__init__.py": "X = 1\n"})
    sub = dependency_wheel(tmp_path, subdep, "0.3")
    unrelated = dependency_wheel(tmp_path, unique("extra"), "1.0")
    response = upload(api, sub, unrelated, dependency, plugin)
    assert response.status_code == 201, response.text
    body = response.json()
    assert [w["name"] for w in body["wheels"]] == [name, dep, subdep]
    assert body["ignored"] == [unrelated.name]
    version = api.get(f"/plugins/{name}/versions/1.0.0").json()
    assert [w["filename"] for w in version["wheels"]] == [plugin.name, dependency.name, sub.name]
    assert version["requires_dist"] == [f"{dep}>=2", "pluggy>=1"]


def test_republish_identical_is_200_and_different_content_is_409(
    api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    first = plugin_wheel(tmp_path / "a", name, "3.0.0")
    assert upload(api, first).status_code == 201
    again = upload(api, first)
    assert again.status_code == 200
    assert again.json()["created"] is False
    other = plugin_wheel(tmp_path / "b", name, "3.0.0", summary="changed")
    conflict = upload(api, other)
    assert conflict.status_code == 409
    assert "already published with different content" in conflict.json()["error"]
    assert "bump the version" in conflict.json()["error"]


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda d, n: make_wheel(d, n, extra_members={"../../evil.py": b"x = 1\n"}),
         "evil.py"),
        (lambda d, n: make_wheel(d, n, symlinks={f"{n.replace('-', '_')}/link": "/etc/passwd"}),
         "symlink"),
        (lambda d, n: make_wheel(d, n, bad_record_for=f"{n.replace('-', '_')}/__init__.py"),
         "RECORD"),
        (lambda d, n: make_wheel(d, n, manifest='{"isolation": "sideways"}'), "isolation"),
        (lambda d, n: make_wheel(d, n, manifest="{not json"), "not valid JSON"),
        (lambda d, n: make_wheel(d, n, requires_python=">=4"), "Python"),
        (lambda d, n: make_wheel(d, n, tag="cp27-cp27mu-manylinux1_x86_64"),
         "does not support"),
    ],
    ids=["path-traversal", "symlink", "bad-record-hash", "bad-isolation", "manifest-not-json",
         "requires-python", "incompatible-tag"],
)
def test_hostile_or_malformed_wheels_are_refused_with_the_reason(
    api: httpx.Client, tmp_path: Path, build: Any, reason: str
) -> None:
    name = unique()
    response = upload(api, build(tmp_path, name))
    assert response.status_code == 422, response.text
    body = response.json()
    assert reason.lower() in body["error"].lower()
    assert body["detail"]["problems"]
    assert api.get(f"/plugins/{name}").status_code == 404


def test_a_file_that_is_not_a_zip_is_refused(api: httpx.Client, tmp_path: Path) -> None:
    fake = tmp_path / "fake_plugin-1.0.0-py3-none-any.whl"
    fake.write_bytes(b"this is not a zip archive")
    response = upload(api, fake)
    assert response.status_code == 422
    assert "zip" in response.json()["error"].lower()


def test_upload_without_a_plugin_wheel_or_with_two_is_refused(
    api: httpx.Client, tmp_path: Path
) -> None:
    only_dep = upload(api, dependency_wheel(tmp_path, unique("dep")))
    assert only_dep.status_code == 422
    assert "arcade.plugins" in only_dep.json()["error"]
    two = upload(api, plugin_wheel(tmp_path, unique()), plugin_wheel(tmp_path, unique()))
    assert two.status_code == 422
    assert "publish one plugin at a time" in two.json()["error"]
    several_eps = make_wheel(tmp_path, unique(), entry_points=["a = x:A", "b = x:B"])
    response = upload(api, several_eps)
    assert response.status_code == 422
    assert "2 entry points" in response.json()["error"]


def test_missing_or_incompatible_requirements_are_refused_naming_them(
    api: httpx.Client, tmp_path: Path
) -> None:
    dep = unique("dep")
    missing = upload(api, plugin_wheel(tmp_path, unique(), requires=[f"{dep}>=1"]))
    assert missing.status_code == 422
    assert dep in missing.json()["error"]
    too_old = upload(api, plugin_wheel(tmp_path, unique(), requires=[f"{dep}>=2"]),
                     dependency_wheel(tmp_path, dep, "1.0"))
    assert too_old.status_code == 422
    assert dep in too_old.json()["error"]
    host = upload(api, plugin_wheel(tmp_path, unique(), requires=["pluggy<1"]))
    assert host.status_code == 422
    assert "pluggy" in host.json()["error"]


def test_bad_multipart_requests_get_422_saying_how_to_upload(
    api: httpx.Client, tmp_path: Path
) -> None:
    not_multipart = api.post("/plugins", json={"wheels": []})
    assert not_multipart.status_code == 422
    assert "multipart/form-data" in not_multipart.json()["error"]
    wrong_field = api.post(
        "/plugins", files=[("file", ("x.whl", b"data", "application/octet-stream"))]
    )
    assert wrong_field.status_code == 422
    assert "'wheels'" in wrong_field.json()["error"]
    not_wheel = api.post(
        "/plugins", files=[("wheels", ("notes.txt", b"hello", "text/plain"))]
    )
    assert not_wheel.status_code == 422
    assert ".whl" in not_wheel.json()["error"]
    empty = api.post("/plugins", files=[], data={})
    assert empty.status_code == 422
    truncated = api.post(
        "/plugins", content=b"--abc\r\nContent-Disposition: form-data; name=\"wheels\"; "
        b"filename=\"a.whl\"\r\n\r\nPK",
        headers={"Content-Type": "multipart/form-data; boundary=abc"},
    )
    assert truncated.status_code == 422


def test_uploads_over_the_limit_are_refused_with_413(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", max_upload_bytes=64 * 1024)
    try:
        name = unique()
        module = name.replace("-", "_")
        big = plugin_wheel(tmp_path, name, files={
            f"{module}/__init__.py": "class Plugin:\n    def __init__(self, c):\n        pass\n",
            f"{module}/blob.bin": os.urandom(200 * 1024),
        })
        with httpx.Client(base_url=server.http_url + "/api/v1",
                          headers=server.auth_headers, timeout=30) as api:
            declared = upload(api, big)
            assert declared.status_code == 413
            assert "max_upload_bytes" in declared.json()["error"]

            def chunks() -> Any:  # no Content-Length: the limit is enforced while streaming
                data = (b"--b\r\nContent-Disposition: form-data; name=\"wheels\"; "
                        b"filename=\"big.whl\"\r\n\r\n") + bytes(200 * 1024) + b"\r\n--b--\r\n"
                for i in range(0, len(data), 16 * 1024):
                    yield data[i:i + 16 * 1024]

            streamed = api.post("/plugins", content=chunks(),
                                headers={"Content-Type": "multipart/form-data; boundary=b"})
            assert streamed.status_code == 413
            assert api.get("/plugins").json() == []
        assert not list((tmp_path / "home" / "uploads").iterdir())
    finally:
        server.stop()


def _race(url: str, wheels: list[Path], headers: dict[str, str]) -> list[int]:
    barrier = threading.Barrier(len(wheels))
    statuses: list[int] = [0] * len(wheels)

    def one(i: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            files = [("wheels", (wheels[i].name, wheels[i].read_bytes()))]
            barrier.wait(DEADLINE)  # all post at once (a failed thread breaks it)
            statuses[i] = client.post("/plugins", files=files).status_code

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(wheels))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.e2e
def test_concurrent_publishes_of_one_version_have_one_winner_and_no_corrupt_state(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    overrides: dict[str, Any] = {}
    cluster: PostgresCluster | None = None
    if backend == "postgres":
        cluster = request.getfixturevalue("postgres")
        overrides["database_url"] = cluster.create_database()
    server = start_server(tmp_path / "home", **overrides)
    try:
        url = server.http_url + "/api/v1"
        name = unique()
        different = [plugin_wheel(tmp_path / f"v{i}", name, "1.0.0", summary=f"variant {i}")
                     for i in range(4)]
        statuses = _race(url, different, server.auth_headers)
        assert sorted(statuses) == [201, 409, 409, 409]
        winner = different[statuses.index(201)]
        with httpx.Client(base_url=url, headers=server.auth_headers, timeout=30) as api:
            version = api.get(f"/plugins/{name}/versions/1.0.0").json()
            assert version["sha256"] == hashlib.sha256(winner.read_bytes()).hexdigest()
            assert len(version["wheels"]) == 1
            assert api.get(f"/plugins/{name}").json()["versions"] == ["1.0.0"]
        same = plugin_wheel(tmp_path / "same", unique(), "2.0.0")
        statuses = _race(url, [same] * 4, server.auth_headers)
        assert sorted(statuses) == [200, 200, 200, 201]
    finally:
        server.stop()
        if cluster is not None:
            cluster.drop_database(overrides["database_url"])


def test_list_filters_by_type_enabled_and_text(api: httpx.Client, tmp_path: Path) -> None:
    tag = unique("tag")
    collector = unique(f"{tag}-col")
    notifier = unique(f"{tag}-not")
    publish(api, plugin_wheel(tmp_path, collector, summary="Collects the Widgets"))
    publish(api, plugin_wheel(tmp_path, notifier, manifest={
        "type": "notifier", "description": "sends 100% of events"}))
    assert api.post(f"/plugins/{notifier}/disable").json()["enabled"] is False

    def names(**params: Any) -> list[str]:
        return [p["name"] for p in api.get("/plugins", params=params).json()
                if p["name"].startswith(tag)]

    assert sorted(names()) == sorted([collector, notifier])
    assert names(type="notifier") == [notifier]
    assert names(enabled="false") == [notifier]
    assert names(enabled="true") == [collector]
    assert names(text="widgets") == [collector]
    assert names(text="100%") == [notifier]
    assert names(text=tag + "-col") == [collector]


def test_get_plugin_lists_versions_newest_first_and_latest(
    api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    for version in ("1.0.0", "1.10.0", "1.2.0"):
        publish(api, plugin_wheel(tmp_path / version, name, version))
    plugin = api.get(f"/plugins/{name}").json()
    assert plugin["versions"] == ["1.10.0", "1.2.0", "1.0.0"]
    assert plugin["latest"] == "1.10.0"
    assert [r["version"] for r in api.get(f"/plugins/{name}/versions").json()] == plugin[
        "versions"]
    assert api.get(f"/plugins/{name.upper()}").json()["name"] == name
    missing = api.get(f"/plugins/{name}/versions/9.9")
    assert missing.status_code == 404
    assert "1.10.0, 1.2.0, 1.0.0" in missing.json()["error"]
    assert api.get("/plugins/no-such-plugin-here").status_code == 404
    assert api.get("/plugins/bad name!").status_code == 404


def test_delete_version_removes_it_and_its_unused_blob(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    body = publish(api, plugin_wheel(tmp_path, name, "1.0.0"))
    publish(api, plugin_wheel(tmp_path / "2", name, "2.0.0"))
    blob = server.state.store.path(body["sha256"])
    assert blob is not None and blob.exists()
    response = api.delete(f"/plugins/{name}/versions/1.0.0")
    assert response.status_code == 204
    assert not blob.exists()
    assert api.get(f"/plugins/{name}").json()["versions"] == ["2.0.0"]
    assert api.delete(f"/plugins/{name}/versions/1.0.0").status_code == 404
    assert api.delete(f"/plugins/{name}/versions/2.0.0").status_code == 204
    assert api.get(f"/plugins/{name}").status_code == 404


def test_validate_is_a_dry_run_that_reports_every_problem(
    api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    wheel = plugin_wheel(tmp_path, name)
    ok = upload(api, wheel, url="/plugins/validate")
    assert ok.status_code == 200, ok.text
    assert ok.json()["valid"] is True
    assert ok.json()["would_record"]["name"] == name
    assert api.get(f"/plugins/{name}").status_code == 404  # nothing recorded
    bad = upload(
        api,
        make_wheel(tmp_path / "x", unique(), extra_members={"../x.py": b""}),
        make_wheel(tmp_path / "y", unique(), requires_python=">=4"),
        url="/plugins/validate",
    )
    assert bad.status_code == 422
    assert len(bad.json()["detail"]["problems"]) == 2
    publish(api, wheel)
    again = upload(api, wheel, url="/plugins/validate").json()
    assert "identical" in again["existing"]


def test_disabled_plugin_cannot_be_enabled_when_unknown(api: httpx.Client) -> None:
    response = api.post("/plugins/nothing-like-this/enable")
    assert response.status_code == 404
    assert response.json()["error"].startswith("no plugin named")


def test_openapi_and_docs_are_served(server: ServerThread) -> None:
    spec = httpx.get(server.http_url + "/openapi.json", timeout=30).json()
    assert "/api/v1/plugins" in spec["paths"]
    assert "/api/v1/agents/{agent_id}/plugins" in spec["paths"]
    assert httpx.get(server.http_url + "/docs", timeout=30).status_code == 200
