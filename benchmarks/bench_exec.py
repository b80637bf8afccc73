"""Exec plugins from the plugin's side: child start, memory, and what a line reader sustains.

    python benchmarks/bench_exec.py [--starts 30] [--lines 200000]

* child start (spawn → ``hello`` read): ``/bin/true`` until its stdout closes (the floor), the
  built-in sh plugin ``arcade-loadavg``, the C plugin of tests/plugins/c (when gcc is here),
  and a Python process plugin (``PluginHost.load(isolation="process")`` → handshake);
  medians, and each as a multiple of the floor measured in the same process;
* memory: RSS of each plugin's whole process tree once it runs (the sh plugin is a shell, two
  background subshells and their sleeps);
* throughput: metric lines a minimal reader (buffered ``readline`` + ``json.loads``) takes
  from a child writing as fast as it can, and the reader's CPU
  per 1,000 metrics; the same with every line checked against its JSON Schema
  (``arcade_core.protocol.check_message``) to show what validating would cost;
* the sh plugin's own ceiling: metric batches per second at ``interval`` 0.001.

The agent-side figures (through the real host and collector: round trip, metrics/s, host
CPU per 1,000 metrics) are ``bench_push.py``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arcade_core import PluginHost
from arcade_core.protocol import check_message
from benchmarks._util import median, print_table
from tests.wheelmaker import make_wheel

REPO = Path(__file__).resolve().parents[1]
LOADAVG = REPO / "plugins" / "arcade-loadavg" / "bin" / "arcade-loadavg"
C_SOURCE = REPO / "tests" / "plugins" / "c" / "arcade_cpuc.c"
METRIC = b'{"type":"metric","data":{"name":"bench.n","value":45.2,"timestamp":1234567890}}\n'
CONFIG = b'{"type":"config","data":{"interval":%s}}\n'


#: The floor: ``/bin/true``, spawned until its stdout closes (its first and only event).
FLOOR = ["/bin/true"]


def spawn_to_hello(argv: Sequence[str], n: int, *, rss: bool = True) -> tuple[list[float], int]:
    """Spawn → the ``hello`` line read, ``n`` times; and the RSS of the last one's process
    tree once it has a config and has pushed its first metric."""
    times, total = [], 0
    for i in range(-3, n):  # three warm-up runs: page cache, dynamic loader
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                start_new_session=True)
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        if i >= 0:
            times.append(time.perf_counter() - t0)
        assert argv is FLOOR or json.loads(line)["type"] == "hello"
        if rss and i == n - 1:
            proc.stdin.write(CONFIG % b"60")
            proc.stdin.flush()
            while (line := proc.stdout.readline()) and json.loads(line)["type"] != "metric":
                pass
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(True)]
            total = sum(p.memory_info().rss for p in tree)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    return times, total


def python_child(tmp: Path, n: int) -> tuple[list[float], int]:
    """A Python process plugin: load → handshake, and its child's RSS."""
    with PluginHost(tmp / "home") as host:
        host.install([make_wheel(tmp / "wheels", "tiny-plugin")])
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            host.load("tiny-plugin", isolation="process")
            times.append(time.perf_counter() - t0)
            host.unload("tiny-plugin")
        status = host.load("tiny-plugin", isolation="process")
        assert status.pid is not None
        rss = psutil.Process(status.pid).memory_info().rss
    return times, rss


def reader_throughput(lines: int, *, validate: bool) -> tuple[float, float]:
    """(metrics/s, reader CPU seconds per 1,000 metrics) from a child writing ``lines``
    metric lines as fast as it can."""
    writer = ("import sys\nline = " + repr(METRIC) + "\nblock = line * 1000\n"
              f"for _ in range({lines // 1000}):\n    sys.stdout.buffer.write(block)\n")
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    count = 0
    cpu0, t0 = time.thread_time(), time.perf_counter()
    for line in proc.stdout:
        message = json.loads(line)
        if validate:
            check_message(message, direction="from_plugin")
        count += 1
    elapsed, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
    proc.wait()
    proc.stdout.close()
    assert count == lines // 1000 * 1000, count
    return count / elapsed, cpu / count * 1000


def sh_ceiling(seconds: float) -> float:
    """Metric batches per second the sh plugin writes at interval 0.001."""
    proc = subprocess.Popen(["sh", str(LOADAVG)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(CONFIG % b"0.001")
    proc.stdin.flush()
    batches, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        line = proc.stdout.readline()
        if b'"metric"' in line:
            batches += 1
    rate = batches / (time.perf_counter() - t0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=30)
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    floor = median(spawn_to_hello(FLOOR, args.starts, rss=False)[0])
    rows = [("/bin/true (floor): spawn → stdout closed", f"{floor * 1e3:.2f} ms")]

    def start_row(label: str, times: list[float], rss: int) -> None:
        m = median(times)
        rows.append((f"{label}: spawn → hello", f"{m * 1e3:.2f} ms  ({m / floor:.1f}x floor)"
                     + (f"; tree RSS {rss / 2**20:.1f} MiB" if rss else "")))

    start_row("sh plugin arcade-loadavg", *spawn_to_hello([str(LOADAVG)], args.starts))
    gcc = shutil.which("gcc")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if gcc is not None:
            subprocess.run([gcc, "-O2", "-o", str(tmp / "cpuc"), str(C_SOURCE)], check=True)
            start_row("C plugin arcade-cpuc", *spawn_to_hello([str(tmp / "cpuc")], args.starts))
        else:
            rows.append(("C plugin", "skipped: no gcc"))
        start_row("Python process plugin (load → handshake)", *python_child(tmp, args.starts))
    for validate in (False, True):
        rate, cpu = reader_throughput(args.lines, validate=validate)
        rows.append((f"reader, decode{' + schema check' if validate else ''}",
                     f"{rate:,.0f} metrics/s; {cpu * 1e3:.1f} ms CPU per 1,000 metrics"))
    rows.append(("sh plugin at interval 0.001", f"{sh_ceiling(3.0):.0f} batches/s "
                 "(5 metrics each)"))
    print_table("exec plugins, plugin side (medians)", rows)


if __name__ == "__main__":
    main()
