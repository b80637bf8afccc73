"""Process-isolated plugins: round trip, child start time and child RSS.

    python benchmarks/bench_process.py [--calls 5000] [--starts 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arcade_core import PluginHost
from benchmarks._util import median, percentile, print_table
from tests.wheelmaker import make_wheel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--starts", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        host = PluginHost(tmp / "home")
        try:
            host.install([make_wheel(tmp / "wheels", "tiny-plugin")])
            starts = []
            for _ in range(args.starts):
                t0 = time.perf_counter()
                host.load("tiny-plugin", isolation="process")
                starts.append(time.perf_counter() - t0)
                host.unload("tiny-plugin")
            status = host.load("tiny-plugin", isolation="process")
            assert status.pid is not None
            for _ in range(200):  # warm up
                host.hook.collect()
            trips = []
            collect = host.hook.collect
            for _ in range(args.calls):
                t0 = time.perf_counter()
                collect()
                trips.append(time.perf_counter() - t0)
            rss = psutil.Process(status.pid).memory_info().rss
            uss = psutil.Process(status.pid).memory_full_info().uss
        finally:
            host.close()
    print_table(
        "process-isolated tiny plugin",
        [
            ("round trip p50", f"{median(trips) * 1e6:.0f} µs  (goal ≤ 100 µs)"),
            ("round trip p99", f"{percentile(trips, 99) * 1e6:.0f} µs  (goal ≤ 500 µs)"),
            ("child start p50",
             f"{median(starts) * 1e3:.1f} ms  (load → handshake; goal ≤ 100 ms)"),
            ("child RSS", f"{rss / 2**20:.1f} MiB  (USS {uss / 2**20:.1f} MiB; goal ≤ 16 MB)"),
        ],
    )


if __name__ == "__main__":
    main()
