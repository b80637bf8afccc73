"""The agent's identity against a real server: bootstrap with a CA pin (right and wrong),
files kept 0600, later starts without a token, renewal before expiry, the backoff cap."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from arcade_agent import Agent, AgentSettings
from arcade_agent.connection import Connection, backoff_delay
from arcade_agent.errors import AgentConfigError
from arcade_agent.identity import EnrollmentError, fetch_ca, load_credentials, renew_due
from arcade_core.rpc.v1 import pb
from arcade_server.runner import ServerThread
from arcade_server.settings import Settings
from tests.server.helpers import create_enrollment_token
from tests.waiting import DEADLINE, until


def _server(home: Path, **kw: float) -> ServerThread:
    return ServerThread(Settings(home=home, http_port=0, grpc_port=0, heartbeat_interval=0.5,
                                 offline_after=3, shutdown_grace=0.5, **kw)).start()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerThread]:
    thread = await asyncio.to_thread(_server, tmp_path / "server")
    try:
        yield thread
    finally:
        await asyncio.to_thread(thread.stop)


def _settings(home: Path, server: ServerThread, **kw: object) -> AgentSettings:
    kw.setdefault("agent_id", "ident-1")
    return AgentSettings(server=server.grpc_target, home=home, reconnect_initial=0.05,
                         reconnect_max=0.3, **kw)  # type: ignore[arg-type]


async def test_bootstrap_with_the_ca_hash_enrolls_and_later_starts_need_no_token(
    server: ServerThread, tmp_path: Path
) -> None:
    tls = server.state.tls
    assert await asyncio.to_thread(fetch_ca, server.grpc_target, tls.ca_hash) == tls.ca.pem
    token = await asyncio.to_thread(create_enrollment_token, server, uses=1)
    home = tmp_path / "agent"
    async with Agent(_settings(home, server, enroll_token=token,
                               ca_hash=tls.ca_hash.upper().replace("SHA256", "sha256"))) as a:
        await a.wait_connected(DEADLINE)
    for name in ("agent.key", "agent.pem", "ca.pem"):
        assert stat.S_IMODE((home / "tls" / name).stat().st_mode) == 0o600, name
    stored = load_credentials(home)
    assert stored is not None and stored.ca_pem == tls.ca.pem
    # The token was single-use and is used up: the second start needs none.
    async with Agent(_settings(home, server)) as again:
        await again.wait_connected(DEADLINE)
    # The certificate binds its id: another --id on that home is refused, clearly.
    with pytest.raises(EnrollmentError, match="belongs to agent 'ident-1'"):
        await Agent(_settings(home, server, agent_id="someone-else")).start()


async def test_a_wrong_ca_hash_is_refused_with_a_clear_error(
    server: ServerThread, tmp_path: Path
) -> None:
    token = await asyncio.to_thread(create_enrollment_token, server, uses=1)
    wrong = "sha256:" + "0" * 64
    agent = Agent(_settings(tmp_path / "agent", server, enroll_token=token, ca_hash=wrong))
    with pytest.raises(EnrollmentError, match="presented no certificate matching --ca-hash") \
            as caught:
        await agent.start()
    assert server.state.tls.ca_hash in str(caught.value)     # says what it did see
    assert load_credentials(tmp_path / "agent") is None
    with pytest.raises(AgentConfigError, match="sha256:<64 hex digits>"):
        AgentSettings(ca_hash="md5:abc")


def test_the_agent_command_without_enrollment_says_what_to_give(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "arcade_agent", "--home", str(tmp_path), "--id", "new-1",
         "--server", "127.0.0.1:1"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "not enrolled" in proc.stderr and "--enroll-token" in proc.stderr
    assert "Traceback" not in proc.stderr


async def test_the_agent_renews_its_certificate_before_it_expires(tmp_path: Path) -> None:
    # 0.0001 days = 8.6 s: renewed at two thirds, ~5.8 s after it was issued.
    server = await asyncio.to_thread(_server, tmp_path / "server", agent_cert_days=0.0001)
    try:
        token = await asyncio.to_thread(create_enrollment_token, server)
        settings = _settings(tmp_path / "agent", server, enroll_token=token,
                             ca_file=server.settings.home / "tls" / "ca.pem")
        async with Agent(settings) as agent:
            await agent.wait_connected(DEADLINE)
            first = load_credentials(tmp_path / "agent")
            assert first is not None
            assert (renew_due(first.cert_pem) - first.certificate.not_valid_before_utc
                    ).total_seconds() == pytest.approx(0.0001 * 86400 * 2 / 3, abs=1)
            await until(lambda: agent.renewals >= 1, timeout=DEADLINE,
                        what="the certificate to be renewed")
            second = load_credentials(tmp_path / "agent")
            assert second is not None and second.cert_pem != first.cert_pem
            assert second.key_pem != first.key_pem              # a new key each time
            # The renewed certificate is used for the calls that follow, and the agent
            # stays connected as the first one expires.
            sessions = agent.connection.sessions
            await until(lambda: first.certificate.not_valid_after_utc.timestamp()
                        < time.time(), what="the first certificate to expire")
            await agent.wait_connected(DEADLINE)
            assert agent.connection.sessions >= sessions
            assert agent.connection.connected.is_set()
    finally:
        await asyncio.to_thread(server.stop)


def test_backoff_is_capped_jittered_and_starts_over() -> None:
    delays = [backoff_delay(attempt, 0.5, 5.0) for attempt in range(200)]
    assert max(delays) <= 5.0
    assert all(2.5 <= d <= 5.0 for d in delays[4:])       # capped, jittered within [cap/2, cap]
    assert 0.25 <= backoff_delay(0, 0.5, 5.0) <= 0.5        # attempt 0: after a healthy session
    assert len({round(d, 6) for d in delays[10:]}) > 100    # not in lock-step
    assert AgentSettings().reconnect_max <= 5.0


async def test_reconnect_attempts_keep_coming_at_the_cap() -> None:
    async def register() -> pb.Register:
        return pb.Register(agent_id="nobody")

    async def ignore(_message: pb.ServerMessage) -> None:
        return None

    connection = Connection("127.0.0.1:1", register=register, on_message=ignore,
                            heartbeat=pb.Heartbeat, backoff_initial=0.01, backoff_max=0.05)
    task = asyncio.create_task(connection.run())
    try:
        started = time.monotonic()
        await until(lambda: connection.failures >= 20, what="20 reconnect attempts")
        # Uncapped, 20 doublings of 10 ms would take hours; capped at 50 ms, about a second.
        assert time.monotonic() - started < DEADLINE
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await connection.close()
