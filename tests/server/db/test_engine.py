"""The database thread pools: one writer thread on SQLite, the pool for reads."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from sqlalchemy import Connection, text

from arcade_server.db.engine import Database


def _write(conn: Connection, i: int) -> str:
    conn.execute(text("INSERT INTO t (i) VALUES (:i)"), {"i": i})
    return threading.current_thread().name


def _read(conn: Connection) -> str:
    conn.execute(text("SELECT count(*) FROM t")).scalar_one()
    return threading.current_thread().name


async def test_sqlite_writes_queue_on_one_writer_thread_and_all_commit(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'w.db'}", threads=4)
    try:
        with db.transaction() as conn:
            conn.execute(text("CREATE TABLE t (i INTEGER PRIMARY KEY)"))
        writers = await asyncio.gather(*(db.run(_write, i) for i in range(200)))
        readers = await asyncio.gather(*(db.read(_read) for _ in range(50)))
        assert set(writers) == {"arcade-db-writer_0"}   # no two writers ever wait on the lock
        assert all(name.startswith("arcade-db_") for name in readers)
        with db.transaction(write=False) as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 200
    finally:
        db.close()
