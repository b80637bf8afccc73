"""Registry service functions against SQLite and a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from arcade_server.db import tables as t
from arcade_server.db.engine import Database
from arcade_server.errors import Conflict, Invalid, NotFound
from arcade_server.services import publishing, registry
from arcade_server.storage import LocalBlobStore
from tests.server.helpers import db_row, dependency_wheel, plugin_wheel, unique


def _record(db: Database, *paths: Path) -> publishing.PublishResult:
    return db.call(publishing.record_version, publishing.inspect_upload(list(paths)))


def test_record_version_stores_plugin_version_wheels_and_blobs(
    database: Database, tmp_path: Path
) -> None:
    name, dep = unique(), unique("dep")
    result = _record(database, plugin_wheel(tmp_path, name, requires=[dep]),
                     dependency_wheel(tmp_path, dep, "2.0"))
    assert result.created is True
    with database.transaction(write=False) as conn:
        assert conn.scalar(select(func.count()).select_from(t.blobs)) == 2
        version = conn.execute(select(t.plugin_versions)).one()
        assert (version.plugin_name, version.version, version.type) == (name, "1.0.0",
                                                                         "collector")
        wheels = conn.execute(select(t.plugin_version_wheels.c.position,
                                     t.plugin_version_wheels.c.name)
                              .order_by(t.plugin_version_wheels.c.position)).all()
        assert [tuple(w) for w in wheels] == [(0, name), (1, dep)]
        assert db_row(conn, t.plugins, name) is not None


def test_identical_record_is_idempotent_and_different_content_conflicts(
    database: Database, tmp_path: Path
) -> None:
    name = unique()
    wheel = plugin_wheel(tmp_path / "a", name)
    assert _record(database, wheel).created is True
    assert _record(database, wheel).created is False
    with pytest.raises(Conflict, match="different content"):
        _record(database, plugin_wheel(tmp_path / "b", name, summary="other"))
    with database.transaction(write=False) as conn:
        assert conn.scalar(select(func.count()).select_from(t.plugin_versions)) == 1


def test_shared_dependency_blob_is_stored_once_and_kept_while_used(
    database: Database, tmp_path: Path
) -> None:
    dep = unique("dep")
    dep_wheel = dependency_wheel(tmp_path, dep, "1.0")
    one, two = unique(), unique()
    _record(database, plugin_wheel(tmp_path, one, requires=[dep]), dep_wheel)
    _record(database, plugin_wheel(tmp_path, two, requires=[dep]), dep_wheel)
    with database.transaction(write=False) as conn:
        assert conn.scalar(select(func.count()).select_from(t.blobs)) == 3
    orphans = database.call(registry.delete_version, one, "1.0.0")
    assert len(orphans) == 1  # only the plugin wheel of `one`; the shared dep stays
    with database.transaction(write=False) as conn:
        assert conn.scalar(select(func.count()).select_from(t.blobs)) == 2
        assert db_row(conn, t.plugins, one) is None
        assert conn.scalar(select(func.count()).select_from(t.plugin_version_wheels)) == 2


def test_resolve_picks_the_highest_matching_enabled_version(
    database: Database, tmp_path: Path
) -> None:
    name = unique()
    for version in ("1.0.0", "1.4.0", "2.0.0rc1", "2.0.0"):
        _record(database, plugin_wheel(tmp_path / version, name, version))
    with database.transaction() as conn:
        assert registry.resolve(conn, name).version == "2.0.0"
        assert registry.resolve(conn, f"{name}@<2").version == "1.4.0"
        assert registry.resolve(conn, f"{name}@2.0.0rc1").version == "2.0.0rc1"
        published = r"published versions: 2\.0\.0, 2\.0\.0rc1, 1\.4\.0, 1\.0\.0"
        with pytest.raises(Invalid, match=published):
            registry.resolve(conn, f"{name}@>=3")
        with pytest.raises(Invalid, match="invalid plugin spec"):
            registry.resolve(conn, "bad name@1")
        with pytest.raises(NotFound):
            registry.resolve(conn, "missing-plugin")
    database.call(registry.set_enabled, name, False)
    with database.transaction() as conn, pytest.raises(Conflict, match="disabled"):
        registry.resolve(conn, name)


def test_list_and_get_read_back_what_was_recorded(database: Database, tmp_path: Path) -> None:
    name = unique()
    _record(database, plugin_wheel(tmp_path, name, summary="Widget counter"))
    with database.transaction(write=False) as conn:
        listed = registry.list_plugins(conn, text="WIDGET")
        assert [p["name"] for p in listed] == [name]
        assert registry.list_plugins(conn, type="notifier") == []
        assert registry.get_plugin(conn, name)["latest"] == "1.0.0"
        version = registry.get_version(conn, name, "1.0")  # PEP 440 equal to 1.0.0
        assert version["version"] == "1.0.0"
        assert version["agents"] == []


def test_publish_stores_blobs_verified(database: Database, tmp_path: Path) -> None:
    import asyncio

    store = LocalBlobStore(tmp_path / "blobs")
    wheel = plugin_wheel(tmp_path, unique())
    result = asyncio.run(publishing.publish(database, store, [wheel]))
    assert store.exists(result.version["sha256"])
    assert store.size(result.version["sha256"]) == wheel.stat().st_size
