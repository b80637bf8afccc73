"""Agent figures: REST install → running, 100 MB wheel download, idle agent cost.

Everything runs for real on loopback: an ``arcade server`` process (SQLite, local blobs) and
``arcade agent`` processes, talking gRPC; the figures are printed, each beside a baseline
measured side by side in the same run.

* ``install``: ``POST /api/v1/agents/{id}/plugins?wait=10`` of a tiny plugin until the agent
  reports ``running`` (warm: server and agent up, wheel in the agent's cache; each round
  uninstalls first, so every round really builds the env, loads and reports). Baseline: a
  ``GET /api/v1/agents/{id}`` round trip (the REST floor).
* ``download``: a 100 MB wheel over ``DownloadWheel`` (mutual TLS, with the enrolled agent's
  certificate) with the agent's :class:`Downloader` (sha256 + write + rename into a cache),
  beside an HTTPS download of the same blob file with the same server certificate (stdlib
  ``http.server`` wrapped in ``ssl`` in its own process, httpx streaming + sha256 + write) and
  a plain HTTP one. Also the RSS growth of the downloading process.
* ``idle``: an agent process running ``arcade-cpu`` and ``arcade-memory`` at their 10 s
  interval: RSS and CPU share of one core over ``--idle-seconds``. Baseline: a bare Python
  process holding an open grpc.aio channel.

    python benchmarks/bench_agent.py [install|download|idle ...] [--rounds 30]
                                     [--idle-seconds 60] [--download-mb 100]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arcade_agent.cache import WheelCache
from arcade_agent.downloader import Downloader, download_stub
from arcade_agent.identity import load_credentials
from arcade_core.rpc.v1 import pb
from benchmarks._util import median, percentile, print_table
from tests.e2e.harness import AgentProc, Server, free_port, wait_until
from tests.wheelmaker import make_wheel

IDLE_CONFIG = "heartbeat_interval = 10\nreconnect_initial = 0.1\nreconnect_max = 1\n"


def _online(server: Server, agent: str) -> bool:
    info = server.agent(agent)
    return bool(info and info["online"])


# ---------------------------------------------------------------------- install latency


def bench_install(server: Server, work: Path, rounds: int) -> None:
    agent = AgentProc(work / "agent-install", server, "bench-install",
                      work / "agent-install.log").start()
    try:
        wait_until(lambda: _online(server, "bench-install"), 30, what="agent online")
        server.publish(make_wheel(work / "wheels", "tiny", "1.0.0"))
        server.install("bench-install", "tiny@1.0.0")          # warm-up: download + cache
        samples, floor = [], []
        for _ in range(rounds):
            server.uninstall("bench-install", "tiny")
            wait_until(lambda: "tiny" not in server.plugins("bench-install"), 10,
                       what="uninstalled")
            started = time.perf_counter()
            response = server.install("bench-install", "tiny@1.0.0", wait=10)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200 and response.json()["state"]["state"] == "running"
            started = time.perf_counter()
            server.agent("bench-install")
            floor.append((time.perf_counter() - started) * 1000)
        print_table("REST install -> agent reports running (tiny plugin, warm)", [
            ("rounds", str(rounds)),
            ("install p50 / p90 / max", f"{median(samples):.1f} / {percentile(samples, 90):.1f}"
                                        f" / {max(samples):.1f} ms   (goal p50 <= 50 ms)"),
            ("baseline GET /agents/{id} p50", f"{median(floor):.1f} ms"),
        ])
    finally:
        agent.stop()


# ---------------------------------------------------------------------- download


def _serve_http(directory: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


HTTPS_SERVER = """
import functools, http.server, ssl, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[3], sys.argv[4])
httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
httpd.serve_forever()
"""


def _serve_https(directory: Path, port: int, tls_dir: Path) -> subprocess.Popen[bytes]:
    """``http.server`` over TLS with the Arcade server's own certificate and key."""
    return subprocess.Popen(
        [sys.executable, "-c", HTTPS_SERVER, str(port), str(directory),
         str(tls_dir / "server.pem"), str(tls_dir / "server.key")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _http_download(url: str, dest: Path, sha256: str, verify: Any = True) -> float:
    started = time.perf_counter()
    hasher = hashlib.sha256()
    with httpx.stream("GET", url, timeout=60, verify=verify) as response, \
            open(dest, "wb") as fh:
        response.raise_for_status()
        for chunk in response.iter_raw(1 << 20):
            hasher.update(chunk)
            fh.write(chunk)
    assert hasher.hexdigest() == sha256
    return time.perf_counter() - started


class _PeakRss:
    """Samples this process's RSS every 5 ms while active."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bench_download(server: Server, work: Path, size_mb: int, rounds: int) -> None:
    # Decimal megabytes: a 100 MiB payload made a wheel over the default max_wheel_bytes.
    payload = os.urandom(size_mb * 1_000_000)
    wheel = make_wheel(work / "wheels", "bigdata", "1.0.0", files={
        "bigdata/__init__.py": "from arcade_core import hookimpl\n\nclass Plugin:\n"
                               "    def __init__(self, config): pass\n",
        "bigdata/blob.bin": payload,
    })
    del payload
    data_sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    size = wheel.stat().st_size
    agent = AgentProc(work / "agent-dl", server, "bench-dl",
                      work / "agent-dl.log").start()
    http_port, https_port = free_port(), free_port()
    blob_dir = server.home / "blobs" / data_sha[:2]
    http = _serve_http(blob_dir, http_port)
    https = _serve_https(blob_dir, https_port, server.home / "tls")
    try:
        wait_until(lambda: _online(server, "bench-dl"), 30, what="agent online")
        server.publish(wheel)
        server.install("bench-dl", "bigdata@1.0.0", wait=120)    # now it may download it
        ref = pb.WheelRef(filename=wheel.name, sha256=data_sha, size=size)

        async def grpc_rounds() -> tuple[list[float], int]:
            import grpc

            credentials = load_credentials(work / "agent-dl")
            assert credentials is not None, "the agent did not enroll"
            channel = grpc.aio.secure_channel(server.grpc_target, credentials.channel())
            stub = download_stub(channel)   # as the agent does
            times = []
            base = psutil.Process().memory_info().rss
            with _PeakRss() as rss:
                for i in range(rounds):
                    cache = WheelCache(work / f"cache-{i}", 1 << 40)
                    downloader = Downloader(lambda: stub, "bench-dl", cache)
                    started = time.perf_counter()
                    path = await downloader.fetch_one(ref)
                    times.append(time.perf_counter() - started)
                    path.unlink()
            await channel.close()
            return times, rss.peak - base

        grpc_times, growth = asyncio.run(grpc_rounds())
        wait_until(lambda: _port_open(http_port), 10, what="http.server")
        http_times = [_http_download(f"http://127.0.0.1:{http_port}/{data_sha[2:]}",
                                     work / f"http-{i}.bin", data_sha) for i in range(rounds)]
        wait_until(lambda: _port_open(https_port), 10, what="https http.server")
        trust = ssl.create_default_context(cafile=str(server.home / "tls" / "ca.pem"))
        https_times = [_http_download(f"https://127.0.0.1:{https_port}/{data_sha[2:]}",
                                      work / f"https-{i}.bin", data_sha, trust)
                       for i in range(rounds)]
        for i in range(rounds):
            (work / f"http-{i}.bin").unlink()
            (work / f"https-{i}.bin").unlink()
        mb = size / 1e6
        g, h, t = median(grpc_times), median(http_times), median(https_times)
        print_table(f"{mb:.0f} MB wheel: DownloadWheel (mTLS) + sha256 + write vs HTTPS, HTTP", [
            ("rounds", str(rounds)),
            ("gRPC DownloadWheel, mutual TLS", f"{mb / g:.0f} MB/s  (median {g:.3f} s;"
                                               " goal >= 400 MB/s)"),
            ("HTTPS, same server certificate", f"{mb / t:.0f} MB/s  (median {t:.3f} s)"),
            ("plain HTTP (http.server + httpx)", f"{mb / h:.0f} MB/s  (median {h:.3f} s)"),
            ("ratio gRPC mTLS / HTTPS", f"{t / g:.2f}x  (goal >= 1x)"),
            ("ratio gRPC mTLS / HTTP", f"{h / g:.2f}x"),
            ("RSS growth while downloading", f"{growth / 2**20:.1f} MB  (goal <= 20 MB)"),
        ])
    finally:
        for proc in (http, https):
            proc.terminate()
            proc.wait(10)
        agent.stop()


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


# ---------------------------------------------------------------------- idle


BARE = """
import asyncio, grpc
from arcade_core.rpc.v1.anonymous import ANONYMOUS_CERT_PEM, ANONYMOUS_KEY_PEM
async def main():
    ca = open(%r, "rb").read()
    creds = grpc.ssl_channel_credentials(ca, ANONYMOUS_KEY_PEM, ANONYMOUS_CERT_PEM)
    channel = grpc.aio.secure_channel("127.0.0.1:%d", creds)
    await channel.channel_ready()
    await asyncio.sleep(3600)
asyncio.run(main())
"""


def _cpu_and_rss(pid: int, seconds: float, children: bool = True) -> tuple[float, float]:
    """CPU share (% of a core) and RSS (MB) of ``pid`` (and its descendants, unless not
    ``children``) over ``seconds``; a descendant that exits meanwhile (an exec plugin's
    ``sleep``) is left out."""
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)] if children else [proc]

    def cpu(p: psutil.Process) -> float:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return float(times.user + times.system)

    before = {p.pid: cpu(p) for p in procs}
    time.sleep(seconds)
    used, rss = 0.0, 0
    for p in procs:
        try:
            rss += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
        used += cpu(p) - before[p.pid]
    return used / seconds * 100, rss / 2**20


IDLE_PLUGINS = ("arcade-cpu@1.0.0", "arcade-memory@1.0.0")


def idle_agent(server: Server, work: Path, agent_id: str, config: str, seconds: float,
               cmd: list[str] | None = None, plugins: tuple[str, ...] = IDLE_PLUGINS,
               children: bool = True) -> tuple[float, float]:
    """Start an agent (``cmd``: instead of ``arcade agent``), install the published
    ``plugins`` (``arcade-cpu`` and ``arcade-memory``) on it, and measure its CPU share and
    RSS (MB, the agent process alone: not its plugins' children) over ``seconds``; the agent
    is stopped afterwards."""
    agent = AgentProc(work / agent_id, server, agent_id, work / f"{agent_id}.log", config=config)
    if cmd is not None:
        agent.args = [*cmd, *agent.args[2:]]
    agent.start()
    try:
        wait_until(lambda: _online(server, agent_id), 30, what="agent online")
        for spec in plugins:
            assert server.install(agent_id, spec).json()["state"]["state"] == "running"
        time.sleep(2)  # a benchmark: let the first collects settle before measuring
        assert agent.proc is not None
        return _cpu_and_rss(agent.proc.pid, seconds, children)
    finally:
        agent.stop()


def bench_idle(server: Server, work: Path, seconds: float,
               builtin: dict[str, Path], deps: list[Path]) -> None:
    for name in ("arcade-cpu", "arcade-memory", "arcade-loadavg"):
        server.publish(builtin[name], *deps)
    rows = []
    for label, cmd in (("arcade agent", None),
                       ("python -m arcade_agent", [sys.executable, "-m", "arcade_agent"])):
        agent_id = "bench-idle-" + ("cli" if cmd is None else "module")
        cpu, rss = idle_agent(server, work, agent_id, IDLE_CONFIG, seconds, cmd)
        rows.append((f"{label}: RSS / CPU", f"{rss:.1f} MB / {cpu:.2f}% of a core"
                                            "  (goal <= 50 MB, <= 1%)"))
    # An exec plugin runs in its own process: the agent's own RSS should not move.
    cpu, rss = idle_agent(server, work, "bench-idle-exec", IDLE_CONFIG, seconds,
                          plugins=(*IDLE_PLUGINS, "arcade-loadavg@1.0.0"), children=False)
    rows.append(("arcade agent + exec arcade-loadavg: agent RSS / CPU",
                 f"{rss:.1f} MB / {cpu:.2f}% of a core  (goal: RSS unchanged)"))
    ca_file = str(server.home / "tls" / "ca.pem")
    bare = subprocess.Popen([sys.executable, "-c", BARE % (ca_file, server.grpc_port)])
    try:
        time.sleep(2)
        cpu, rss = _cpu_and_rss(bare.pid, min(seconds, 10))
        rows.append(("baseline python + grpc.aio channel", f"{rss:.1f} MB / {cpu:.2f}%"))
    finally:
        bare.terminate()
        bare.wait(10)
    print_table(f"idle agent with arcade-cpu + arcade-memory at 10 s ({seconds:g} s)", rows)


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", help="install, download and/or idle (default: all)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--download-rounds", type=int, default=3)
    parser.add_argument("--download-mb", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    args = parser.parse_args()
    args.which = args.which or ["install", "download", "idle"]
    unknown = set(args.which) - {"install", "download", "idle"}
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="arcade-bench-agent-") as tmp:
        work = Path(tmp)
        server = Server(work / "server", work / "server.log").start()
        try:
            if "install" in args.which:
                bench_install(server, work, args.rounds)
            if "download" in args.which:
                bench_download(server, work, args.download_mb, args.download_rounds)
            if "idle" in args.which:
                from arcade_core.builtin import build_builtin_wheels, builtin_dependency_wheels

                builtin = build_builtin_wheels(work / "builtin")
                deps = builtin_dependency_wheels([builtin["arcade-cpu"]])
                bench_idle(server, work, args.idle_seconds, builtin, deps)
        finally:
            server.close()


if __name__ == "__main__":
    main()
