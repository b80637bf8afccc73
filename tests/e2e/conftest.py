"""Fixtures for end-to-end tests: real server and agent processes, torn down cleanly.

Process logs are printed at teardown; pytest shows them only when a test fails. Every test
under this directory is marked ``e2e`` (``-m "not e2e"`` leaves them out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .harness import AGENT_CONFIG, AgentProc, Server

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of this directory ``e2e`` (the hook sees the whole session's items)."""
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the scenarios that do not restart it (each uses its own agent id)."""
    base = tmp_path_factory.mktemp("e2e-server")
    server = Server(base / "home", base / "server.log").start()
    try:
        yield server
    finally:
        server.close()
        print(f"--- shared server log ---\n{server.log()[-6000:]}")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[[], Server]]:
    """Create a server of the test's own (not started: the test decides when)."""
    servers: list[Server] = []

    def make() -> Server:
        server = Server(tmp_path / "server-home", tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
        print(f"--- {server.log_path.name} ---\n{server.log()[-6000:]}")


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., AgentProc]]:
    """Start ``arcade agent`` processes; each is stopped (SIGTERM) at teardown."""
    agents: list[AgentProc] = []

    def start(server: str, agent_id: str, *, home: Path | None = None,
              config: str = AGENT_CONFIG) -> AgentProc:
        proc = AgentProc(home or tmp_path / agent_id, server, agent_id,
                         tmp_path / f"{agent_id}-{len(agents)}.log", config=config)
        agents.append(proc)
        return proc.start()  # type: ignore[return-value]

    yield start
    for agent in agents:
        code = agent.stop()
        print(f"--- {agent.log_path.name} (exit {code}) ---\n{agent.log()[-6000:]}")
