"""Import from a package index over REST: a real PEP 503/691 index served from tmp_path, real
wheels, a real server resolving with pip (no test uses the public index)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from arcade_server.runner import ServerThread
from arcade_server.services import agents
from tests.server.conftest import start_server
from tests.server.helpers import dependency_wheel, plugin_wheel, unique
from tests.server.package_index import LocalIndex
from tests.wheelmaker import make_wheel


@pytest.fixture
def index(tmp_path: Path) -> Iterator[LocalIndex]:
    with LocalIndex(tmp_path / "index") as served:
        yield served


def _blobs(server: ServerThread) -> set[str]:
    return {p.name for p in server.state.settings.blob_dir.rglob("*") if p.is_file()}


def test_import_publishes_the_plugin_with_its_dependencies(
    server: ServerThread, api: httpx.Client, index: LocalIndex, tmp_path: Path
) -> None:
    name, dep, sub = unique("arcade-imp"), unique("dep"), unique("sub")
    plugin = plugin_wheel(tmp_path, name, "1.2.0",
                          requires=[f"{dep}>=2", "arcade-fleet>=0", "pluggy>=1",
                                    f"{unique('win')}; sys_platform == 'win32'"])
    dep_module = dep.replace("-", "_")
    index.add(plugin)
    index.add(plugin_wheel(tmp_path, name, "1.1.0"))
    index.add(make_wheel(tmp_path, dep, "2.1", entry_points=[], requires=[sub],
                         files={f"{dep_module}/__init__.py": "X = 1\n"}))
    index.add(dependency_wheel(tmp_path, dep, "1.0"))
    index.add(dependency_wheel(tmp_path, sub, "0.3"))
    response = api.post("/plugins/import", json={"requirement": name, "index_url": index.url})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["version"], body["created"]) == (name, "1.2.0", True)
    assert [(w["name"], w["version"]) for w in body["wheels"]] == [
        (name, "1.2.0"), (dep, "2.1"), (sub, "0.3")]
    assert body["sha256"] == hashlib.sha256(plugin.read_bytes()).hexdigest()
    assert body["index_url"] == index.url and body["requirement"] == name
    # No agent has registered in this server: its own platform, and the answer says so.
    assert len(body["platforms"]) == 1 and "server's own" in body["note"]
    # The projects the host provides are never asked of the index.
    assert not [r for r in index.requests if "/arcade-fleet/" in r or "/pluggy/" in r]
    stored = api.get(f"/plugins/{name}/versions/1.2.0").json()
    assert stored["wheels"][0]["filename"] == plugin.name
    again = api.post("/plugins/import", json={"requirement": f"{name}==1.2.0",
                                              "index_url": index.url})
    assert again.status_code == 200, again.text
    assert again.json()["created"] is False
    # Nothing is left in the upload directory.
    assert not list(server.state.settings.upload_dir.iterdir())
    # The audit log names the version imported.
    rows = api.get("/audit", params={"target": f"plugins/{name}"}).json()
    assert {(r["action"], r["target"]) for r in rows} == {
        ("POST /api/v1/plugins/import", f"plugins/{name}/versions/1.2.0")}


def test_a_wheel_over_max_wheel_bytes_is_refused_and_nothing_is_left(
    tmp_path: Path, index: LocalIndex
) -> None:
    name = unique("arcade-big")
    module = name.replace("-", "_")
    index.add(plugin_wheel(tmp_path, name, "1.0", files={
        f"{module}/__init__.py": "", f"{module}/blob.bin": os.urandom(64 * 1024)}))
    server = start_server(tmp_path / "home", max_wheel_bytes=16 * 1024)
    try:
        with httpx.Client(base_url=server.http_url + "/api/v1", headers=server.auth_headers,
                          timeout=60) as api:
            response = api.post("/plugins/import",
                                json={"requirement": name, "index_url": index.url})
            assert api.get(f"/plugins/{name}").status_code == 404
        assert not list(server.state.settings.upload_dir.iterdir())
    finally:
        server.stop()
    assert response.status_code == 413, response.text
    assert "max_wheel_bytes" in response.json()["error"]


def test_import_reads_pep_691_json_pages(api: httpx.Client, tmp_path: Path) -> None:
    name = unique("arcade-json")
    with LocalIndex(tmp_path / "json-index", json_pages=True) as index:
        index.add(plugin_wheel(tmp_path, name, "3.0"))
        response = api.post("/plugins/import", json={"requirement": f"{name}==3.0",
                                                     "index_url": index.url})
    assert response.status_code == 201, response.text
    assert response.json()["version"] == "3.0"


def test_a_hash_mismatch_is_refused_and_nothing_is_published(
    server: ServerThread, api: httpx.Client, index: LocalIndex, tmp_path: Path
) -> None:
    name, dep = unique("arcade-bad"), unique("dep")
    index.add(plugin_wheel(tmp_path, name, "1.0", requires=[dep]))
    index.add(dependency_wheel(tmp_path, dep, "1.0"), published_sha256="0" * 64)
    before = _blobs(server)
    response = api.post("/plugins/import", json={"requirement": name, "index_url": index.url})
    assert response.status_code == 422, response.text
    assert "hash mismatch" in response.json()["error"]
    assert api.get(f"/plugins/{name}").status_code == 404
    assert _blobs(server) == before
    assert not list(server.state.settings.upload_dir.iterdir())


def test_a_file_the_index_publishes_no_hash_for_is_refused(
    api: httpx.Client, index: LocalIndex, tmp_path: Path
) -> None:
    name = unique("arcade-nohash")
    index.add(plugin_wheel(tmp_path, name, "1.0"), hashes=False)
    response = api.post("/plugins/import", json={"requirement": name, "index_url": index.url})
    assert response.status_code == 422, response.text
    assert "publishes no sha256" in response.json()["error"]
    assert api.get(f"/plugins/{name}").status_code == 404


def test_no_matching_version_and_no_such_project(
    api: httpx.Client, index: LocalIndex, tmp_path: Path
) -> None:
    name = unique("arcade-ver")
    index.add(plugin_wheel(tmp_path, name, "1.0"))
    response = api.post("/plugins/import", json={"requirement": f"{name}>=2",
                                                 "index_url": index.url})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert f"no version of {name}" in error and "1.0" in error
    missing = api.post("/plugins/import", json={"requirement": "nothing-like-it",
                                                "index_url": index.url})
    assert missing.status_code == 422
    assert "has no project 'nothing-like-it'" in missing.json()["error"]


def test_no_wheel_for_the_platform_names_the_platform_and_the_project(
    api: httpx.Client, index: LocalIndex, tmp_path: Path
) -> None:
    name, native = unique("arcade-plat"), unique("native")
    index.add(plugin_wheel(tmp_path, name, "1.0", requires=[native]))
    index.add(make_wheel(tmp_path, native, "1.0", entry_points=[], tag="cp311-cp311-win_amd64",
                         files={f"{native.replace('-', '_')}/__init__.py": ""}))
    response = api.post("/plugins/import", json={"requirement": name, "index_url": index.url})
    assert response.status_code == 422, response.text
    body = response.json()
    assert f"{native} has no wheel for linux" in body["error"]
    assert body["detail"]["project"] == native
    assert api.get(f"/plugins/{name}").status_code == 404


def test_import_resolves_for_the_platforms_agents_report(
    tmp_path: Path, index: LocalIndex
) -> None:
    """Agents on Windows: the Windows wheel is found, and a project without one is refused
    naming the agents' platform (the publish itself then needs wheels for the server's)."""
    name, native = unique("arcade-win"), unique("native")
    index.add(plugin_wheel(tmp_path, name, "1.0", requires=[native]))
    index.add(make_wheel(tmp_path, native, "1.0", entry_points=[],
                         tag="cp311-cp311-manylinux_2_17_x86_64",
                         files={f"{native.replace('-', '_')}/__init__.py": ""}))
    server = start_server(tmp_path / "home")
    try:
        server.call(server.state.db.run(agents.register, agents.AgentInfo(
            "win-1", os="windows", arch="AMD64", python_version="3.11.9")))
        with httpx.Client(base_url=server.http_url + "/api/v1", headers=server.auth_headers,
                          timeout=60) as api:
            response = api.post("/plugins/import",
                                json={"requirement": name, "index_url": index.url})
    finally:
        server.stop()
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["detail"] == {"project": native, "platform": "windows AMD64, Python 3.11.9"}


def test_updates_reports_newer_versions_on_the_index(
    api: httpx.Client, index: LocalIndex, tmp_path: Path
) -> None:
    name = unique("arcade-upd")
    index.add(plugin_wheel(tmp_path, name, "1.0"))
    assert api.post("/plugins/import", json={"requirement": f"{name}==1.0",
                                             "index_url": index.url}).status_code == 201
    current = api.get(f"/plugins/{name}/updates")
    assert current.status_code == 200, current.text
    assert current.json() == {"name": name, "index_url": index.url, "published": "1.0",
                              "latest": "1.0", "newer": [], "up_to_date": True}
    index.add(plugin_wheel(tmp_path, name, "1.1"))
    index.add(plugin_wheel(tmp_path, name, "2.0rc1"))
    body = api.get(f"/plugins/{name}/updates").json()
    assert (body["newer"], body["latest"], body["up_to_date"]) == (["1.1"], "1.1", False)


def test_updates_of_a_plugin_never_imported_asks_for_the_index(
    api: httpx.Client, index: LocalIndex, tmp_path: Path
) -> None:
    name = unique("arcade-up")
    wheel = plugin_wheel(tmp_path, name, "1.0")
    files = [("wheels", (wheel.name, wheel.read_bytes(), "application/octet-stream"))]
    assert api.post("/plugins", files=files).status_code == 201
    response = api.get(f"/plugins/{name}/updates")
    assert response.status_code == 409
    assert "?index_url=" in response.json()["error"]
    assert response.json()["hints"] == [{"rest": "?index_url=", "cli": "--index-url"}]
    index.add(plugin_wheel(tmp_path, name, "1.5"))
    named = api.get(f"/plugins/{name}/updates", params={"index_url": index.url})
    assert named.status_code == 200 and named.json()["newer"] == ["1.5"]
    assert api.get("/plugins/nothing-here/updates").status_code == 404


@pytest.mark.parametrize(("body", "expected"), [
    ({"requirement": "not a requirement!"}, "not a PEP 508 requirement"),
    ({"requirement": ""}, "requirement is empty"),
    ({"requirement": "foo @ https://example.com/foo.whl"}, "direct URL"),
    ({"requirement": "foo; os_name == 'nt'"}, "environment marker"),
    ({"requirement": "foo", "index_url": "file:///etc/"}, "http:// or https://"),
    ({"requirement": "foo", "index_url": "ftp://example.com/simple/"}, "http:// or https://"),
    ({"requirement": "foo", "index_url": "https://user:secret@example.com/simple/"},
     "credentials"),
    ({"requirement": "foo", "index_url": "example.com/simple"}, "no scheme"),
])
def test_bad_input_is_refused_with_a_message(api: httpx.Client, body: dict[str, str],
                                             expected: str) -> None:
    response = api.post("/plugins/import", json=body)
    assert response.status_code == 422, response.text
    assert expected in response.json()["error"]
    assert "secret" not in response.text


def test_bad_index_url_of_updates_and_an_unreachable_index(
    api: httpx.Client, index: LocalIndex, tmp_path: Path
) -> None:
    name = unique("arcade-x")
    index.add(plugin_wheel(tmp_path, name, "1.0"))
    assert api.post("/plugins/import", json={"requirement": name,
                                             "index_url": index.url}).status_code == 201
    refused = api.get(f"/plugins/{name}/updates", params={"index_url": "file:///etc/"})
    assert refused.status_code == 422 and "http:// or https://" in refused.json()["error"]
    index.close()
    gone = api.get(f"/plugins/{name}/updates")
    assert gone.status_code == 502 and "cannot read the index" in gone.json()["error"]
    unreachable = api.post("/plugins/import", json={"requirement": name,
                                                    "index_url": index.url})
    assert unreachable.status_code == 502


def test_index_allow_restricts_the_indexes(tmp_path: Path, index: LocalIndex) -> None:
    server = start_server(tmp_path / "home", index_allow=("https://pypi.example.com/simple/",),
                          index_url="https://pypi.example.com/simple/")
    try:
        with httpx.Client(base_url=server.http_url + "/api/v1", headers=server.auth_headers,
                          timeout=60) as api:
            response = api.post("/plugins/import",
                                json={"requirement": "foo", "index_url": index.url})
    finally:
        server.stop()
    assert response.status_code == 422
    assert "index_allow" in response.json()["error"]
