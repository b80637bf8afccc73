"""examples/embed.py, the embedding example, runs as documented."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.hostkit import pid_alive

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embed.py"


def run_example(*args: str, cwd: Path) -> tuple[int, str, str, int]:
    """Run the example; return (exit code, stdout, stderr, the example's pid)."""
    env = {k: v for k, v in os.environ.items() if k != "ARCADE_PLUGINS"}
    proc = subprocess.Popen([sys.executable, str(EXAMPLE), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err, proc.pid


def plugin_pid(out: str) -> int:
    match = re.search(r"^  demo\.pid = (\d+) role=plugin$", out, re.MULTILINE)
    assert match is not None, out
    return int(match[1])


@pytest.mark.parametrize("isolation", ["inline", "process"])
def test_embed_example_installs_loads_and_prints_collected_metrics(
    tmp_path: Path, isolation: str
) -> None:
    code, out, err, example_pid = run_example("--isolation", isolation, "--home",
                                              str(tmp_path), cwd=tmp_path)

    assert code == 0, err
    assert f"loaded arcade-demo 1.0.0 ({isolation}, config {{'prefix': 'demo'}})" in out
    assert re.search(r"^  demo\.loadavg\.1m = [0-9.e+-]+$", out, re.MULTILINE)
    assert "status: arcade-demo running, 1 call(s), 0 error(s)" in out
    # In-process the plugin runs in the example's process; isolated, in a child of it.
    assert (plugin_pid(out) == example_pid) == (isolation == "inline")
    assert (tmp_path / "envs" / "arcade-demo").is_dir()


def test_embed_example_takes_wheels_and_leaves_no_plugin_process_behind(
    tmp_path: Path,
) -> None:
    spec = importlib.util.spec_from_file_location("arcade_embed_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    wheel = example.write_demo_wheel(tmp_path)

    code, out, err, _ = run_example(str(wheel), "--isolation", "process", cwd=tmp_path)

    assert code == 0, err
    assert "demo.loadavg.5m" in out
    assert not pid_alive(plugin_pid(out))
