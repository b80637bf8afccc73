"""Install + load cost of a plugin through ``PluginHost`` beside ``python -m venv`` + ``pip``.

Times, per iteration: verified wheel → environment → imported → registered → first
``collect`` call. Each iteration installs a new version so nothing is a no-op. The baseline
builds a venv with ``python -m venv`` and runs ``pip install --no-index`` of the same wheel.

    python benchmarks/bench_install.py [--rounds 30] [--baseline-rounds 3] [--skip-rich]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arcade_core import PluginHost
from arcade_server.wheelhouse import dependency_wheels, download_wheels
from benchmarks._util import median, percentile, print_table
from tests.wheelmaker import make_wheel

RICH_PLUGIN = '''\
import rich.console, rich.table, rich.markdown, pygments.lexers
from arcade_core import hookimpl, Metric


class Plugin:
    def __init__(self, config):
        self.console = rich.console.Console()

    @hookimpl
    def collect(self):
        return [Metric(name="rich.width", value=self.console.width)]
'''


def time_arcade(tmp: Path, rounds: int, name: str, deps: list[Path], files: dict[str, str] | None,
                requires: list[str]) -> list[float]:
    host = PluginHost(tmp / f"home-{name}")
    samples = []
    try:
        for i in range(rounds):
            wheel = make_wheel(tmp / "wheels", name, f"1.0.{i}", files=files, requires=requires)
            start = time.perf_counter()
            host.install([wheel, *deps])
            host.load(name)
            result = host.hook.collect()
            samples.append(time.perf_counter() - start)
            assert result and result[0], result
            host.unload(name)
    finally:
        host.close()
    return samples


def time_venv_pip(tmp: Path, rounds: int, name: str) -> list[float]:
    samples = []
    for i in range(rounds):
        wheel = make_wheel(tmp / "wheels-pip", name, f"1.0.{i}", entry_points=[])
        venv = tmp / f"venv-{i}"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index",
             "--no-deps", "--disable-pip-version-check", str(wheel)],
            check=True,
        )
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--baseline-rounds", type=int, default=3)
    parser.add_argument("--skip-rich", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        tiny = time_arcade(tmp, args.rounds, "tiny-plugin", [], None, [])
        pip = time_venv_pip(tmp, args.baseline_rounds, "tiny-plugin")
        print_table(
            "tiny plugin: wheel → env → import → register → first collect()",
            [
                ("arcade p50", f"{median(tiny) * 1e3:.1f} ms  (p90 "
                 f"{percentile(tiny, 90) * 1e3:.1f} ms, {len(tiny)} rounds; goal ≤ 10 ms)"),
                ("venv + pip p50", f"{median(pip) * 1e3:.0f} ms  ({len(pip)} rounds)"),
                ("ratio pip/arcade", f"{median(pip) / median(tiny):.0f}x  (goal ≥ 100x)"),
            ],
        )
        if not args.skip_rich:
            wheelhouse = Path(__file__).resolve().parents[1] / ".cache" / "wheelhouse"
            rich_wheel = download_wheels(["rich"], wheelhouse)
            deps = [*rich_wheel, *dependency_wheels(rich_wheel, wheelhouse)]
            files = {"bench_rich/__init__.py": RICH_PLUGIN}
            rounds = max(5, args.rounds // 3)
            rich = time_arcade(tmp, rounds, "bench-rich", deps, files, ["rich"])
            import zipfile

            n_files = sum(len(zipfile.ZipFile(d).namelist()) for d in deps)
            print_table(
                f"plugin depending on rich ({n_files} files in {len(deps)} dependency wheels)",
                [("arcade p50", f"{median(rich) * 1e3:.0f} ms  (p90 "
                  f"{percentile(rich, 90) * 1e3:.0f} ms, {len(rich)} rounds; goal ≤ 250 ms)")],
            )


if __name__ == "__main__":
    main()
