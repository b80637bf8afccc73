"""Apply the Alembic migrations programmatically, at server start.

No ``alembic.ini``: the script location is this package's ``migrations`` directory and the
connection is handed to ``env.py``. On PostgreSQL an advisory lock serialises replicas that
start at the same time, so only one of them runs a given migration.

``python -m arcade_server.db.migrate`` (database URL on stdin, so a password never shows in
``ps``) does the same in a child process: ``arcade server`` migrates that way, so the serving
process never imports Alembic (and the Mako and Pygments it pulls in, ~13 MB of RSS).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x41524341  # "ARCA"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema of ``engine``'s database up to ``revision`` (default: the newest)."""
    config = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def _main() -> int:
    import sys

    from .engine import make_engine

    url = sys.stdin.readline().strip()
    if not url:
        print("give the database URL on stdin", file=sys.stderr)
        return 2
    engine = make_engine(url, pool_size=1)   # the server's own tuning (WAL, foreign keys)
    try:
        upgrade(engine)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
