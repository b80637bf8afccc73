"""Small SQL helpers that differ by dialect (SQLite and PostgreSQL both speak ON CONFLICT)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from ..db.models import Base

__all__ = ["insert_ignore", "table", "upsert"]


def table(model: type[Base]) -> Table:
    """The model's Core table: bulk statements on it skip the ORM's per-row bookkeeping."""
    return cast(Table, model.__table__)


def _insert(session: Session, model: type[Base]) -> Any:
    # Each dialect's module is imported when first used: a server on SQLite never loads the
    # PostgreSQL dialect (~2 MB of code).
    # On the Core table, not the mapped class: an ``executemany`` of plain rows, without the
    # ORM bulk-insert path (several times slower per row for the same SQL).
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table(model))
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table(model))


def insert_ignore(session: Session, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows``, silently skipping any that clash with an existing primary/unique key."""
    if rows:
        session.execute(_insert(session, model).on_conflict_do_nothing(), list(rows))


def upsert(
    session: Session,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert ``rows``; on a clash on ``keys`` overwrite the ``update`` columns."""
    if not rows:
        return
    stmt = _insert(session, model)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={name: stmt.excluded[name] for name in update}
    )
    session.execute(stmt, list(rows))
