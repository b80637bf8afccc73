"""Persistence: SQLAlchemy models, the engine and session helpers, Alembic migrations."""
