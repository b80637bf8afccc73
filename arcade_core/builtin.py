"""Build Arcade's built-in plugins into real wheels, and gather their dependency wheels.

The built-in plugins (``plugins/<dist>/`` in a source checkout: ``arcade-cpu``,
``arcade-memory``, ``arcade-notify-stdout``, ...) are ordinary plugin distributions, shipped
the way any third-party plugin is: as a wheel published with the wheels of its dependencies.
The quickstart and the test suite turn the sources into those wheels here, with a PEP 517
build through ``build``'s :class:`~build.ProjectBuilder` — without an isolated build
environment, so offline, using the build backend installed beside Arcade (``flit_core``,
from the ``server`` extra).

An installed arcade-fleet has no ``plugins/``: its build (``setup.py``) built them into wheels
shipped in ``arcade_core/builtin_wheels/`` (:data:`SHIPPED_WHEELS_DIR`).
:func:`builtin_wheels` takes the sources of a checkout when there are some, else those
wheels, so ``arcade publish --builtin`` works both ways (and needs neither ``build`` nor
``flit_core`` when installed). The wheels live in ``arcade_core`` (not in the server's
package) because both sides use them: the server publishes them, and an agent runs them as
*local plugins* named in its own config with no server at all (:mod:`arcade_agent.local`),
so an ``arcade-fleet[agent]`` install can run ``cpu`` and ``memory`` by themselves.

The build itself is :func:`arcade_core.building.build_wheel` (the test harness's too), with
``flit_core``'s hooks run in this interpreter: two interpreter starts fewer per wheel.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final

from packaging.utils import canonicalize_name

from ._exceptions import ArcadeError
from .building import BuildError, build_wheel
from .wheelhouse import dependency_wheels

__all__ = [
    "BUILTIN_PLUGINS_DIR",
    "SHIPPED_WHEELS_DIR",
    "PluginBuildError",
    "build_builtin_wheels",
    "build_plugin_wheel",
    "builtin_dependency_wheels",
    "builtin_names",
    "builtin_plugin_sources",
    "builtin_wheels",
    "checkout_plugins_dir",
    "shipped_builtin_wheels",
]

BUILTIN_PLUGINS_DIR: Final[Path] = Path(__file__).resolve().parent.parent / "plugins"
"""``plugins/`` of the source checkout this package runs from (it exists only there)."""

SHIPPED_WHEELS_DIR: Final[Path] = Path(__file__).resolve().parent / "builtin_wheels"
"""The built-in plugins' wheels inside an installed distribution (built by ``setup.py``)."""


class PluginBuildError(ArcadeError):
    """A plugin source tree could not be built into a wheel (or is not where it should be)."""


def builtin_plugin_sources(plugins_dir: Path | None = None) -> dict[str, Path]:
    """Map each built-in plugin's normalized name to its source tree.

    A source tree is a subdirectory of ``plugins_dir`` (default :data:`BUILTIN_PLUGINS_DIR`)
    with a ``pyproject.toml``. Raises :class:`PluginBuildError` when the directory is
    missing, i.e. Arcade runs from an installed wheel rather than a source checkout.
    """
    root = BUILTIN_PLUGINS_DIR if plugins_dir is None else plugins_dir
    if not root.is_dir():
        raise PluginBuildError(
            f"the built-in plugins' sources are not at {root}: they ship only with a source "
            "checkout of Arcade (git clone the repository and run from it), not with an "
            "installed arcade-fleet package; build and publish plugin wheels from their own "
            "sources instead"
        )
    sources: dict[str, Path] = {}
    for pyproject in sorted(root.glob("*/pyproject.toml")):
        sources[_project_name(pyproject)] = pyproject.parent
    if not sources:
        raise PluginBuildError(f"no plugin source trees (*/pyproject.toml) under {root}")
    return sources


def checkout_plugins_dir() -> Path | None:
    """:data:`BUILTIN_PLUGINS_DIR` when Arcade runs from a source checkout (it has the
    plugins' sources beside its ``pyproject.toml``), else ``None``."""
    root = BUILTIN_PLUGINS_DIR
    if root.is_dir() and (root.parent / "pyproject.toml").is_file():
        return root
    return None


