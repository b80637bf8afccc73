"""arcade-fleet's one build step beyond pyproject.toml: ship the built-in plugins as wheels.

``arcade publish --builtin`` must work from an installed distribution, where the sources under
``plugins/`` of a checkout do not exist. So building arcade-fleet's wheel (``build_py``) also
builds each ``plugins/<dist>/`` into a wheel with its own backend, run in this process
(flit_core, a build requirement in pyproject.toml; an exec plugin such as arcade-loadavg:
``arcade_core.exec_backend``, stdlib-only, imported from this source tree) and puts it in
``arcade_core/builtin_wheels/`` of the build, from where :mod:`arcade_core.builtin` reads
them. The timestamps inside come from ``SOURCE_DATE_EPOCH`` (1980 when unset), so the same
sources always give the same bytes and a re-publish is recognised as identical. An editable
install skips this: a checkout builds from ``plugins/`` itself.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tomllib
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PLUGINS = HERE / "plugins"
SHIPPED = ("arcade_core", "builtin_wheels")


def build_builtin_wheels(out: Path) -> list[str]:
    """Build every ``plugins/*/pyproject.toml`` project into a wheel in ``out``."""
    projects = sorted(PLUGINS.glob("*/pyproject.toml"))
    if not projects:
        raise SystemExit(f"no built-in plugin sources under {PLUGINS}: cannot ship them")
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SOURCE_DATE_EPOCH", "315532800")  # 1980-01-01: reproducible
    return [_build_one(_backend(project), project.parent, out) for project in projects]


# The backends a built-in may use: flit_core for Python plugins, Arcade's own for exec ones.
_BACKENDS = ("flit_core.buildapi", "arcade_core.exec_backend")


def _backend(pyproject: Path) -> object:
    """The build backend ``pyproject`` names, imported (one of :data:`_BACKENDS`)."""
    name = tomllib.loads(pyproject.read_text(encoding="utf-8"))["build-system"]["build-backend"]
    if name not in _BACKENDS:
        raise SystemExit(f"{pyproject}: build backend {name!r} is not one of {_BACKENDS}")
    if name.startswith("arcade_core.") and str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # this tree's arcade_core (stdlib-only to import)
    return importlib.import_module(name)


def _build_one(backend: object, source: Path, out: Path) -> str:
    with contextlib.chdir(source):
        return str(backend.build_wheel(str(out)))  # type: ignore[attr-defined]


class BuildPyWithBuiltinWheels(build_py):
    """``build_py``, then the built-in plugins' wheels into the build's ``arcade_core``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        build_builtin_wheels(Path(self.build_lib, *SHIPPED).absolute())


setup(cmdclass={"build_py": BuildPyWithBuiltinWheels})
