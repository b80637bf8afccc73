"""Embed Arcade's plugin host in your own application.

    python examples/embed.py                          # builds and runs a tiny demo plugin
    python examples/embed.py PLUGIN.whl [DEP.whl ...] # or any plugin wheel (+ its deps)
    python examples/embed.py --isolation process      # run the plugin in a subprocess

What it shows, in order:

1. ``PluginHost(home)`` — everything lives under ``home``: one environment per plugin
   version in ``home/envs``; no server, no agent.
2. ``host.install(wheels)`` — builds the plugin's own environment from the wheel and its
   dependency wheels, offline, every hash checked (a no-op when already installed).
3. ``host.load(name, config=..., isolation=...)`` — validates the config against the
   plugin's manifest (defaults applied) and registers the plugin in the host's pluggy
   PluginManager, in-process or in a supervised subprocess.
4. ``host.hook.collect()`` — an ordinary pluggy hook call reaching every loaded plugin;
   one plugin that raises cannot stop the others (``host.call(...)`` adds timeouts).
5. ``host.close()`` (here: leaving the ``with`` block) — unloads every plugin and stops
   every child process.

The demo wheel is written by hand, exactly as a build backend would write it, so the
example needs nothing but Arcade; a real plugin is built with ``python -m build``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
import tempfile
import zipfile
from pathlib import Path

from arcade_core import PluginHost

DEMO_SOURCE = '''\
"""A demo Arcade plugin: the system load average and this process's id."""
import os

from arcade_core import Metric, hookimpl


class Demo:
    def __init__(self, config):
        self.prefix = config["prefix"]

    @hookimpl
    def collect(self):
        one, five, _ = os.getloadavg()
        return [
            Metric(f"{self.prefix}.loadavg.1m", one),
            Metric(f"{self.prefix}.loadavg.5m", five),
            Metric(f"{self.prefix}.pid", float(os.getpid()), labels={"role": "plugin"}),
        ]
'''

DEMO_MANIFEST = """{
  "description": "Load average and pid: a demo for examples/embed.py",
  "config_schema": {"type": "object",
                    "properties": {"prefix": {"type": "string", "default": "demo"}}}
}
"""


def write_demo_wheel(directory: Path) -> Path:
    """Write ``arcade_demo-1.0.0-py3-none-any.whl``: package, manifest, entry point, RECORD."""
    dist_info = "arcade_demo-1.0.0.dist-info"
    files = {
        "arcade_demo/__init__.py": DEMO_SOURCE,
        "arcade_demo/arcade-plugin.json": DEMO_MANIFEST,
        f"{dist_info}/METADATA": "Metadata-Version: 2.1\nName: arcade-demo\nVersion: 1.0.0\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/entry_points.txt": "[arcade.plugins]\narcade-demo = arcade_demo:Demo\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    path = directory / "arcade_demo-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Arcade plugins inside an application.")
    parser.add_argument("wheels", nargs="*", type=Path,
                        help="a plugin wheel and its dependency wheels (default: a demo)")
    parser.add_argument("--isolation", choices=["inline", "process"], default=None,
                        help="where the plugin runs (default: what its manifest says)")
    parser.add_argument("--home", type=Path, default=None,
                        help="where environments live (default: a temporary directory)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="arcade-embed-") as scratch:
        home = args.home or Path(scratch) / "home"
        wheels = args.wheels or [write_demo_wheel(Path(scratch))]

        with PluginHost(home, call_timeout=10.0) as host:
            env = host.install(wheels)
            status = host.load(env.name, isolation=args.isolation)
            print(f"loaded {status.name} {status.version} ({status.isolation}, "
                  f"config {status.config})")

            for metrics in host.hook.collect():
                for metric in metrics:
                    unit = f" {metric.unit}" if metric.unit else ""
                    labels = "".join(f" {k}={v}" for k, v in sorted(metric.labels.items()))
                    print(f"  {metric.name} = {metric.value:g}{unit}{labels}")

            for plugin in host.plugins():
                print(f"status: {plugin.key} {plugin.state}, {plugin.calls} call(s), "
                      f"{plugin.errors} error(s), {plugin.mean_latency_ms:.3f} ms mean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
