"""A PEP 517 build backend for exec plugin projects (docs/protocol.md, "Packaging").

An exec plugin project looks like a Python one, without Python code::

    pyproject.toml                      [build-system] build-backend = "arcade_core.exec_backend"
    arcade_loadavg/arcade-plugin.json   the manifest, with "exec": "arcade-loadavg"
    bin/arcade-loadavg                  the executable (a script, or a binary built before)

``pyproject.toml`` names the distribution in ``[project]`` (``name``, ``version``,
``description``) and the one ``arcade.plugins`` entry point, whose value is the package
holding the manifest (``loadavg = "arcade_loadavg"``). ``[tool.arcade]`` may say where the
executable is (``executable = "build/cpuc"``, default ``bin/<exec>``) and the wheel's
platform tag (``platform-tag = "linux_x86_64"`` for a native binary, default ``any``).
``python -m build --wheel --no-isolation`` (and Arcade's harness, ``arcade publish
--builtin``) then build the wheel with :func:`arcade_core.building.build_exec_wheel`.

The backend is stdlib-only and imports nothing of Arcade's but :mod:`arcade_core.building`,
so ``build`` may run it in its own interpreter or in-process.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from .building import BuildError, build_exec_wheel

__all__ = ["build_wheel", "get_requires_for_build_wheel", "read_project"]


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    """PEP 517: nothing beyond ``[build-system] requires`` (arcade-fleet itself)."""
    return []


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """PEP 517: build the exec plugin project in the working directory into
    ``wheel_directory``; return the wheel's file name."""
    return build_exec_wheel(out_dir=wheel_directory, **read_project(Path.cwd())).name


def read_project(root: Path) -> dict[str, Any]:
    """The keyword arguments of :func:`~arcade_core.building.build_exec_wheel` for the
    project in ``root``; :class:`~arcade_core.building.BuildError` saying what is missing."""
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"cannot read {root / 'pyproject.toml'}: {exc}") from None
    project = data.get("project")
    if not isinstance(project, dict) or not isinstance(project.get("name"), str) or not (
            isinstance(project.get("version"), str)):
        raise BuildError(f"{root / 'pyproject.toml'} needs [project] name and version")
    entry_points = project.get("entry-points", {}).get("arcade.plugins", {})
    if not isinstance(entry_points, dict) or len(entry_points) != 1:
        raise BuildError(
            f"{root / 'pyproject.toml'} needs exactly one entry point in "
            '[project.entry-points."arcade.plugins"], naming the package that holds '
            'arcade-plugin.json (e.g. loadavg = "arcade_loadavg")')
    [(entry_name, module)] = entry_points.items()
    if not isinstance(module, str) or not module.isidentifier():
        raise BuildError(f"the entry point {entry_name} = {module!r} must name a package "
                         "(a directory holding arcade-plugin.json), not a module:attribute")
    package = root / module
    try:
        manifest = json.loads((package / "arcade-plugin.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"cannot read the manifest {package / 'arcade-plugin.json'}: "
                         f"{exc}") from None
    if not isinstance(manifest, dict):
        raise BuildError(f"{package / 'arcade-plugin.json'} must hold a JSON object")
    tool = data.get("tool", {}).get("arcade", {})
    executable = tool.get("executable") or f"bin/{manifest.get('exec')}"
    files = {"__init__.py": (package / "__init__.py").read_bytes()} if (
        package / "__init__.py").is_file() else None
    return {
        "name": project["name"],
        "version": project["version"],
        "summary": str(project.get("description", "")),
        "executable": root / str(executable),
        "manifest": manifest,
        "platform_tag": str(tool.get("platform-tag", "any")),
        "module": module,
        "entry_name": entry_name,
        "package_files": files,
    }
