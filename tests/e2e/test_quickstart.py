"""``arcade quickstart`` as a new user runs it: one command, metrics on the screen."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from .harness import ARCADE, REPO


def test_quickstart_prints_live_cpu_and_memory_metrics(
    tmp_path: Path, dependency_wheelhouse: Path, psutil_wheel: Path
) -> None:
    env = {**os.environ, "ARCADE_WHEELHOUSE": str(dependency_wheelhouse), "COLUMNS": "120"}
    proc = subprocess.run(
        [str(ARCADE), "quickstart", "--home", str(tmp_path / "qs"), "--seconds", "3",
         "--interval", "1", "--http-port", "0", "--grpc-port", "0"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    # It says what it does and where the API is.
    assert re.search(r"REST API\s+http://127\.0\.0\.1:\d+/api/v1", output), output
    assert "/docs" in output
    # The admin token and the lines that give it to the CLI; the agent enrolled by itself.
    token = re.search(r"admin token (arcade_\S+) \(also in (\S+)\)", output)
    assert token, output
    assert Path(token.group(2)).read_text().strip() == token.group(1)
    assert "export ARCADE_TOKEN=$(cat " in output and "export ARCADE_API=http://" in output
    assert "arcade-cpu@1.0.0: running" in output and "arcade-memory@1.0.0: running" in output
    assert "arcade-loadavg@1.0.0: running" in output  # the exec plugin, a shell script
    # Once up: the URLs, and the next commands to type.
    up = output[output.index("Arcade is up."):output.index("Live metrics")]
    assert re.search(r"REST API http://127\.0\.0\.1:\d+/api/v1, API docs "
                     r"http://127\.0\.0\.1:\d+/docs, agents connect to 127\.0\.0\.1:\d+", up), up
    for command in ("status --agent quickstart", "metrics --agent quickstart",
                    "run --agent quickstart --plugin arcade-workspace@1.0.0:before", "plugins"):
        assert re.search(rf"\n  \S*arcade {re.escape(command)}", up), (command, up)
    assert "export ARCADE_API=http://" in up
    # Live metrics read back from the REST API, with real values.
    cpu = re.findall(r"cpu\.percent\s+│\s+cpu=total\s+│\s+([\d.,]+)", output)
    memory = re.findall(r"memory\.percent\s+│\s+│\s+([\d.,]+)", output)
    assert cpu and memory, output
    assert all(0 <= float(v) <= 100 for v in cpu + memory)
    assert 0 < float(memory[-1]) < 100
    assert len(re.findall(r"agent quickstart — ", output)) >= 2   # refreshed, not printed once
    assert "Stopping the server" in output and "Traceback" not in output

