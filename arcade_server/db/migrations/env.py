"""Alembic environment: runs on the connection that :func:`arcade_server.db.migrate.upgrade`
passes in ``config.attributes["connection"]`` (no alembic.ini, no URL in a file)."""

from __future__ import annotations

from alembic import context

from arcade_server.db.tables import metadata
from arcade_server.errors import MigrationError

config = context.config
target_metadata = metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise MigrationError(
            "run Arcade's migrations through arcade_server.db.migrate.upgrade(), "
            "which passes the connection"
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise MigrationError("offline (SQL script) migrations are not supported")
run_migrations_online()
