"""The C plugin of these tests (c/arcade_cpuc.c, written from docs/protocol.md alone): find
gcc, compile it, pack it with build_exec_wheel into a wheel tagged for this platform.

gcc missing: the test is skipped, except when ``$CI`` or ``$ARCADE_REQUIRE_GCC`` is set
(``.ci/run`` sets it, after installing gcc if the machine has none), where it fails: a CI run
must never pass by silently skipping the C plugin (the rule of ``$ARCADE_REQUIRE_POSTGRES``
in tests/pg.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from arcade_core.building import build_exec_wheel

__all__ = ["SOURCE", "build_c_wheel", "compile_c_plugin", "find_gcc", "platform_tag"]

SOURCE = Path(__file__).resolve().parent / "c" / "arcade_cpuc.c"


def find_gcc() -> str:
    """The path of ``gcc``; skips the test when it is missing, fails it when it is required."""
    path = shutil.which("gcc")
    if path is not None:
        return path
    if os.environ.get("CI") or os.environ.get("ARCADE_REQUIRE_GCC"):
        pytest.fail("gcc is required here ($CI or $ARCADE_REQUIRE_GCC is set) but is not on "
                    "PATH: apt-get install -y gcc (.ci/run does)", pytrace=False)
    pytest.skip("gcc is not installed (set ARCADE_REQUIRE_GCC=1 to make this a failure)")


def platform_tag() -> str:
    """This machine's platform as a wheel tag part, e.g. ``linux_x86_64``."""
    return sysconfig.get_platform().replace("-", "_").replace(".", "_")


def compile_c_plugin(gcc: str, out: Path) -> Path:
    """``arcade-cpuc`` compiled into ``out`` (warnings are errors)."""
    out.mkdir(parents=True, exist_ok=True)
    binary = out / "arcade-cpuc"
    subprocess.run([gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-o", str(binary),
                    str(SOURCE)], check=True, capture_output=True, timeout=120)
    return binary


def build_c_wheel(gcc: str, work: Path) -> Path:
    """The C plugin's platform-tagged wheel (``arcade-cpuc`` 0.1.0, interval 10 s)."""
    return build_exec_wheel(
        name="arcade-cpuc", version="0.1.0", executable=compile_c_plugin(gcc, work / "build"),
        out_dir=work / "dist", platform_tag=platform_tag(),
        manifest={"description": "CPU busy percent, in C", "exec": "arcade-cpuc",
                  "interval": 10})
