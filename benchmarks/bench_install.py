"""Install + load cost of a plugin through ``PluginHost`` beside ``python -m venv`` + ``pip``.

Times, per iteration: verified wheel → environment → imported → registered → first
``collect`` call. Each iteration installs a new version so nothing is a no-op. The baseline
builds a venv with ``python -m venv`` and runs ``pip install --no-index`` of the same wheel.

    python benchmarks/bench_install.py [--rounds 30] [--baseline-rounds 3] [--skip-rich] [--dir D]

File creation dominates the install of a plugin with many files, so where the environments
are made matters: ``--dir`` picks the file system (an agent's home, e.g. ~/.arcade/agent).
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
from arcade_core.wheelhouse import dependency_wheels, download_wheels
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
                requires: list[str]) -> tuple[list[float], list[float]]:
    """Per round: (total seconds, of which installing the environment)."""
    host = PluginHost(tmp / f"home-{name}")
    totals, installs = [], []
    try:
        for i in range(rounds):
            wheel = make_wheel(tmp / "wheels", name, f"1.0.{i}", files=files, requires=requires)
            start = time.perf_counter()
            host.install([wheel, *deps])
            installed = time.perf_counter()
            host.load(name)
            result = host.hook.collect()
            totals.append(time.perf_counter() - start)
            installs.append(installed - start)
            assert result and result[0], result
            host.unload(name)
    finally:
        host.close()
    return totals, installs


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
    parser.add_argument("--dir", type=Path, default=None,
                        help="where homes and venvs are made (default: the system temp dir)")
    args = parser.parse_args()
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
    print(f"working under {args.dir or tempfile.gettempdir()}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp_dir:
        tmp = Path(tmp_dir)
        tiny, _ = time_arcade(tmp, args.rounds, "tiny-plugin", [], None, [])
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
            rich, rich_install = time_arcade(tmp, rounds, "bench-rich", deps, files, ["rich"])
            import zipfile

            n_files = sum(len(zipfile.ZipFile(d).namelist()) for d in deps)
            print_table(
                f"plugin depending on rich ({n_files} files in {len(deps)} dependency wheels)",
                [("arcade p50", f"{median(rich) * 1e3:.0f} ms  (p90 "
                  f"{percentile(rich, 90) * 1e3:.0f} ms, {len(rich)} rounds; goal ≤ 250 ms)"),
                 ("  of which env", f"{median(rich_install) * 1e3:.0f} ms  (verify + unpack "
                  f"{n_files} files; the rest is importing rich and the first call)")],
            )


if __name__ == "__main__":
    main()
