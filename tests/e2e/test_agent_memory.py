"""What an idle agent keeps in memory: a real ``arcade agent`` that enrolled, runs a plugin and
renewed its certificate never maps ``cryptography`` (its Rust binding and x509 modules were
~12 MB of the agent's resident memory; the agent now reads certificates with the standard
library and makes CSRs in a short-lived child). Only an agent with ``[[trust.keys]]`` loads it,
at its first signature check. Checked in the process's own memory map, so nothing in the agent
has to cooperate."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.agent.plugkit import probe_wheel

from .harness import AGENT_CONFIG, AgentProc, Server, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc/<pid>/maps")


def _mapped_files(pid: int) -> set[str]:
    files = set()
    with open(f"/proc/{pid}/maps", encoding="utf-8") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].startswith("/"):
                files.add(fields[5].strip())
    return files


def test_an_enrolled_renewing_agent_never_loads_cryptography(
    start_server: Callable[[], Server], start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    server = start_server()
    # 0.0001 days = 8.6 s: the agent renews its certificate ~5.8 s after enrolling.
    server.env["ARCADE_SERVER_AGENT_CERT_DAYS"] = "0.0001"
    server.start()
    agent = start_agent(server, "e2e-memory", config=AGENT_CONFIG)
    wait_until(lambda: bool((server.agent("e2e-memory") or {}).get("online")),
               what="the agent to enroll and come online")
    server.publish(probe_wheel(tmp_path / "wheels", "1.0.0", name="mem-probe",
                               metric="mem.major"))
    response = server.install("e2e-memory", "mem-probe@1.0.0")
    assert response.json()["state"]["state"] == "running", response.json()
    wait_until(lambda: "certificate renewed" in agent.log(), what="a certificate renewal")
    assert agent.proc is not None
    mapped = _mapped_files(agent.proc.pid)
    assert any("cygrpc" in path for path in mapped), mapped        # the agent's own map
    assert [path for path in mapped if "cryptography" in path] == []
