"""Signature verification on the agent: what it costs per install, and in memory.

Everything runs for real on loopback: an ``arcade server`` process (SQLite) and ``arcade
agent`` processes; versions are signed on the server's database with the e2e tests' helper
(:mod:`tests.e2e.signing`). Each figure sits beside a baseline measured in the same run.

* ``check``: :meth:`arcade_agent.trust.Trust.check` of a real statement (a plugin and 10
  dependency wheels, 3 trusted keys, 2 signatures), median of many calls in this process; the
  first call apart. Baseline: building the statement alone.
* ``install``: REST install → ``running`` of the same tiny plugin (warm: wheel cached, each
  round uninstalls first), on an agent with a trusted key (signed version) and on one without
  (the same version, unsigned path), rounds interleaved. The difference of the medians is the
  end-to-end cost of verification (noisy: compare it with ``check``).
* ``idle``: an agent with the server's TLS and two trusted keys running signed
  ``arcade-cpu`` and ``arcade-memory`` at their 10 s interval: RSS and CPU over
  ``--idle-seconds``, beside the same agent without trust keys (unsigned versions).

    python benchmarks/bench_trust.py [check|install|idle ...] [--rounds 30] [--idle-seconds 20]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arcade_agent.trust import Trust, TrustedKey
from arcade_core import signing
from benchmarks._util import median, percentile, print_table
from benchmarks.bench_agent import IDLE_CONFIG, _online, idle_agent
from tests.e2e.harness import AGENT_CONFIG, AgentProc, Server, wait_until
from tests.e2e.signing import public_key_file, sign_version
from tests.wheelmaker import make_wheel


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def bench_check(rounds: int) -> None:
    keys = [Ed25519PrivateKey.generate() for _ in range(3)]
    trust = Trust(tuple(TrustedKey(_raw(k), ("arcade-*",) if i else ("*",))
                        for i, k in enumerate(keys)))
    wheels = {f"dep{i}-1.0.0-py3-none-any.whl": hashlib.sha256(b"%d" % i).hexdigest()
              for i in range(10)}
    wheels["arcade_probe-1.0.0-py3-none-any.whl"] = hashlib.sha256(b"p").hexdigest()
    data = signing.statement("arcade-probe", "1.0.0", wheels)
    author = Ed25519PrivateKey.generate()
    signed = [signing.sign(author, data), signing.sign(keys[2], data)]
    started = time.perf_counter()
    trust.check("arcade-probe", "1.0.0", wheels, signed)
    first = (time.perf_counter() - started) * 1000
    checks, statements = [], []
    for _ in range(rounds * 100):
        started = time.perf_counter()
        trust.check("arcade-probe", "1.0.0", wheels, signed)
        checks.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        signing.statement("arcade-probe", "1.0.0", wheels)
        statements.append((time.perf_counter() - started) * 1000)
    print_table("Trust.check: 11 wheels, 3 trusted keys, 2 signatures (in process)", [
        ("calls", str(len(checks))),
        ("check p50 / p90", f"{median(checks):.3f} / {percentile(checks, 90):.3f} ms"
                            "   (goal: verification <= 1 ms per install)"),
        ("first check", f"{first:.1f} ms (includes importing cryptography)"),
        ("baseline: the statement alone p50", f"{median(statements):.3f} ms"),
    ])


def _trust_config(work: Path, *keys: Ed25519PrivateKey) -> str:
    entries = []
    for i, key in enumerate(keys):
        public_key_file(key, work / f"trusted-{i}.pub")
        entries.append(f'[[trust.keys]]\nfile = "trusted-{i}.pub"\n')
    return "\n" + "\n".join(entries)


def bench_install(server: Server, work: Path, rounds: int) -> None:
    key = Ed25519PrivateKey.generate()
    config = AGENT_CONFIG + _trust_config(work, key)
    agents = {"signed": AgentProc(work / "a-signed", server, "bench-signed",
                                  work / "a-signed.log", config=config).start(),
              "unsigned": AgentProc(work / "a-unsigned", server, "bench-unsigned",
                                    work / "a-unsigned.log").start()}
    try:
        server.publish(make_wheel(work / "wheels", "tiny-signed", "1.0.0"))
        sign_version(server, "tiny-signed", "1.0.0", key)
        samples: dict[str, list[float]] = {"signed": [], "unsigned": []}
        for agent in agents.values():
            wait_until(lambda a=agent.agent_id: _online(server, a), 30, what="agent online")
            server.install(agent.agent_id, "tiny-signed@1.0.0")   # warm-up: download + cache
        for _ in range(rounds):
            for label, agent in agents.items():
                server.uninstall(agent.agent_id, "tiny-signed")
                wait_until(lambda a=agent.agent_id: "tiny-signed" not in server.plugins(a), 10,
                           what="uninstalled")
                started = time.perf_counter()
                response = server.install(agent.agent_id, "tiny-signed@1.0.0", wait=10)
                samples[label].append((time.perf_counter() - started) * 1000)
                assert response.json()["state"]["state"] == "running", response.json()
        signed, unsigned = median(samples["signed"]), median(samples["unsigned"])
        print_table("REST install -> running, the same signed plugin (warm, interleaved)", [
            ("rounds", str(rounds)),
            ("agent with a trusted key p50 / p90",
             f"{signed:.1f} / {percentile(samples['signed'], 90):.1f} ms"),
            ("baseline: agent without trust keys p50 / p90",
             f"{unsigned:.1f} / {percentile(samples['unsigned'], 90):.1f} ms"),
            ("difference of the medians", f"{signed - unsigned:+.1f} ms  (noise: see check)"),
        ])
    finally:
        for agent in agents.values():
            agent.stop()


def bench_idle(server: Server, work: Path, seconds: float) -> None:
    from arcade_core.builtin import build_builtin_wheels, builtin_dependency_wheels

    builtin = build_builtin_wheels(work / "builtin")
    deps = builtin_dependency_wheels([builtin["arcade-cpu"]])
    release, team = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    for name in ("arcade-cpu", "arcade-memory"):
        server.publish(builtin[name], *deps)
        sign_version(server, name, "1.0.0", release)
    rows = []
    for label, config in (("with TLS + 2 trusted keys (signed)",
                           IDLE_CONFIG + _trust_config(work, release, team)),
                          ("baseline: no trust keys", IDLE_CONFIG)):
        agent_id = "bench-idle-" + ("trust" if "trust" in config else "plain")
        cpu, rss = idle_agent(server, work, agent_id, config, seconds)
        rows.append((f"{label}: RSS / CPU",
                     f"{rss:.1f} MB / {cpu:.2f}% of a core  (goal <= 50 MB)"))
    print_table(f"idle agent, arcade-cpu + arcade-memory at 10 s ({seconds:g} s)", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", help="check, install and/or idle (default: all)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args()
    args.which = args.which or ["check", "install", "idle"]
    unknown = set(args.which) - {"check", "install", "idle"}
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(sorted(unknown))}")
    if "check" in args.which:
        bench_check(args.rounds)
    if not {"install", "idle"} & set(args.which):
        return
    with tempfile.TemporaryDirectory(prefix="arcade-bench-trust-") as tmp:
        work = Path(tmp)
        server = Server(work / "server", work / "server.log").start()
        try:
            if "install" in args.which:
                bench_install(server, work, args.rounds)
            if "idle" in args.which:
                bench_idle(server, work, args.idle_seconds)
        finally:
            server.close()


if __name__ == "__main__":
    main()
