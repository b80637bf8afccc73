"""Server start-up choices made for a lean serving process: migrations in a child process,
and the garbage collector settled once listening."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from arcade_server.db import migrate
from arcade_server.errors import MigrationError
from arcade_server.settings import Settings
from arcade_server.state import ServerState, migrate_database


@pytest.mark.e2e
async def test_a_child_process_brings_a_new_database_to_the_newest_schema(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    await migrate_database(url)
    engine = create_engine(url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()
    await migrate_database(url)                  # at head already: nothing to do, no error


@pytest.mark.e2e
async def test_a_failed_child_migration_says_why(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(MigrationError, match=r"database migration failed: .+"):
        await migrate_database(f"sqlite:///{blocker / 'sub' / 'arcade.db'}")


@pytest.mark.e2e
async def test_a_server_state_that_migrates_in_a_child_starts_and_serves(tmp_path: Path) -> None:
    state = ServerState(Settings(home=tmp_path / "home"), migrate_in_subprocess=True)
    await state.start()
    try:
        from arcade_server.services import agents

        await state.registrations.submit(agents.AgentInfo(agent_id="a1"))
        listed = await state.db.read(agents.list_agents, last_seen={}, offline_after=30)
        assert [a["id"] for a in listed] == ["a1"]
    finally:
        await state.close()


@pytest.mark.e2e
def test_settle_gc_freezes_what_lives_for_the_whole_process() -> None:
    code = (
        "import gc; from arcade_server.runner import settle_gc, _GC_GEN0\n"
        "before = gc.get_freeze_count(); settle_gc()\n"
        "assert gc.get_freeze_count() > before + 10_000, gc.get_freeze_count()\n"
        "assert gc.get_threshold()[0] == _GC_GEN0\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


async def test_memory_is_released_once_after_a_burst_goes_quiet(tmp_path: Path) -> None:
    # A long interval: the test drives release_memory() itself, tick by tick.
    state = ServerState(Settings(home=tmp_path / "home", memory_release_interval=3600))
    await state.start()
    try:
        from arcade_server.services import agents

        assert await state.release_memory() is False          # nothing happened yet
        for n in range(3):                                     # a burst: agents register
            await state.registrations.submit(agents.AgentInfo(agent_id=f"a{n}"))
        assert await state.release_memory() is False          # still busy this tick
        assert await state.release_memory() is True           # a quiet tick: release
        assert await state.release_memory() is False          # once per burst
        assert state.memory_releases == 1
        await state.registrations.submit(agents.AgentInfo(agent_id="late"))
        assert await state.release_memory() is False
        assert await state.release_memory() is True
        assert state.memory_releases == 2
    finally:
        await state.close()
