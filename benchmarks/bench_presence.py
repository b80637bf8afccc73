"""Presence figures: how soon the server says an agent is offline.

Real ``arcade server`` and ``arcade agent`` processes on loopback (the e2e harness: heartbeat
interval 1 s, so a half-open connection is offline after 3 s).

* ``killed``: SIGKILL an agent, then poll ``GET /api/v1/agents/{id}`` until it says
  ``offline``. Baseline, same round: the time until the killed process is reaped (what the
  operating system itself takes to see it gone).
* ``hung``: SIGSTOP an agent (its TCP connection stays open: half-open from the server's
  side) and poll until ``offline``; the bound is three of the server's heartbeat intervals.

    python benchmarks/bench_presence.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import median, print_table
from tests.e2e.harness import AgentProc, Server, wait_until

HEARTBEAT = 1.0  # the harness's server setting


def _status(server: Server, agent_id: str) -> str:
    info = server.agent(agent_id) or {}
    return str(info.get("status", ""))


def _until_offline(server: Server, agent_id: str, limit: float) -> float:
    start = time.monotonic()
    while _status(server, agent_id) != "offline":
        if time.monotonic() - start > limit:
            raise SystemExit(f"{agent_id} still online after {limit:g} s")
        time.sleep(0.005)
    return time.monotonic() - start


def _round(server: Server, work: Path, agent_id: str, how: str) -> tuple[float, float]:
    agent = AgentProc(work / agent_id, server, agent_id, work / f"{agent_id}.log").start()
    try:
        wait_until(lambda: _status(server, agent_id) == "online", 30, what="agent online")
        assert agent.proc is not None
        if how == "killed":
            start = time.monotonic()
            os.killpg(agent.proc.pid, signal.SIGKILL)
            agent.proc.wait(30)
            reaped = time.monotonic() - start
            return _until_offline(server, agent_id, 30) + reaped, reaped
        os.killpg(agent.proc.pid, signal.SIGSTOP)
        try:
            return _until_offline(server, agent_id, 30), 3 * HEARTBEAT
        finally:
            os.killpg(agent.proc.pid, signal.SIGCONT)
    finally:
        agent.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arcade-bench-presence-") as tmp:
        work = Path(tmp)
        server = Server(work / "server", work / "server.log")
        server.env.pop("ARCADE_SERVER_OFFLINE_AFTER", None)  # default: 3 heartbeat intervals
        server.start()
        try:
            rows = []
            for how in ("killed", "hung"):
                took, base = zip(*(_round(server, work, f"bench-{how}-{i}", how)
                                   for i in range(args.rounds)), strict=True)
                if how == "killed":
                    rows.append(("killed agent -> offline (median / max)",
                                 f"{median(took) * 1000:.0f} / {max(took) * 1000:.0f} ms "
                                 "(goal <= 1 s)"))
                    rows.append(("baseline: the killed process reaped",
                                 f"{median(base) * 1000:.1f} ms"))
                else:
                    bound = 3 * HEARTBEAT
                    rows.append(("hung agent (SIGSTOP) -> offline (median / max)",
                                 f"{median(took):.2f} / {max(took):.2f} s (bound: 3 heartbeats "
                                 f"= {bound:g} s; ratio {median(took) / bound:.2f})"))
            print_table(f"presence, {args.rounds} rounds each", rows)
        finally:
            server.close()


if __name__ == "__main__":
    main()
