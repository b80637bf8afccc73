"""In-process hook call cost: ``host.hook.collect()`` against bare pluggy on the same objects.

Both managers hold the *same* plugin instances (loaded from real wheels by a PluginHost), so
the only difference is Arcade's isolating hook executor. Prints medians and the ratio.

    python benchmarks/bench_call.py [--plugins 1 10] [--rounds 15] [--calls 20000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pluggy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arcade_core import PROJECT_NAME, PluginHost, hookspecs
from benchmarks._util import median, print_table
from tests.wheelmaker import make_wheel


def _time_calls(fn: object, calls: int) -> float:
    call = fn  # local for speed
    start = time.perf_counter()
    for _ in range(calls):
        call()  # type: ignore[operator]
    return (time.perf_counter() - start) / calls


def run(n_plugins: int, rounds: int, calls: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        host = PluginHost(tmp_path / "home")
        try:
            for i in range(n_plugins):
                wheel = make_wheel(tmp_path / "wheels", f"bench-plugin-{i}")
                host.install([wheel])
                host.load(f"bench-plugin-{i}")
            bare = pluggy.PluginManager(PROJECT_NAME)
            bare.add_hookspecs(hookspecs)
            for name, plugin in host.pm.list_name_plugin():
                if name is not None and plugin is not hookspecs and name.startswith("bench"):
                    bare.register(plugin, name=name)
            assert len(bare.hook.collect()) == n_plugins == len(host.hook.collect())
            arcade_times, bare_times = [], []
            for _ in range(rounds):  # interleave so machine noise hits both alike
                bare_times.append(_time_calls(bare.hook.collect, calls))
                arcade_times.append(_time_calls(host.hook.collect, calls))
        finally:
            host.close()
    return median(bare_times), median(arcade_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plugins", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    for n in args.plugins:
        bare, arcade = run(n, args.rounds, args.calls)
        print_table(
            f"collect() with {n} in-process plugin(s), median of {args.rounds} rounds",
            [
                ("bare pluggy", f"{bare * 1e6:.2f} µs/call"),
                ("arcade host.hook", f"{arcade * 1e6:.2f} µs/call"),
                ("ratio arcade/bare", f"{arcade / bare:.2f}x  (goal ≤ 1.2x)"),
            ],
        )


if __name__ == "__main__":
    main()
