"""Drift detection's cost: a full check of an agent with 20 installed plugins, one of them
with ~500 files, and what the scheduled check costs on average.

    .venv/bin/python benchmarks/bench_drift.py [--rounds 15] [--check-interval 60]
        [--hash-interval 3600] [--dir DIR]

Builds 20 real environments with a real :class:`~arcade_core.PluginHost` (19 small plugins
with a dependency wheel each, one plugin with ~500 modules), then times, per round, the
stat pass and the full hash pass over all 20 (wall time and the CPU time of the checking
thread; medians). The scheduled cost is what :mod:`arcade_agent.drift_watch` spends over
one ``hash_interval``: every environment's stat pass every ``check_interval`` plus one full
pass each, as a share of one core (goal: ≤ 0.3%). A last, measured run of the real
:class:`~arcade_agent.drift_watch.DriftWatch` at 100x speed checks that arithmetic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arcade_agent.drift import Baseline, take_baseline
from arcade_agent.drift_settings import DriftSettings
from arcade_agent.drift_watch import DriftWatch
from arcade_core import Environment, PluginHost
from benchmarks._util import median, print_table
from tests.wheelmaker import make_wheel

BIG_FILES = 500
MODULE = "VALUE = {i}\n" + "# padding line of a typical module\n" * 60


def build(root: Path) -> tuple[PluginHost, list[Environment]]:
    wheels = root / "wheels"
    host = PluginHost(root / "home")
    envs = []
    for i in range(19):
        dep = make_wheel(wheels, f"dep-{i}", "1.0", entry_points=[],
                         files={f"dep_{i}/{m}.py": MODULE.format(i=m) for m in range(8)})
        plugin = make_wheel(wheels, f"small-{i}", "1.0.0", requires=[f"dep-{i}"])
        envs.append(host.install([plugin, dep]))
    files = {f"big/mod_{m:03d}.py": MODULE.format(i=m) for m in range(BIG_FILES - 1)}
    files["big/__init__.py"] = ("from arcade_core import hookimpl\n\nclass Plugin:\n"
                                "    def __init__(self, config):\n        pass\n")
    envs.append(host.install(make_wheel(wheels, "big", "1.0.0", files=files)))
    return host, envs


def timed(fn: object) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()  # type: ignore[operator]
    return time.perf_counter() - wall, time.thread_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--check-interval", type=float, default=60.0)
    parser.add_argument("--hash-interval", type=float, default=3600.0)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        host, envs = build(Path(tmp))
        try:
            baselines: list[Baseline] = []
            for env in envs:
                baseline, drift = take_baseline(env)
                assert not drift, drift
                baselines.append(baseline)
            files = sum(len(b.files) for b in baselines)
            size = sum(s for b in baselines for _, _, s in b.files.values())
            quick = [timed(lambda: [b.quick() for b in baselines]) for _ in range(args.rounds)]
            full = [timed(lambda: [b.full() for b in baselines]) for _ in range(args.rounds)]
            big = [timed(baselines[-1].full) for _ in range(args.rounds)]
            q_cpu, f_cpu = median([c for _, c in quick]), median([c for _, c in full])
            # Over one hash_interval: a stat pass of everything every check_interval, and
            # every environment hashed once (its full pass replaces that step's stat pass).
            passes = args.hash_interval / args.check_interval
            share = (q_cpu * (passes - 1) + f_cpu) / args.hash_interval
            measured = asyncio.run(_measure(host, args.check_interval / 100,
                                            args.hash_interval / 100))
            print_table(f"drift check, {len(envs)} plugins ({files} files, "
                        f"{size / 1e6:.1f} MB; the big one {len(baselines[-1].files)} files)", [
                ("stat pass, all 20", f"{median([w for w, _ in quick]) * 1e3:.1f} ms wall, "
                                      f"{q_cpu * 1e3:.1f} ms CPU (median of {args.rounds})"),
                ("full hash, all 20", f"{median([w for w, _ in full]) * 1e3:.1f} ms wall, "
                                      f"{f_cpu * 1e3:.1f} ms CPU"),
                ("full hash, the big one", f"{median([w for w, _ in big]) * 1e3:.1f} ms wall, "
                                           f"{median([c for _, c in big]) * 1e3:.1f} ms CPU"),
                (f"scheduled ({args.check_interval:g} s / {args.hash_interval:g} s)",
                 f"{share * 100:.4f}% of a core on average (goal <= 0.3%)"),
                ("DriftWatch at 100x speed", f"{measured * 100:.2f}% of a core (process CPU "
                                             f"over one hash interval), i.e. "
                                             f"{measured:.4f}% at the real schedule"),
            ])
        finally:
            host.close()


async def _measure(host: PluginHost, check: float, full: float) -> float:
    """Run the real watch (listing the environments each round, as the agent does) for one
    hash interval; the whole process's CPU share of one core meanwhile."""

    async def watched() -> dict[str, Environment]:
        return {e.name: e for e in await asyncio.to_thread(host.installed)}

    async def on_drift(name: str, env: Environment, paths: list[str]) -> None:
        raise AssertionError(f"{name} drifted: {paths}")

    watch = DriftWatch(DriftSettings(check, full), watched, on_drift)
    await watch.check_all()
    task = asyncio.create_task(watch.run(check_first=False))
    began, start_cpu = time.perf_counter(), time.process_time()
    await asyncio.sleep(full)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return (time.process_time() - start_cpu) / (time.perf_counter() - began)


if __name__ == "__main__":
    main()
