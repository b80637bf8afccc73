"""arcade_core's boundary: siblings use only its public names, a plugin child imports only
the few small modules it needs, and every error is an ArcadeError."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import arcade_core
import arcade_core._exceptions as exceptions
from arcade_core import ArcadeError

REPO = Path(__file__).resolve().parents[2]
# What a plugin's child process may import of arcade_core (besides the package itself).
CHILD_MODULES = {
    "arcade_core._child", "arcade_core._exceptions", "arcade_core._hookcaller",
    "arcade_core._loader", "arcade_core._markers", "arcade_core._protocol", "arcade_core._push",
    "arcade_core._types", "arcade_core._version", "arcade_core.hookspecs", "arcade_core.lazy",
    "arcade_core.states",
}
PRIVATE_IMPORT = re.compile(r"\barcade_core\._[a-z]")


def test_nothing_outside_arcade_core_imports_its_private_modules() -> None:
    offenders = []
    for top in ("arcade_agent", "arcade_server", "benchmarks", "examples", "plugins"):
        for path in sorted((REPO / top).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if PRIVATE_IMPORT.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in arcade_core.__all__:
        assert getattr(arcade_core, name) is not None, name
    assert sorted(dir(arcade_core)) == sorted(arcade_core.__all__)


def test_a_plugin_child_imports_only_the_small_modules() -> None:
    code = ("import sys, arcade_core._child; "
            "print('\\n'.join(m for m in sys.modules if m.startswith('arcade_core')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO, timeout=60).stdout.split()
    assert set(out) - {"arcade_core"} == CHILD_MODULES


def test_every_exception_is_an_arcade_error() -> None:
    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        assert issubclass(cls, ArcadeError), name
        assert getattr(arcade_core, name) is cls, name
