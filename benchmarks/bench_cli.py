"""How fast the ``arcade`` command starts: wall time beside ``python -c pass``.

Usage::

    python benchmarks/bench_cli.py [--venv DIR] [--runs 10] [--no-server]

``--venv`` is the environment whose ``bin/arcade`` and ``bin/python`` are timed (default: the
one running this script), so an older checkout can be measured the same way for a before/after
comparison. Each command runs ``--runs`` times after one warm-up run; the median wall time is
printed with its ratio to ``python -c pass`` of the same interpreter (the floor no command can
beat), and so is the median CPU time (user + system), which a busy machine disturbs less.
Unless ``--no-server``, a real ``arcade server`` (SQLite, loopback ports) is started in a
temporary directory so ``arcade status`` and ``arcade agents`` are timed with a real
request. Goals: ``arcade status --help`` ≤ 150 ms, ``arcade status`` ≤ 200 ms.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import median, print_table

__all__ = ["main"]


def _time(argv: Sequence[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system, the OS's accounting of the
    child) of ``argv`` over ``runs`` runs (after one warm-up), in seconds. On a busy machine
    the CPU time moves much less than the wall time."""
    walls, cpus = [], []
    for i in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                       check=False)
        took = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if i:
            walls.append(took)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return median(walls), median(cpus)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(arcade: Path, home: Path,
                  env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    http, grpc = _free_port(), _free_port()
    proc = subprocess.Popen(
        [str(arcade), "server", "--home", str(home),
         "--http-port", str(http), "--grpc-port", str(grpc), "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    url = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 60
    while True:
        try:
            health = urllib.request.Request(url + "/api/v1/health", headers={
                "Authorization": f"Bearer {env['ARCADE_SERVER_ADMIN_TOKEN']}"})
            with urllib.request.urlopen(health, timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("arcade server did not start") from None
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path(sys.prefix),
                        help="the environment to time (default: this one)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-server", action="store_true",
                        help="skip the commands that need a running server")
    args = parser.parse_args(argv)
    python = args.venv / "bin" / "python"
    arcade = args.venv / "bin" / "arcade"
    token = "arcade_bench_" + secrets.token_urlsafe(24)
    # The server's first admin token, and the commands' token.
    env = {**os.environ, "COLUMNS": "120", "ARCADE_SERVER_ADMIN_TOKEN": token,
           "ARCADE_TOKEN": token}
    floor, floor_cpu = _time([str(python), "-c", "pass"], args.runs, env)
    commands: list[tuple[str, list[str]]] = [
        ("arcade --help", [str(arcade), "--help"]),
        ("arcade status --help", [str(arcade), "status", "--help"]),
    ]
    server = None
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        try:
            if not args.no_server:
                server, url = _start_server(arcade, Path(tmp) / "server", env)
                commands += [
                    ("arcade status --agent X", [str(arcade), "status", "--agent", "bench",
                                                 "--api", url]),
                    ("arcade agents", [str(arcade), "agents", "--api", url]),
                ]
            rows = [("python -c pass",
                     f"{floor * 1e3:6.1f} ms wall, cpu {floor_cpu * 1e3:5.1f} ms")]
            for label, command in commands:
                took, cpu = _time(command, args.runs, env)
                rows.append((label, f"{took * 1e3:6.1f} ms wall ({took / floor:.1f}x python -c "
                                    f"pass, +{(took - floor) * 1e3:.0f} ms), cpu "
                                    f"{cpu * 1e3:5.1f} ms ({cpu / floor_cpu:.1f}x)"))
        finally:
            if server is not None:
                server.terminate()
                server.wait(30)
    print_table(f"CLI start, median of {args.runs} runs ({args.venv})", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
