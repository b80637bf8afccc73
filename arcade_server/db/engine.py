"""The database engine, transactions, and the thread pool that keeps SQL off the event loop.

Service functions are plain synchronous functions taking a :class:`~sqlalchemy.Connection`
(SQLAlchemy Core: statements in, rows out); :meth:`Database.run` runs one of them in the
database thread pool inside one transaction (commit on success, rollback on error), so REST
handlers and gRPC servicers never block the loop and every change is atomic.

SQLite is tuned for a server: WAL journal (readers never wait for the writer), foreign keys
on, a busy timeout, and write transactions opened with ``BEGIN IMMEDIATE`` so two writers
queue on the lock instead of failing with "database is locked" half-way through. SQLite
takes one writer at a time anyway, so on SQLite :meth:`Database.run` hands every write to ONE
writer thread: writers queue in memory instead of sleeping in SQLite's busy handler (which
backs off in steps of up to 100 ms and, with a thread pool of writers, made a burst of
small writes many times slower). Reads keep the whole pool. PostgreSQL writes use the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

__all__ = ["Database", "make_engine"]

P = ParamSpec("P")
T = TypeVar("T")

_WRITE_OPTION = "arcade_write"

#: SQLite's page cache per connection, in KiB (SQLite's default is 2 MiB). Every pooled
#: connection grows its own cache up to this size and keeps it, so at the default a server
#: with a busy pool carried up to ~20 MB of duplicate pages; the operating system's file
#: cache already holds the database, and a smaller cache was not measurably slower
#: (benchmarks/fleet.py).
_SQLITE_CACHE_KIB = 512


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """Create an engine for ``url`` (SQLite file or PostgreSQL via psycopg) with server tuning."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30, "cached_statements": 16},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _tune_sqlite(engine)
        return engine
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module: we emit BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(_WRITE_OPTION, True):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class Database:
    """One engine and a bounded thread pool for database work."""

    def __init__(self, url: str, *, threads: int = 8) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=threads)
        self.dialect = self.engine.dialect.name
        self._read_engine = self.engine.execution_options(**{_WRITE_OPTION: False})
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="arcade-db")
        #: Where :meth:`run` executes writes: one thread on SQLite (one writer), else the pool.
        self._writer = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="arcade-db-writer")
            if self.dialect == "sqlite" else self._executor
        )

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """A connection in one transaction: committed on success, rolled back on any error.
        ``write=False`` is for reads (on SQLite it takes no write lock)."""
        with (self.engine if write else self._read_engine).begin() as conn:
            yield conn

    def call(
        self,
        fn: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(conn, ...)`` in one write transaction, in the calling thread."""
        with self.transaction() as conn:
            return fn(conn, *args, **kwargs)

    async def run(
        self,
        fn: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(conn, ...)`` in one write transaction in the database thread pool (the
        writer thread on SQLite)."""
        loop = asyncio.get_running_loop()

        def call() -> T:
            return self.call(fn, *args, **kwargs)

        return await loop.run_in_executor(self._writer, call)

    async def read(
        self,
        fn: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Like :meth:`run` for read-only work (no write lock taken on SQLite)."""
        loop = asyncio.get_running_loop()

        def call() -> T:
            with self.transaction(write=False) as conn:
                return fn(conn, *args, **kwargs)

        return await loop.run_in_executor(self._executor, call)

    def close(self) -> None:
        if self._writer is not self._executor:
            self._writer.shutdown(wait=True, cancel_futures=False)
        self._executor.shutdown(wait=True, cancel_futures=False)
        self.engine.dispose()
