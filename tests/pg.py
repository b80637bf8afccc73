"""A real PostgreSQL for the tests: ``$ARCADE_TEST_POSTGRES_URL``, or a throwaway cluster.

Without the variable, the session fixture :func:`postgres` runs ``initdb`` and ``pg_ctl``
(PostgreSQL 15 binaries on PATH) in a temp dir on a free loopback port, as the ``postgres``
user when the tests run as root (initdb refuses root), with durability off for speed; the
cluster is stopped and deleted at the end of the session. With the variable, it must be an
admin URL (``postgresql://user:pass@host:port/db``) allowed to create databases.

Tests get a fresh database each (``CREATE DATABASE ... TEMPLATE``, a copy of a template
prepared once): cheap, and no test sees another's rows. If PostgreSQL is not available the
tests that need it are skipped with the reason — unless ``CI`` or
``ARCADE_REQUIRE_POSTGRES`` is set, in which case they fail.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["PostgresCluster", "postgres", "start_cluster"]

ENV_URL = "ARCADE_TEST_POSTGRES_URL"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class PostgresCluster:
    """An admin connection target; databases created here are dropped by :meth:`stop`."""

    host: str
    port: int
    user: str
    password: str = ""
    admin_db: str = "postgres"
    data_dir: Path | None = None
    _created: list[str] = field(default_factory=list)

    def url(self, database: str) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, password=self.password or None,
            dbname=self.admin_db, autocommit=True, connect_timeout=10,
        ) as conn:
            conn.execute(sql.encode())

    def create_database(self, template: str | None = None) -> str:
        """Create a new empty (or template-copied) database; return its SQLAlchemy URL."""
        name = f"arcade_test_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self._created.append(name)
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self._created:
            self._created.remove(name)

    def stop(self) -> None:
        for name in list(self._created):
            with contextlib.suppress(Exception):
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created.clear()
        if self.data_dir is not None:
            subprocess.run(
                [*_as_postgres_user(), _tool("pg_ctl"), "-D", str(self.data_dir), "-m", "immediate",
                 "-w", "stop"],
                capture_output=True, check=False, timeout=60,
            )
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def _tool(name: str) -> str:
    """``name`` from PATH, else from Debian's ``/usr/lib/postgresql/<version>/bin`` (where the
    ``postgresql`` package puts the server binaries, off PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if candidates:
        return str(candidates[-1])
    raise RuntimeError(f"{name} is neither on PATH nor in /usr/lib/postgresql/*/bin "
                       "(install the PostgreSQL server binaries, e.g. apt-get install postgresql)")


def start_cluster() -> PostgresCluster:
    """initdb + pg_ctl start a throwaway cluster; raise RuntimeError saying what failed."""
    initdb, pg_ctl = _tool("initdb"), _tool("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="arcade-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    os.chmod(root, 0o700)
    run = [*_as_postgres_user()]
    init = subprocess.run(
        [*run, initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync",
         "-E", "UTF8", "--locale=C"],
        capture_output=True, text=True, check=False, timeout=120,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
    port = _free_port()
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    start = subprocess.run(
        [*run, pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-o", options,
         "-w", "-t", "60", "start"],
        capture_output=True, text=True, check=False, timeout=90,
    )
    if start.returncode != 0:
        log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() \
            else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {start.stderr.strip()} {log[-2000:]}")
    cluster = PostgresCluster("127.0.0.1", port, "postgres", data_dir=data)
    deadline = time.monotonic() + 30
    while True:
        try:
            cluster._admin("SELECT 1")
            return cluster
        except Exception:
            if time.monotonic() > deadline:
                cluster.stop()
                raise
            time.sleep(0.1)


def _from_env(url: str) -> PostgresCluster:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return PostgresCluster(
        host=parsed.host or "127.0.0.1", port=parsed.port or 5432,
        user=parsed.username or "postgres", password=parsed.password or "",
        admin_db=parsed.database or "postgres",
    )


def _required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("ARCADE_REQUIRE_POSTGRES"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster for the session (see the module docstring)."""
    url = os.environ.get(ENV_URL)
    if url:
        cluster = _from_env(url)
        yield cluster
        cluster.stop()
        return
    try:
        cluster = start_cluster()
    except Exception as exc:
        if _required():
            raise
        pytest.skip(f"PostgreSQL is not available: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


def template_database(cluster: PostgresCluster, prepare: Callable[[str], None]) -> str:
    """Create a database, run ``prepare(url)`` on it (e.g. migrations), return its name."""
    url = cluster.create_database()
    prepare(url)
    return url.rsplit("/", 1)[1]
