"""Fixtures for the server tests: real databases (SQLite and PostgreSQL), a real server.

* ``database`` — a migrated :class:`Database`, once on SQLite and once on PostgreSQL (each
  test gets a fresh copy of a template migrated once per session).
* ``server`` — the real runner (uvicorn + grpc.aio) in a background thread, on loopback
  ports chosen by the OS, SQLite in a temp home; one per test module.
* ``api`` — an httpx client for ``/api/v1`` of that server.
* ``arcade`` — ``arcade ARGS... --api <that server>`` run in this process through the
  dispatcher: (exit status, stdout, stderr).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from arcade_server.db import migrate
from arcade_server.db.engine import Database, make_engine
from arcade_server.runner import ServerThread
from arcade_server.settings import Settings
from tests.pg import PostgresCluster, postgres  # noqa: F401 (session fixture)

_SQLITE_TEMPLATE = "template.db"

#: The ``arcade`` fixture: ``arcade("status", "--agent", ID)`` → (status, stdout, stderr).
Arcade = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / _SQLITE_TEMPLATE
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def pg_template(postgres: PostgresCluster) -> str:  # noqa: F811
    url = postgres.create_database()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url.rsplit("/", 1)[1]


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "arcade.db"
        shutil.copyfile(template, path)
        db = Database(f"sqlite:///{path}", threads=4)
        yield db
        db.close()
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    url = cluster.create_database(template=request.getfixturevalue("pg_template"))
    db = Database(url, threads=4)
    yield db
    db.close()
    cluster.drop_database(url)


def start_server(home: Path, **overrides: Any) -> ServerThread:
    """Start the real server on loopback ports chosen by the OS."""
    settings = Settings(home=home, http_port=0, grpc_port=0, **overrides)
    return ServerThread(settings).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    running = start_server(tmp_path_factory.mktemp("server-home"))
    yield running
    running.stop()


@pytest.fixture
def api(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.http_url + "/api/v1",
                      headers=server.auth_headers, timeout=30) as client:
        yield client


@pytest.fixture
def arcade(server: ServerThread, capsys: pytest.CaptureFixture[str],
           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Arcade:
    """``arcade ARGS... --api <the test server>`` in this process: (status, stdout, stderr)."""
    from arcade_core.commands import main

    for name in ("ARCADE_API", "ARCADE_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("ARCADE_TOKEN", server.admin_token)

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main([*args, "--api", server.http_url])
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke
