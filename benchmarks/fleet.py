"""Fleet scale: what one ``arcade server`` process holds, and how its cost grows with N agents.

For each fleet size N the benchmark starts a real ``arcade server`` process (loopback, ports
chosen by the OS, SQLite in a temp home by default) and N simulated agents in ``--procs``
separate processes (:mod:`benchmarks._fleet_agents`): each agent speaks the real protocol
(Register, heartbeats, status reports, metric batches, DownloadWheel with size + sha256 +
RECORD checks, honest install work), on its own TCP connection unless
``--agents-per-channel`` says otherwise. It then measures, from outside the server:

* **connect**: time until all N agents are welcomed and hold their first desired state;
* **rollouts** (``--rounds`` cycles, medians quoted): a fleet-wide install through
  ``POST /api/v1/assignments?wait=…`` with an empty selector, an upgrade, and an uninstall
  (``POST /api/v1/assignments/remove``), each until every agent runs the desired state.
  "No agent left behind" is checked three ways: the REST answer lists every agent
  ``running``; every simulated agent holds exactly the desired plugins; and
  ``GET /api/v1/agents`` shows every agent online with ``applied == desired`` revision;
* **idle**: server CPU (share of one core) and RSS while N agents send heartbeats every
  ``--heartbeat`` seconds, over ``--idle-seconds``;
* **metrics**: the same while every agent also sends a batch of ``--metrics-per-batch``
  metrics every ``--metric-interval`` seconds; then every row is checked to be stored;
* **list**: ``GET /api/v1/agents`` latency with N agents (``--list-rounds`` calls);
* **storm**: the server restarted (SIGTERM, same home and ports) under the enrolled fleet,
  timed until every agent is welcomed again.

**The floor** (``--floor``, on by default): then the same simulated agents (same code, same
number of processes, enrolled the same way over mutual TLS) run the same connect, rollouts,
idle window and restart against :mod:`benchmarks._floor_server`, a bare grpc.aio
``AgentService`` with the same TLS, gRPC options, desired-state message, wheel bytes and chunk
size but no database, REST or services: what any server must at least do. A last table puts
the real server beside the floor with the ratio (real ÷ floor), which is the overhead of
Arcade's server and, unlike the absolute figures, holds on a busy or slow machine.

    python benchmarks/fleet.py --agents 100,1000,5000 [--procs 2] [--rounds 3]
        [--heartbeat 10] [--idle-seconds 30] [--database sqlite|postgres|postgresql://…]
        [--agents-per-channel 1] [--unpack] [--log-dir DIR] [--no-floor]

Each rollout line shows where the time went: when the last agent got its desired state,
when the last one had its wheels, when the last final report was sent, and the CPU seconds
the server and the agent processes used. The simulated agents share the machine's cores
with the server (on a 2-core machine they take most of the second core during a rollout),
so the absolute figures understate what the server alone would do; the floor shares the
machine the same way. ``ulimit -n`` is raised for
the server and the agents (two descriptors per agent connection, one on each side).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import re
import resource
import secrets
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._fleet_agents import Command, FleetConfig, worker_main  # noqa: E402
from benchmarks._floor_server import GRPC_OPTIONS as FLOOR_GRPC_OPTIONS  # noqa: E402
from benchmarks._util import median, percentile  # noqa: E402
from tests.wheelmaker import make_wheel  # noqa: E402

ARCADE = Path(sys.executable).with_name("arcade")
PLUGIN = "fleet-tiny"
_LISTENING = re.compile(r"REST (http://\S+) \(OpenAPI.*gRPC (\S+); home")


# ---------------------------------------------------------------------- the server process


class ServerProc:
    """``arcade server`` in its own process, on loopback ports chosen by the OS."""

    def __init__(self, home: Path, database: str, heartbeat: float, http_port: int = 0,
                 grpc_port: int = 0) -> None:
        self.home = home
        self.database, self.heartbeat = database, heartbeat
        self.log_path = home / "server.log"
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        args = [str(ARCADE), "server", "--home", str(home),
                "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
        if database:
            args += ["--database", database]
        #: The first admin token: set, so the client can use it as soon as the server listens.
        self.admin_token = "arcade_bench_" + secrets.token_urlsafe(24)
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "ARCADE_SERVER_ADMIN_TOKEN": self.admin_token,
               "ARCADE_SERVER_HEARTBEAT_INTERVAL": str(heartbeat),
               "ARCADE_SERVER_OFFLINE_AFTER": str(heartbeat * 3.5)}
        home.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         cwd=REPO, start_new_session=True)
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + 60
        while True:
            match = _LISTENING.search(self.log()[self._log_start:])
            if match:
                self.http_url, self.grpc_target = match.group(1), match.group(2)
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"arcade server did not start:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        self.api = httpx.Client(base_url=self.http_url + "/api/v1", timeout=300,
                                headers={"Authorization": f"Bearer {self.admin_token}"})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def enrollment(self) -> tuple[bytes, str]:
        """The CA agents trust and a token any number of them may enroll with."""
        response = self.api.post("/enrollment-tokens",
                                 json={"name": "fleet", "ttl": 86400})
        response.raise_for_status()
        return (self.home / "tls" / "ca.pem").read_bytes(), response.json()["token"]

    def restart(self) -> ServerProc:
        """Stop (SIGTERM) and start again on the same home and ports."""
        http_port = int(self.http_url.rsplit(":", 1)[1])
        grpc_port = int(self.grpc_target.rsplit(":", 1)[1])
        self.stop()
        return ServerProc(self.home, self.database, self.heartbeat, http_port, grpc_port)

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def cpu_s(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def stop(self) -> int | None:
        self.api.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode


class FloorProc:
    """The floor (:mod:`benchmarks._floor_server`) in its own process: the same protocol, TLS,
    gRPC options, wheels and chunk size as ``arcade server``, and nothing else. Commands go
    to its stdin, one JSON line each; it answers one JSON line on stdout."""

    def __init__(self, home: Path, wheels: Path, heartbeat: float, grpc_port: int = 0,
                 revision: int = 0, desired: str = "", token: str = "") -> None:
        from arcade_server.settings import Settings

        self.home, self.wheels, self.heartbeat = home, wheels, heartbeat
        self.revision, self.desired = revision, desired
        self.token = token or "arcade_floor_" + secrets.token_urlsafe(24)
        home.mkdir(parents=True, exist_ok=True)
        self.log_path = home / "floor.log"
        args = [sys.executable, str(REPO / "benchmarks" / "_floor_server.py"),
                "--home", str(home), "--wheels", str(wheels), "--grpc-port", str(grpc_port),
                "--heartbeat", str(heartbeat), "--chunk-size", str(Settings.chunk_size),
                "--revision", str(revision), "--desired", desired]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                cwd=REPO, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "ARCADE_FLOOR_TOKEN": self.token})
        self.ps = psutil.Process(self.proc.pid)
        hello = self._answer(60)
        self.grpc_target: str = hello["grpc_target"]
        self.ca_pem = Path(hello["ca"]).read_bytes()

    def _answer(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError("the floor server did not answer:\n"
                               + self.log_path.read_text(errors="replace")[-3000:])
        answer: dict[str, Any] = json.loads(line)
        return answer

    def call(self, command: dict[str, Any], wait: float = 60.0) -> dict[str, Any]:
        """Send ``command``; its answer, within ``wait`` seconds (plus a margin)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._answer(wait + 30)

    def enrollment(self) -> tuple[bytes, str]:
        return self.ca_pem, self.token

    def restart(self) -> FloorProc:
        """Stop (SIGTERM) and start again on the same home and port, with the state rolled
        out last (the real server keeps it in its database)."""
        port = int(self.grpc_target.rsplit(":", 1)[1])
        self.stop()
        return FloorProc(self.home, self.wheels, self.heartbeat, port, self.revision,
                         self.desired, self.token)

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def cpu_s(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        return self.proc.returncode


class PeakRss:
    """Samples the server's RSS every 0.2 s in a thread; :attr:`peak` is the highest seen."""

    def __init__(self, server: ServerProc | FloorProc) -> None:
        self.server = server
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.server.rss_mb())
            self._stop.wait(0.2)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def cpu_window(server: ServerProc | FloorProc) -> Iterator[dict[str, float]]:
    """Yields a dict filled on exit with the server's CPU seconds and share of one core."""
    out: dict[str, float] = {}
    cpu0, wall0 = server.cpu_s(), time.monotonic()
    yield out
    out["cpu_s"] = server.cpu_s() - cpu0
    out["wall_s"] = time.monotonic() - wall0
    out["share"] = out["cpu_s"] / out["wall_s"]


# ---------------------------------------------------------------------- databases


class Databases:
    """Where each run's database lives: a SQLite file in the run's home (default), a
    throwaway PostgreSQL cluster (``postgres``), or new databases on a given server (URL)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.cluster: Any = None
        if spec == "postgres":
            from tests.pg import start_cluster

            self.cluster = start_cluster()
        elif spec.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            from sqlalchemy.engine import make_url

            from tests.pg import PostgresCluster

            url = make_url(spec.replace("postgres://", "postgresql://", 1))
            self.cluster = PostgresCluster(
                host=url.host or "127.0.0.1", port=url.port or 5432,
                user=url.username or "postgres", password=url.password or "",
                admin_db=url.database or "postgres")
        elif spec != "sqlite":
            raise SystemExit(f"--database {spec!r}: use sqlite, postgres or a postgresql:// URL")

    def new(self, home: Path) -> str:
        """A fresh database URL for one run ('' = the server's default SQLite file)."""
        return self.cluster.create_database() if self.cluster is not None else ""

    def url(self, home: Path, url: str) -> str:
        return url or f"sqlite:///{home / 'arcade.db'}"

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


def count_metric_rows(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM metrics")).scalar_one())
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- the fleet


class Fleet:
    """The worker processes running the simulated agents."""

    def __init__(self, target: str, n: int, procs: int, args: argparse.Namespace,
                 enrollment: tuple[bytes, str] = (b"", "")) -> None:
        ctx = multiprocessing.get_context("spawn")
        ids = [f"fleet-{i:05d}" for i in range(n)]
        self.n = n
        self.workers: list[tuple[Any, Any]] = []
        for p in range(procs):
            share = tuple(ids[p::procs])
            if not share:
                continue
            config = FleetConfig(
                target=target, agent_ids=share, agents_per_channel=args.agents_per_channel,
                install_delay=args.install_delay, unpack=args.unpack,
                metrics_per_batch=args.metrics_per_batch, metric_interval=args.metric_interval,
                labels={"bench": "fleet", "shard": str(p)},
                ca_pem=enrollment[0], token=enrollment[1],
            )
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, config), daemon=True)
            proc.start()
            self.workers.append((proc, parent))
        self.channels = sum(self._recv(pipe, 120)["channels"] for _, pipe in self.workers)

    @staticmethod
    def _recv(pipe: Any, timeout: float) -> dict[str, Any]:
        if not pipe.poll(timeout):
            raise RuntimeError(f"a fleet worker did not answer within {timeout:.0f}s")
        answer: dict[str, Any] = pipe.recv()
        return answer

    def ask(self, command: str, *args: Any, timeout: float = 600) -> list[dict[str, Any]]:
        for _, pipe in self.workers:
            pipe.send((command, args))
        return [self._recv(pipe, timeout) for _, pipe in self.workers]

    def stop(self) -> None:
        for _proc, pipe in self.workers:
            with contextlib.suppress(Exception):
                pipe.send((Command.STOP, ()))
        for proc, pipe in self.workers:
            with contextlib.suppress(Exception):
                self._recv(pipe, 30)
            proc.join(15)
            if proc.is_alive():
                proc.kill()


# ---------------------------------------------------------------------- one fleet size


@dataclass
class RunResult:
    n: int
    connect_s: float = 0.0
    connect_retries: int = 0
    register_p50_ms: float = 0.0
    rss_empty: float = 0.0
    rss_connected: float = 0.0
    rss_idle: float = 0.0
    storm_s: float = 0.0
    rss_metrics: float = 0.0
    rss_peak: float = 0.0
    rollouts: dict[str, list[float]] = field(default_factory=dict)     # REST-confirmed s
    agent_side: dict[str, list[float]] = field(default_factory=dict)   # last agent final s
    rollout_cpu: dict[str, list[float]] = field(default_factory=dict)  # server CPU s
    idle_cpu: float = 0.0
    metrics_cpu: float = 0.0
    metric_rows: tuple[int, int] = (0, 0)
    list_ms: list[float] = field(default_factory=list)
    client_cpu_s: float = 0.0
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)
    broke: str = ""


def _check_agents(server: ServerProc, n: int) -> None:
    """Every agent is listed, online, and applied the revision it was last given."""
    listed = server.api.get("/agents").json()
    assert len(listed) == n, f"GET /agents listed {len(listed)} agents, expected {n}"
    behind = [a["id"] for a in listed
              if not a["online"] or a["applied_revision"] != a["desired_revision"]]
    assert not behind, f"{len(behind)} agents behind or offline, e.g. {behind[:5]}"


def _agents_hold(fleet: Fleet, what: str, expected: dict[str, str], timeout: float,
                 started: float, client0: float) -> tuple[float, float, float, float]:
    """Wait until every simulated agent holds ``expected``; return when the last one got its
    desired state, had its wheels and sent its final report (s after ``started``), and the
    agents' CPU seconds since ``client0``."""
    waits = fleet.ask(Command.WAIT, expected, timeout)
    behind = [a for w in waits for a in w["behind"]]
    assert not behind, (f"{what}: {len(behind)} agents left behind, e.g. {behind[:5]}; "
                        f"errors: {[e for w in waits for e in w['errors']][:5]}")
    agent_s = max(t for w in waits for t in w["final_at"]) - started
    pushed_s = max(t for w in waits for t in w["desired_at"]) - started
    fetched = [t for w in waits for t in w["fetched_at"] if t]
    fetched_s = (max(fetched) - started) if fetched else float("nan")
    return agent_s, pushed_s, fetched_s, sum(w["cpu_s"] for w in waits) - client0


def _rollout(
    server: ServerProc, fleet: Fleet, result: RunResult, what: str,
    request: tuple[str, dict[str, Any]], expected: dict[str, str], timeout: float,
) -> None:
    path, body = request
    client0 = sum(s["cpu_s"] for s in fleet.ask(Command.STATS))
    cpu0 = server.cpu_s()
    started = time.time()
    response = server.api.post(path, json=body, params={"wait": timeout} if expected else None,
                               timeout=timeout + 60)
    rest_s = time.time() - started
    assert response.status_code in (200, 202), response.text
    answer = response.json()
    assert answer["matched"] == fleet.n, f"{what}: matched {answer['matched']} of {fleet.n}"
    if expected:
        assert response.status_code == 200, (
            f"{what}: not every agent reported within {timeout}s: running "
            f"{answer.get('running')}, failed {answer.get('failed')}")
        errors = sorted({o["error"][:200] for o in answer["states"].values()
                         if o and o["state"] == "failed"})
        assert answer["running"] == fleet.n and answer["failed"] == 0, (
            f"{what}: running {answer['running']}, failed {answer['failed']} of {fleet.n}; "
            f"errors: {errors[:3]}")
    agent_s, pushed_s, fetched_s, client_s = _agents_hold(fleet, what, expected, timeout,
                                                          started, client0)
    if not expected:
        # No ?wait for removals: converged when the server shows every report applied.
        deadline = time.time() + timeout
        while True:
            try:
                _check_agents(server, fleet.n)
                break
            except AssertionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        rest_s = time.time() - started
    else:
        _check_agents(server, fleet.n)
    result.rollouts.setdefault(what, []).append(rest_s)
    result.agent_side.setdefault(what, []).append(agent_s)
    server_s = server.cpu_s() - cpu0
    result.rollout_cpu.setdefault(what, []).append(server_s)
    print(f"    {what:<9} {rest_s * 1000:6.0f} ms server-confirmed; last agent: desired at "
          f"{pushed_s * 1000:4.0f}, wheels at {fetched_s * 1000:4.0f}, final at "
          f"{agent_s * 1000:4.0f} ms; CPU server {server_s:4.2f} s, agents {client_s:4.2f} s",
          flush=True)


def run_size(n: int, args: argparse.Namespace, databases: Databases, work: Path,
             wheels: Path) -> RunResult:
    result = RunResult(n)
    home = work / f"server-{n}"
    database = databases.new(home)
    server = ServerProc(home, database, args.heartbeat)
    peak = PeakRss(server)
    fleet: Fleet | None = None
    timeout = max(60.0, n / 20)
    try:
        for path in sorted(wheels.glob("*.whl")):
            upload = ("wheels", (path.name, path.read_bytes(), "application/octet-stream"))
            response = server.api.post("/plugins", files=[upload])
            assert response.status_code in (200, 201), response.text
        server.api.get("/agents").raise_for_status()
        time.sleep(1.0)
        result.rss_empty = server.rss_mb()

        enrolling = time.perf_counter()
        fleet = Fleet(server.grpc_target, n, args.procs, args, server.enrollment())
        print(f"    enroll    {time.perf_counter() - enrolling:8.1f} s for {n} agents (key, CSR, "
              "Enroll; then one mutual-TLS connection each)", flush=True)
        print(f"\n### N = {n}: {args.procs} agent processes, {fleet.channels} channels "
              f"(TCP connections), server pid {server.proc.pid}", flush=True)
        answers = fleet.ask(Command.CONNECT, timeout)
        started = min(a["started"] for a in answers)
        welcomed = sum(a["welcomed"] for a in answers)
        desired = [t for a in answers for t in a["desired_at"]]
        if welcomed < n or len(desired) < n:
            result.broke = (f"only {welcomed} of {n} agents were welcomed and {len(desired)} "
                            f"got a desired state within {timeout:.0f}s")
            raise AssertionError(result.broke)
        result.connect_s = max(desired) - started
        result.connect_retries = sum(a["retries"] for a in answers)
        result.register_p50_ms = median([t - started for a in answers
                                         for t in a["welcomed_at"]]) * 1000
        health = server.api.get("/health").json()
        assert health["connected_agents"] == n, health
        print(f"    connect   {result.connect_s * 1000:8.0f} ms for all {n} (median agent "
              f"welcomed at {result.register_p50_ms:.0f} ms; {result.connect_retries} "
              "attempts failed in the storm and were retried with backoff)", flush=True)
        time.sleep(2.0)
        result.rss_connected = server.rss_mb()
        print(f"    memory    server RSS {result.rss_empty:.0f} MB empty, "
              f"{result.rss_connected:.0f} MB with {n} agents connected", flush=True)

        for k in range(args.rounds):
            v1, v2 = f"1.{k}.0", f"1.{k}.1"
            _rollout(server, fleet, result, "install",
                     ("/assignments", {"selector": {}, "plugin": f"{PLUGIN}@{v1}"}),
                     {PLUGIN: v1}, timeout)
            _rollout(server, fleet, result, "upgrade",
                     ("/assignments", {"selector": {}, "plugin": f"{PLUGIN}@{v2}"}),
                     {PLUGIN: v2}, timeout)
            _rollout(server, fleet, result, "uninstall",
                     ("/assignments/remove", {"selector": {}, "plugin": PLUGIN}), {}, timeout)
        # Leave a plugin installed for the idle phases, as a real fleet would have.
        _rollout(server, fleet, result, "install",
                 ("/assignments", {"selector": {}, "plugin": f"{PLUGIN}@1.0.0"}),
                 {PLUGIN: "1.0.0"}, timeout)

        time.sleep(2.0)
        with cpu_window(server) as idle:
            time.sleep(args.idle_seconds)
        result.idle_cpu = idle["share"]
        result.rss_idle = server.rss_mb()
        print(f"    idle      server CPU {idle['share'] * 100:5.1f}% of a core over "
              f"{idle['wall_s']:.0f} s, RSS {result.rss_idle:.0f} MB", flush=True)

        before_rows = count_metric_rows(databases.url(home, database))
        before = sum(s["metric_batches"] for s in fleet.ask(Command.STATS))
        fleet.ask(Command.METRICS, True)
        time.sleep(args.metric_interval)   # every agent's first batch (random phase)
        with cpu_window(server) as flowing:
            time.sleep(args.idle_seconds)
        fleet.ask(Command.METRICS, False)
        result.metrics_cpu = flowing["share"]
        result.rss_metrics = server.rss_mb()
        sent = (sum(s["metric_batches"] for s in fleet.ask(Command.STATS)) - before) \
            * args.metrics_per_batch
        deadline = time.time() + 30
        while True:
            stored = count_metric_rows(databases.url(home, database)) - before_rows
            if stored >= sent or time.time() > deadline:
                break
            time.sleep(0.2)
        result.metric_rows = (stored, sent)
        assert stored == sent, f"metrics: {stored} rows stored of {sent} sent"
        print(f"    metrics   server CPU {flowing['share'] * 100:5.1f}% of a core, RSS "
              f"{result.rss_metrics:.0f} MB, {sent} rows sent, all stored "
              f"({sent / (args.idle_seconds + args.metric_interval):.0f}/s)", flush=True)

        for _ in range(args.list_rounds):
            t0 = time.perf_counter()
            listed = server.api.get("/agents")
            result.list_ms.append((time.perf_counter() - t0) * 1000)
            assert listed.status_code == 200 and len(listed.json()) == n
        print(f"    list      GET /agents p50 {median(result.list_ms):.1f} ms, p90 "
              f"{percentile(result.list_ms, 90):.1f} ms", flush=True)

        stats = fleet.ask(Command.STATS)
        result.client_cpu_s = sum(s["cpu_s"] for s in stats)
        result.reconnects = sum(s["reconnects"] for s in stats) - result.connect_retries
        result.errors = [e for s in stats for e in s["errors"]][:5]
        if result.reconnects:
            print(f"    WARNING: {result.reconnects} streams broke after the connect phase; "
                  f"last errors: {result.errors}")

        # Reconnect storm: restart the server under the enrolled fleet (same home, same
        # ports); every agent comes back with its certificate and capped, jittered backoff.
        restarted = time.time()
        server = server.restart()
        ready = time.time() - restarted
        back = fleet.ask(Command.REJOIN, restarted, timeout, timeout=timeout + 60)
        returned = sum(b["back"] for b in back)
        result.storm_s = max(b["last"] for b in back) - restarted
        print(f"    storm     server restarted (listening after {ready:.1f} s); {returned} of "
              f"{n} agents online again after {result.storm_s:.1f} s  (goal <= 15 s for "
              "1,000)", flush=True)
        if returned < n:
            result.broke = f"only {returned} of {n} agents came back after a restart"
            raise AssertionError(result.broke)
    except AssertionError as exc:
        result.broke = result.broke or str(exc)
        print(f"    BROKE at N = {n}: {result.broke}", flush=True)
    finally:
        if fleet is not None:
            fleet.stop()
        peak.close()
        result.rss_peak = peak.peak
        code = server.stop()
        if code not in (0, None):
            print(f"    server exited with {code}:\n{server.log()[-2000:]}")
        if args.log_dir:
            Path(args.log_dir).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(server.log_path, Path(args.log_dir) / f"server-{n}.log")
    return result


def _floor_rollout(floor: FloorProc, fleet: Fleet, result: RunResult, what: str,
                   version: str | None, timeout: float) -> None:
    """One rollout on the floor: push, wait for every agent's report, check every agent."""
    client0 = sum(s["cpu_s"] for s in fleet.ask(Command.STATS))
    cpu0 = floor.cpu_s()
    started = time.time()
    answer = floor.call({"cmd": "rollout", "plugin": PLUGIN, "version": version,
                         "expect": fleet.n, "timeout": timeout}, timeout)
    confirmed_s = time.time() - started
    assert answer["converged"], f"floor {what}: {answer['confirmed']} of {fleet.n} confirmed"
    floor.revision, floor.desired = answer["revision"], f"{PLUGIN}@{version}" if version else ""
    expected = {PLUGIN: version} if version else {}
    agent_s, pushed_s, fetched_s, client_s = _agents_hold(fleet, what, expected, timeout,
                                                          started, client0)
    floor_s = floor.cpu_s() - cpu0
    result.rollouts.setdefault(what, []).append(confirmed_s)
    result.agent_side.setdefault(what, []).append(agent_s)
    result.rollout_cpu.setdefault(what, []).append(floor_s)
    print(f"    {what:<9} {confirmed_s * 1000:6.0f} ms floor-confirmed; last agent: desired at "
          f"{pushed_s * 1000:4.0f}, wheels at {fetched_s * 1000:4.0f}, final at "
          f"{agent_s * 1000:4.0f} ms; CPU floor {floor_s:4.2f} s, agents {client_s:4.2f} s",
          flush=True)


def run_floor(n: int, args: argparse.Namespace, work: Path, wheels: Path) -> RunResult:
    """The same simulated agents against the floor server: connect, rollouts, idle, storm."""
    result = RunResult(n)
    floor = FloorProc(work / f"floor-{n}", wheels, args.heartbeat)
    peak = PeakRss(floor)
    fleet: Fleet | None = None
    timeout = max(60.0, n / 20)
    try:
        time.sleep(1.0)
        result.rss_empty = floor.rss_mb()
        fleet = Fleet(floor.grpc_target, n, args.procs, args, floor.enrollment())
        print(f"\n### N = {n}, FLOOR (bare grpc.aio server, same TLS, protocol, wheels and "
              f"agents): {args.procs} agent processes, {fleet.channels} channels, floor pid "
              f"{floor.proc.pid}", flush=True)
        answers = fleet.ask(Command.CONNECT, timeout)
        started = min(a["started"] for a in answers)
        desired = [t for a in answers for t in a["desired_at"]]
        if sum(a["welcomed"] for a in answers) < n or len(desired) < n:
            raise AssertionError(f"floor: only {len(desired)} of {n} agents got a desired state")
        result.connect_s = max(desired) - started
        result.connect_retries = sum(a["retries"] for a in answers)
        assert floor.call({"cmd": "status"})["connected"] == n
        print(f"    connect   {result.connect_s * 1000:8.0f} ms for all {n} "
              f"({result.connect_retries} attempts retried)", flush=True)
        time.sleep(2.0)
        result.rss_connected = floor.rss_mb()
        print(f"    memory    floor RSS {result.rss_empty:.0f} MB empty, "
              f"{result.rss_connected:.0f} MB with {n} agents connected", flush=True)
        for k in range(args.rounds):
            _floor_rollout(floor, fleet, result, "install", f"1.{k}.0", timeout)
            _floor_rollout(floor, fleet, result, "upgrade", f"1.{k}.1", timeout)
            _floor_rollout(floor, fleet, result, "uninstall", None, timeout)
        _floor_rollout(floor, fleet, result, "install", "1.0.0", timeout)
        time.sleep(2.0)
        with cpu_window(floor) as idle:
            time.sleep(args.idle_seconds)
        result.idle_cpu = idle["share"]
        result.rss_idle = floor.rss_mb()
        print(f"    idle      floor CPU {idle['share'] * 100:5.1f}% of a core over "
              f"{idle['wall_s']:.0f} s, RSS {result.rss_idle:.0f} MB", flush=True)
        restarted = time.time()
        floor = floor.restart()
        back = fleet.ask(Command.REJOIN, restarted, timeout, timeout=timeout + 60)
        returned = sum(b["back"] for b in back)
        result.storm_s = max(b["last"] for b in back) - restarted
        print(f"    storm     floor restarted; {returned} of {n} agents online again after "
              f"{result.storm_s:.1f} s", flush=True)
        if returned < n:
            raise AssertionError(f"only {returned} of {n} agents came back to the floor")
    except (AssertionError, RuntimeError) as exc:
        result.broke = str(exc)
        print(f"    FLOOR BROKE at N = {n}: {result.broke}", flush=True)
    finally:
        if fleet is not None:
            fleet.stop()
        peak.close()
        result.rss_peak = peak.peak
        floor.stop()
        if args.log_dir:
            Path(args.log_dir).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(floor.log_path, Path(args.log_dir) / f"floor-{n}.log")
    return result


# ---------------------------------------------------------------------- report


def _med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_summary(results: Sequence[RunResult], args: argparse.Namespace) -> None:
    print("\n## Fleet scale (medians over", args.rounds, "rollout rounds)\n")
    print("| N agents | connect all | install → all running | upgrade | uninstall | "
          f"idle CPU (hb every {args.heartbeat:g}s) | CPU with metrics | RSS idle | RSS peak | "
          "RSS/agent | GET /agents p50 |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        if r.broke and not r.rollouts:
            print(f"| {r.n:,} | broke: {r.broke} |" + " |" * 9)
            continue
        per_agent = (r.rss_idle - r.rss_empty) * 1024 / r.n if r.rss_idle else float("nan")
        print(f"| {r.n:,} | {r.connect_s:.2f} s | {_med(r.rollouts.get('install', [])):.2f} s "
              f"| {_med(r.rollouts.get('upgrade', [])):.2f} s "
              f"| {_med(r.rollouts.get('uninstall', [])):.2f} s "
              f"| {r.idle_cpu * 100:.1f}% | {r.metrics_cpu * 100:.1f}% "
              f"| {r.rss_idle:.0f} MB | {r.rss_peak:.0f} MB | {per_agent:.0f} KB "
              f"| {_med(r.list_ms):.0f} ms |")
    print("\nAgent-side (last agent's final report sent), medians: " + "; ".join(
        f"N={r.n:,}: " + ", ".join(f"{k} {_med(v):.2f} s" for k, v in r.agent_side.items())
        for r in results if r.agent_side))
    print("Server CPU per rollout, medians: " + "; ".join(
        f"N={r.n:,}: " + ", ".join(f"{k} {_med(v):.2f} s" for k, v in r.rollout_cpu.items())
        for r in results if r.rollout_cpu))
    print("Load generator CPU (all agent processes, whole run): " + "; ".join(
        f"N={r.n:,}: {r.client_cpu_s:.0f} s" for r in results))
    ok = [r for r in results if not r.broke]
    if len(ok) >= 2:
        a, b = ok[0], ok[-1]
        factor = b.n / a.n
        print(f"Growth {a.n:,} → {b.n:,} agents (x{factor:g}): install convergence "
              f"x{_med(b.rollouts['install']) / _med(a.rollouts['install']):.1f}, RSS above "
              f"empty x{(b.rss_idle - b.rss_empty) / max(0.1, a.rss_idle - a.rss_empty):.1f}, "
              f"idle CPU x{b.idle_cpu / max(1e-9, a.idle_cpu):.1f}, GET /agents "
              f"x{_med(b.list_ms) / _med(a.list_ms):.1f}")
    for r in results:
        if r.broke:
            print(f"N={r.n:,} broke: {r.broke}")


def _ratio(real: float, floor: float) -> str:
    return f"x{real / floor:.1f}" if floor > 0 and real == real and floor == floor else "–"


def print_floor(results: Sequence[RunResult], floors: Sequence[RunResult]) -> None:
    """Real server beside the floor measured in the same run: the ratio is Arcade's overhead,
    which holds on any machine where the absolute figures do not."""
    print("\n## Real server vs floor (bare grpc.aio, same TLS, protocol, wheels and agents; "
          "medians)\n")
    print("| N agents | server | install → all running | upgrade | uninstall | CPU per install "
          "| connect all | RSS connected | RSS idle | idle CPU | restart → all online |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for real, floor in zip(results, floors, strict=True):
        rows = [("real", real), ("floor", floor)]
        for label, r in rows:
            print(f"| {r.n:,} | {label} | {_med(r.rollouts.get('install', [])):.2f} s "
                  f"| {_med(r.rollouts.get('upgrade', [])):.2f} s "
                  f"| {_med(r.rollouts.get('uninstall', [])):.2f} s "
                  f"| {_med(r.rollout_cpu.get('install', [])):.2f} s | {r.connect_s:.2f} s "
                  f"| {r.rss_connected:.0f} MB | {r.rss_idle:.0f} MB | {r.idle_cpu * 100:.1f}% "
                  f"| {r.storm_s:.1f} s |")
        cells = [_ratio(_med(real.rollouts.get(k, [])), _med(floor.rollouts.get(k, [])))
                 for k in ("install", "upgrade", "uninstall")]
        cells.append(_ratio(_med(real.rollout_cpu.get("install", [])),
                            _med(floor.rollout_cpu.get("install", []))))
        cells += [_ratio(real.connect_s, floor.connect_s),
                  _ratio(real.rss_connected, floor.rss_connected),
                  _ratio(real.rss_idle, floor.rss_idle), _ratio(real.idle_cpu, floor.idle_cpu),
                  _ratio(real.storm_s, floor.storm_s)]
        print(f"| {real.n:,} | real ÷ floor | " + " | ".join(cells) + " |")
    for r in floors:
        if r.broke:
            print(f"N={r.n:,} floor broke: {r.broke}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", default="100,1000,5000",
                        help="comma-separated fleet sizes [100,1000,5000]")
    parser.add_argument("--procs", type=int, default=2, help="agent processes [2]")
    parser.add_argument("--agents-per-channel", type=int, default=1,
                        help="agents sharing one gRPC channel / TCP connection [1]")
    parser.add_argument("--rounds", type=int, default=3,
                        help="install/upgrade/uninstall cycles per size [3]")
    parser.add_argument("--heartbeat", type=float, default=10.0,
                        help="heartbeat interval told to agents, seconds [10]")
    parser.add_argument("--idle-seconds", type=float, default=30.0,
                        help="length of the idle and metrics CPU windows [30]")
    parser.add_argument("--metric-interval", type=float, default=10.0,
                        help="seconds between an agent's metric batches [10]")
    parser.add_argument("--metrics-per-batch", type=int, default=6, help="[6]")
    parser.add_argument("--install-delay", type=float, default=0.004,
                        help="simulated env build + load time per install, seconds [0.004]")
    parser.add_argument("--unpack", action="store_true",
                        help="really unpack each wheel into a temp dir while installing")
    parser.add_argument("--list-rounds", type=int, default=20, help="GET /agents calls [20]")
    parser.add_argument("--log-dir", help="keep each run's server log here")
    parser.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the same agents against a bare grpc.aio server (the "
                             "floor) and print real vs floor [on]")
    parser.add_argument("--database", default="sqlite",
                        help="sqlite (default), postgres (throwaway cluster), or a URL")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.agents.split(",") if s.strip()]

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * max(sizes) + 1024))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))   # inherited by the server
    print(f"fleet benchmark: sizes {sizes}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.2f}, ulimit -n {want}, database {args.database}")
    print("command: python benchmarks/fleet.py " + " ".join(sys.argv[1:] if argv is None
                                                             else argv))

    from arcade_server.runner import grpc_options
    from arcade_server.settings import Settings

    if grpc_options(Settings()) != FLOOR_GRPC_OPTIONS:
        raise SystemExit("benchmarks/_floor_server.py: GRPC_OPTIONS differ from the server's")
    databases = Databases(args.database)
    results: list[RunResult] = []
    floors: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="arcade-fleet-") as tmp:
        work = Path(tmp)
        wheels = work / "wheels"
        for k in range(args.rounds):
            for v in (f"1.{k}.0", f"1.{k}.1"):
                make_wheel(wheels, PLUGIN, v)
        if args.rounds == 0 or not (wheels / f"{PLUGIN.replace('-', '_')}-1.0.0-py3-none-any.whl"
                                    ).exists():
            make_wheel(wheels, PLUGIN, "1.0.0")
        try:
            for n in sizes:
                results.append(run_size(n, args, databases, work, wheels))
                if args.floor:
                    floors.append(run_floor(n, args, work, wheels))
        finally:
            databases.close()
    print_summary(results, args)
    if floors:
        print_floor(results, floors)
    return 1 if any(r.broke for r in (*results, *floors)) else 0


if __name__ == "__main__":
    raise SystemExit(main())
