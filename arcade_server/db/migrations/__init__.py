"""Alembic environment and versions for the server's schema (applied by ``db.migrate``)."""
