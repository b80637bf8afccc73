"""Group commit: the Batcher against a real SQLite database and real threads."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from arcade_server.db.batcher import Batcher
from arcade_server.db.engine import Database
from arcade_server.errors import BatcherError
from tests.waiting import DEADLINE, until


def _rows(db: Database) -> list[tuple[int, str]]:
    with db.transaction(write=False) as conn:
        return [(int(r[0]), str(r[1])) for r in conn.execute(
            text("SELECT id, value FROM items ORDER BY id")).all()]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'batch.db'}", threads=4)
    with database.transaction() as conn:
        conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, value TEXT NOT NULL "
                          "CHECK (value != 'bad'))"))
    yield database
    database.close()


def _insert(conn: Connection, items: list[tuple[int, str]]) -> list[int]:
    conn.execute(text("INSERT INTO items (id, value) VALUES (:id, :value)"),
                 [{"id": i, "value": v} for i, v in items])
    return [i for i, _v in items]


async def test_items_submitted_during_a_write_go_together_in_the_next_one(
    db: Database,
) -> None:
    gate = threading.Event()
    calls: list[int] = []

    def insert_slowly(conn: Connection, items: list[tuple[int, str]]) -> list[int]:
        calls.append(len(items))
        if len(calls) == 1:
            gate.wait(DEADLINE)  # hold the first batch open while the others queue up
        return _insert(conn, items)

    batcher: Batcher[tuple[int, str], int] = Batcher(
        lambda items: db.run(insert_slowly, items), name="items")
    first = asyncio.create_task(batcher.submit((0, "first")))
    await until(lambda: calls == [1], what="the first batch to be written")
    rest = [asyncio.create_task(batcher.submit((i, f"v{i}"))) for i in range(1, 51)]
    await until(lambda: len(batcher._pending) == 50, what="the others to queue up")
    gate.set()
    assert await first == 0
    assert await asyncio.gather(*rest) == list(range(1, 51))
    assert calls == [1, 50]                      # two transactions for 51 messages
    assert (batcher.batches, batcher.items, batcher.largest) == (2, 51, 50)
    assert len(_rows(db)) == 51
    await batcher.close()


async def test_a_bad_item_fails_alone_and_the_others_are_written(db: Database) -> None:
    batcher: Batcher[tuple[int, str], int] = Batcher(
        lambda items: db.run(_insert, items), name="items")
    results = await asyncio.gather(
        *(batcher.submit((i, "bad" if i == 3 else f"v{i}")) for i in range(6)),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
    assert [r for r in results if not isinstance(r, BaseException)] == [0, 1, 2, 4, 5]
    assert [i for i, _v in _rows(db)] == [0, 1, 2, 4, 5]
    await batcher.close()


async def test_close_writes_what_was_submitted_then_refuses_more(db: Database) -> None:
    batcher: Batcher[tuple[int, str], int] = Batcher(
        lambda items: db.run(_insert, items), name="items", max_batch=7)
    pending = [asyncio.create_task(batcher.submit((i, "x"))) for i in range(30)]
    await asyncio.sleep(0)                       # every submit is queued
    await batcher.close()
    assert len(_rows(db)) == 30
    assert batcher.largest <= 7                  # max_batch splits a long queue
    assert all(task.done() for task in pending)
    with pytest.raises(BatcherError, match="closed"):
        await batcher.submit((99, "late"))


async def test_a_cancelled_submitter_still_gets_its_item_written(db: Database) -> None:
    gate = threading.Event()

    writing = threading.Event()

    def held(conn: Connection, items: list[tuple[int, str]]) -> list[int]:
        writing.set()
        gate.wait(DEADLINE)
        return _insert(conn, items)

    batcher: Batcher[tuple[int, str], int] = Batcher(
        lambda items: db.run(held, items), name="items")
    task = asyncio.create_task(batcher.submit((1, "kept")))
    await until(writing.is_set, what="the batch to be written")
    task.cancel()                                # e.g. the agent's stream went away
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    await batcher.close()
    assert _rows(db) == [(1, "kept")]


class _Item:
    """A submitted item that can be watched with a weak reference."""


async def test_a_written_batch_is_not_kept_alive_between_batches() -> None:
    # Batchers live as long as the server: the last batch (up to max_batch items, e.g. a
    # rollout's status reports) must not stay referenced while they wait for the next one.
    async def flush(items: list[_Item]) -> list[None]:
        return [None] * len(items)

    batcher: Batcher[_Item, None] = Batcher(flush, name="items")
    item = _Item()
    watch = weakref.ref(item)
    await batcher.submit(item)
    del item
    # Once the batcher is back to waiting for the next submit, nothing holds the item.
    await until(lambda: watch() is None, what="the written item to be released")
    await batcher.close()
