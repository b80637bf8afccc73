"""arcade-fleet's one build step beyond pyproject.toml: ship the built-in plugins as wheels.

``arcade publish --builtin`` must work from an installed distribution, where the sources under
``plugins/`` of a checkout do not exist. So building arcade-fleet's wheel (``build_py``) also
builds each ``plugins/<dist>/`` into a wheel with its own backend (flit_core, run in this
process; it is a build requirement in pyproject.toml) and puts it in
``arcade_core/builtin_wheels/`` of the build, from where :mod:`arcade_core.builtin` reads
them. The timestamps inside come from ``SOURCE_DATE_EPOCH`` (1980 when unset), so the same
sources always give the same bytes and a re-publish is recognised as identical. An editable
install skips this: a checkout builds from ``plugins/`` itself.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PLUGINS = HERE / "plugins"
SHIPPED = ("arcade_core", "builtin_wheels")


def build_builtin_wheels(out: Path) -> list[str]:
    """Build every ``plugins/*/pyproject.toml`` project into a wheel in ``out``."""
    import flit_core.buildapi

    projects = sorted(PLUGINS.glob("*/pyproject.toml"))
    if not projects:
        raise SystemExit(f"no built-in plugin sources under {PLUGINS}: cannot ship them")
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SOURCE_DATE_EPOCH", "315532800")  # 1980-01-01: reproducible
    return [_build_one(flit_core.buildapi, project.parent, out) for project in projects]


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
