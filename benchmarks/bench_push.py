"""Pushed metrics: an exec plugin (a POSIX sh script) beside a Python process plugin.

    python benchmarks/bench_push.py [--metrics 100000] [--starts 20]

For each: child start (load → hello), round trip (load → the first pushed metric at the
host's metric sink), throughput (metrics/s through the reader thread to the sink) and the
host's CPU per 1,000 metrics (parsing and dispatch: what an agent pays).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arcade_core import Metric, PluginHost
from arcade_core.building import build_exec_wheel
from benchmarks._util import median, print_table
from tests.wheelmaker import make_wheel

# Says hello, pushes `count` metrics (awk: POSIX, fast), then waits for shutdown.
SCRIPT = r'''#!/bin/sh
IFS= read -r line
printf '{"type":"hello","protocol":1,"hooks":[]}\n'
n=$(printf '%s' "$line" | sed -n 's/.*"count":\([0-9]*\).*/\1/p')
awk -v n="${n:-0}" 'BEGIN { for (i = 0; i < n; i++)
  printf "{\"type\":\"metric\",\"data\":{\"name\":\"bench.n\",\"value\":%d}}\n", i }'
while IFS= read -r line; do case "$line" in *shutdown*) break ;; esac; done
'''

PUSHER = '''
import threading
from arcade_core import Metric, hookimpl


class Plugin:
    def __init__(self, config, metrics):
        count, batch = config.get("count", 0), config.get("batch", 1)

        def run():
            for start in range(0, count, batch):
                metrics.push([Metric("bench.n", i)
                              for i in range(start, min(count, start + batch))])

        threading.Thread(target=run, daemon=True).start()

    @hookimpl
    def collect(self):
        return []
'''


class Counter:
    """A metric sink that wakes the benchmark when ``target`` metrics have arrived."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 1
        self.done = threading.Event()

    def reset(self, target: int) -> None:
        self.count, self.target = 0, target
        self.done.clear()

    def __call__(self, key: str, metrics: list[Metric]) -> None:
        self.count += len(metrics)
        if self.count >= self.target:
            self.done.set()


def measure(host: PluginHost, sink: Counter, name: str, isolation: str | None, total: int,
            starts: int, **config: int) -> list[tuple[str, str]]:
    start_times, trips = [], []
    for _ in range(starts):
        sink.reset(1)
        t0 = time.perf_counter()
        host.load(name, config={"count": 1, **config}, isolation=isolation)
        start_times.append(time.perf_counter() - t0)
        if not sink.done.wait(60):
            raise SystemExit(f"{name}: no metric within 60 s")
        trips.append(time.perf_counter() - t0)
        host.unload(name)
    sink.reset(total)
    cpu0, t0 = time.process_time(), time.perf_counter()
    host.load(name, config={"count": total, **config}, isolation=isolation)
    if not sink.done.wait(600):
        raise SystemExit(f"{name}: {sink.count} of {total} metrics within 600 s")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    host.unload(name)
    return [
        ("child start p50", f"{median(start_times) * 1e3:.1f} ms  (load → hello)"),
        ("round trip p50", f"{median(trips) * 1e3:.1f} ms  (load → first metric at the sink)"),
        ("throughput", f"{total / elapsed:,.0f} metrics/s  ({total:,} in {elapsed:.2f} s)"),
        ("host CPU / 1,000 metrics", f"{cpu / total * 1e6:.2f} ms"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metrics", type=int, default=100_000)
    parser.add_argument("--starts", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sink = Counter()
        with PluginHost(tmp / "home") as host:
            host.add_metric_sink(sink)
            script = tmp / "bench-exec"
            script.write_text(SCRIPT)
            host.install(build_exec_wheel(name="bench-exec", version="1.0.0", executable=script,
                                          manifest={"exec": "bench-exec"},
                                          out_dir=tmp / "wheels"))
            host.install(make_wheel(tmp / "wheels", "bench-py",
                                    files={"bench_py/__init__.py": PUSHER}))
            exec_rows = measure(host, sink, "bench-exec", None, args.metrics, args.starts)
            one_rows = measure(host, sink, "bench-py", "process", args.metrics, args.starts)
            batch_rows = measure(host, sink, "bench-py", "process", args.metrics, args.starts,
                                 batch=100)
    print_table("exec plugin (sh + awk), one metric per line", exec_rows)
    print_table("Python process plugin, metrics.push(one)", one_rows)
    print_table("Python process plugin, metrics.push(100 at once)", batch_rows)


if __name__ == "__main__":
    main()