def shipped_builtin_wheels(wheels_dir: Path | None = None) -> dict[str, Path]:
    """Map each built-in plugin's normalized name to the wheel shipped in the distribution
    (``wheels_dir``, default :data:`SHIPPED_WHEELS_DIR`); empty when none is there."""
    from packaging.utils import parse_wheel_filename

    root = SHIPPED_WHEELS_DIR if wheels_dir is None else wheels_dir
    found: dict[str, Path] = {}
    for wheel in sorted(root.glob("*.whl")) if root.is_dir() else ():
        found[str(parse_wheel_filename(wheel.name)[0])] = wheel
    return found


def builtin_names() -> frozenset[str]:
    """The normalized names of the built-in plugins this arcade-fleet has (a checkout's
    sources, else the shipped wheels; empty when neither is there), without building any."""
    checkout = checkout_plugins_dir()
    try:
        found = (builtin_plugin_sources(checkout) if checkout is not None
                 else shipped_builtin_wheels())
    except PluginBuildError:
        return frozenset()
    return frozenset(found)


def builtin_wheels(out_dir: Path, names: Sequence[str] = ()) -> dict[str, Path]:
    """The wheels of the built-in plugins named (all when ``names`` is empty): built into
    ``out_dir`` from a checkout's ``plugins/``, else the ones shipped in the distribution.
    Raises :class:`PluginBuildError` for an unknown name (saying which exist) or when
    neither sources nor shipped wheels are there."""
    checkout = checkout_plugins_dir()
    available = (builtin_plugin_sources(checkout) if checkout is not None
                 else shipped_builtin_wheels())
    if not available:
        raise PluginBuildError(
            f"this arcade-fleet has no built-in plugins: neither a checkout's plugins/ nor "
            f"wheels in {SHIPPED_WHEELS_DIR} (reinstall arcade-fleet from its wheel)")
    wanted: list[str] = [str(canonicalize_name(n)) for n in names] or sorted(available)
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise PluginBuildError(
            f"no built-in plugin named {', '.join(unknown)}; the built-ins are "
            f"{', '.join(sorted(available))}")
    if checkout is None:
        return {name: available[name] for name in wanted}
    return {name: build_plugin_wheel(available[name], out_dir) for name in wanted}


def build_plugin_wheel(source_dir: Path, out_dir: Path) -> Path:
    """Build the plugin (or any project) in ``source_dir`` into a wheel in ``out_dir``
    (:func:`arcade_core.building.build_wheel`, flit_core's hooks in this interpreter).

    Offline: the build requirements must already be installed (for the built-in plugins:
    ``flit_core``, in Arcade's ``server`` extra). Raises :class:`PluginBuildError` saying
    what to fix.
    """
    try:
        return build_wheel(source_dir, out_dir, in_process=True)
    except BuildError as exc:
        raise PluginBuildError(str(exc)) from None


def build_builtin_wheels(out_dir: Path, plugins_dir: Path | None = None) -> dict[str, Path]:
    """Build every built-in plugin into ``out_dir``; return normalized name → wheel path."""
    return {
        name: build_plugin_wheel(source, out_dir)
        for name, source in builtin_plugin_sources(plugins_dir).items()
    }


def builtin_dependency_wheels(
    wheels: Mapping[str, Path] | Iterable[Path], wheelhouse: Path | None = None
) -> list[Path]:
    """The dependency wheels the given plugin wheels need, transitively, fetched into
    ``wheelhouse`` (:func:`arcade_core.wheelhouse.dependency_wheels`)."""
    paths = list(wheels.values()) if isinstance(wheels, Mapping) else list(wheels)
    return dependency_wheels(paths, wheelhouse)


def _project_name(pyproject: Path) -> str:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        return canonicalize_name(str(data["project"]["name"]))
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise PluginBuildError(
            f"{pyproject} has no readable [project] name ({type(exc).__name__}: {exc}); "
            "a plugin's pyproject.toml must declare it statically"
        ) from None
