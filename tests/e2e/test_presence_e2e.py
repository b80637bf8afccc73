"""Offline means offline, with real ``arcade server`` and ``arcade agent`` processes: an
agent that dies is offline within about a second, one that hangs (SIGSTOP: its connection
half-open) within three of the server's heartbeat intervals, the agent beats at the interval
the server sent in Welcome (not its own setting), the plugins of an offline agent show their
last state as ``stale``, and after a server restart agents come back with capped backoff."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.agent.plugkit import probe_wheel

from .harness import AGENT_CONFIG, AgentProc, Server, wait_until

#: The agent's own heartbeat setting is a minute: only Welcome's 1 s keeps it online.
SLOW_BEAT_CONFIG = AGENT_CONFIG.replace("heartbeat_interval = 1", "heartbeat_interval = 60")
#: Reconnect backoff left at its defaults (0.5 s doubling, capped at 5 s).
DEFAULT_BACKOFF_CONFIG = "\n".join(
    line for line in AGENT_CONFIG.splitlines() if not line.startswith("reconnect_"))


def _info(server: Server, agent: str) -> dict[str, Any]:
    """The agent's REST view ({} until it has registered)."""
    return server.agent(agent) or {}


def _stale(server: Server, agent: str, name: str) -> bool | None:
    actual = (server.plugins(agent).get(name) or {}).get("actual") or {}
    stale = actual.get("stale")
    return None if stale is None else bool(stale)


def _server(start_server: Callable[[], Server], **env: str) -> Server:
    server = start_server()
    server.env.pop("ARCADE_SERVER_OFFLINE_AFTER", None)  # the default: 3 heartbeat intervals
    server.env.update(env)
    return server.start()


def test_a_killed_agent_is_offline_at_once_and_its_plugins_stale(
    start_server: Callable[[], Server], start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    # offline_after of ten minutes: only the closed stream can make it offline in the test.
    server = _server(start_server, ARCADE_SERVER_OFFLINE_AFTER="600")
    server.publish(probe_wheel(tmp_path / "w", name="witness", metric="witness.major"))
    agent = start_agent(server, "e2e-killed")
    wait_until(lambda: _info(server, "e2e-killed").get("online"), what="the agent online")
    assert server.install("e2e-killed", "witness@1.0.0").json()["state"]["state"] == "running"
    assert _stale(server, "e2e-killed", "witness") is False

    killed = time.monotonic()
    agent.kill()
    wait_until(lambda: _info(server, "e2e-killed").get("status") == "offline",
               what="the killed agent to be offline")
    took = time.monotonic() - killed
    print(f"killed agent -> offline in {took * 1000:.0f} ms")
    actual = server.plugins("e2e-killed")["witness"]["actual"]
    assert actual["state"] == "running" and actual["stale"] is True


def test_a_hung_agent_is_offline_within_three_heartbeats_of_welcome(
    start_server: Callable[[], Server], start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    server = _server(start_server)          # heartbeat 1 s (harness), offline after 3 s
    server.publish(probe_wheel(tmp_path / "w", name="hung", metric="hung.major"))
    agent = start_agent(server, "e2e-hung", config=SLOW_BEAT_CONFIG)
    wait_until(lambda: _info(server, "e2e-hung").get("online"), what="the agent online")
    assert server.install("e2e-hung", "hung@1.0.0").json()["state"]["state"] == "running"
    # Welcome said 1 s: the agent, whose own setting is 60 s, beats every second and stays
    # online well past three intervals.
    since = time.time()
    info = wait_until(lambda: (i := _info(server, "e2e-hung"))["last_seen"] > since + 4
                      and i, what="heartbeats at Welcome's interval")
    assert info.get("online")

    assert agent.proc is not None
    os.kill(agent.proc.pid, signal.SIGSTOP)   # the process hangs; its connection stays open
    try:
        stopped = time.monotonic()
        info = wait_until(lambda: (i := _info(server, "e2e-hung")).get("status") == "offline"
                          and i, what="the hung agent to be offline")
        took = time.monotonic() - stopped
        print(f"hung agent -> offline in {took:.2f} s (3 heartbeat intervals: 3 s)")
        assert info["connected"], "the stream is still open: offline came from silence"
        assert time.time() - info["last_seen"] > 3.0
        assert _stale(server, "e2e-hung", "hung") is True
    finally:
        os.kill(agent.proc.pid, signal.SIGCONT)
    wait_until(lambda: _info(server, "e2e-hung").get("online"), what="the agent back online")
    assert _stale(server, "e2e-hung", "hung") is False


def test_after_a_server_restart_agents_retry_with_capped_backoff_and_come_back(
    start_server: Callable[[], Server], start_agent: Callable[..., AgentProc],
) -> None:
    server = _server(start_server)
    agent = start_agent(server, "e2e-backoff", config=DEFAULT_BACKOFF_CONFIG)
    wait_until(lambda: _info(server, "e2e-backoff").get("online"), what="the agent online")
    server.stop()
    # 0.25-0.5, 0.5-1, 1-2, 2-4, then capped: 2.5-5 s (jittered) — never more than 5 s.
    wait_until(lambda: agent.log().count("retrying in") >= 6, what="six reconnect attempts")
    delays = [float(d) for d in re.findall(r"retrying in ([0-9.]+)s", agent.log())]
    assert max(delays) <= 5.0, delays
    # Each delay lies in its jittered range (half to all of the doubled, capped base; the log
    # rounds to 10 ms), and they are not all the range's top: the jitter is there. (Two
    # capped delays may print alike, so "all distinct" would be a coin toss.)
    bases = [min(0.5 * 2 ** i, 5.0) for i in range(len(delays))]
    assert all(base / 2 - 0.01 <= d <= base + 0.01 for d, base in zip(delays, bases,
                                                                        strict=True)), delays
    assert any(d < base - 0.01 for d, base in zip(delays, bases, strict=True)), delays
    server.start()
    wait_until(lambda: _info(server, "e2e-backoff").get("online"), what="the agent to come back")
