"""``arcade server`` as a real process: logs where it listens, serves both ports, exits
cleanly on SIGTERM and SIGINT, and fails clearly when a port is taken."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.server.helpers import ProtocolAgent
from tests.waiting import DEADLINE

pytestmark = pytest.mark.e2e  # real server processes

LISTENING = re.compile(r"REST (http://\S+) .*gRPC (\S+);")


def _start(home: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "arcade_server", "--home", str(home),
         "--http-port", "0", "--grpc-port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


class _Output:
    """Collects a process's output lines on a thread (a select() on a buffered text pipe
    misses lines that arrived together with the previous one)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self._stream = proc.stdout
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with self._stream:
            for line in self._stream:
                with self._changed:
                    self._lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._lines.append("")  # EOF marker
            self._changed.notify_all()

    def wait_listening(self, timeout: float = DEADLINE) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self._lines:
                    match = LISTENING.search(line)
                    if match:
                        return match.group(1), match.group(2)
                left = deadline - time.monotonic()
                if left <= 0 or (self._lines and self._lines[-1] == ""):
                    break
                self._changed.wait(left)
        raise AssertionError("server did not report where it listens:\n" + self.text())

    def text(self, timeout: float = DEADLINE) -> str:
        self._thread.join(timeout)
        with self._changed:
            return "".join(self._lines)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_server_process_serves_both_ports_and_stops_cleanly_on_signal(
    tmp_path: Path, sig: signal.Signals
) -> None:
    proc = _start(tmp_path / "home")
    out = _Output(proc)
    try:
        http_url, grpc_target = out.wait_listening()
        token = (tmp_path / "home" / "admin-token").read_text().strip()
        health = httpx.get(f"{http_url}/api/v1/health", timeout=30,
                           headers={"Authorization": f"Bearer {token}"})
        assert health.json()["status"] == "ok"

        async def register() -> None:
            agent = ProtocolAgent(grpc_target)
            try:
                await agent.connect()
                await agent.desired()
            finally:
                await agent.close()

        asyncio.run(register())
        proc.send_signal(sig)
        proc.wait(timeout=DEADLINE)
        output = out.text()
        assert proc.returncode == 0, output
        assert "Arcade server stopped" in output
        assert "Traceback" not in output
        assert (tmp_path / "home" / "arcade.db").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.text()


def test_a_taken_port_fails_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "arcade_server", "--home", str(tmp_path),
             "--http-port", str(port), "--grpc-port", "0"],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    assert proc.returncode == 1
    assert f"cannot listen for REST on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_settings_exit_2_naming_the_setting(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "arcade_server", "--home", str(tmp_path),
         "--database", "mysql://nope"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 2
    assert "database_url" in proc.stderr


ORM_PROBE = """
import asyncio, sys
from pathlib import Path
import httpx
from arcade_server.runner import ArcadeServer
from arcade_server.settings import Settings
from tests.server.helpers import ProtocolAgent
from tests.waiting import DEADLINE

async def main() -> None:
    settings = Settings(home=Path(sys.argv[1]), host="127.0.0.1", http_port=0, grpc_port=0)
    server = ArcadeServer(settings, migrate_in_subprocess=True)
    await server.start()
    try:
        agent = ProtocolAgent(server.grpc_target)
        await agent.connect()
        await agent.desired()
        async with httpx.AsyncClient(base_url=server.http_url + "/api/v1",
                                     headers={"Authorization": "Bearer "
                                              + settings.admin_token_file.read_text().strip()},
                                     timeout=30) as api:
            assert [a["id"] for a in (await api.get("/agents")).json()] == [agent.agent_id]
            assert (await api.get("/plugins")).json() == []
            assert (await api.get("/jobs")).json() == []
        await agent.close()
    finally:
        await server.stop()
    print("ORM", *sorted(m for m in sys.modules if m.startswith("sqlalchemy.orm")))

asyncio.run(main())
"""


def test_a_serving_server_never_imports_the_sqlalchemy_orm(tmp_path: Path) -> None:
    # The services speak SQLAlchemy Core: the ORM would cost the process ~7 MB for its life.
    proc = subprocess.run([sys.executable, "-c", ORM_PROBE, str(tmp_path)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "ORM"
