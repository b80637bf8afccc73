"""Build Arcade's built-in plugins into real wheels, and gather their dependency wheels.

The built-in plugins (``plugins/<dist>/`` in a source checkout: ``arcade-cpu``,
``arcade-memory``, ``arcade-notify-stdout``, ...) are ordinary plugin distributions, shipped
the way any third-party plugin is: as a wheel published with the wheels of its dependencies.
The quickstart and the test suite turn the sources into those wheels here, with a PEP 517
build through ``build``'s :class:`~build.ProjectBuilder` — without an isolated build
environment, so offline, using the build backend installed beside Arcade (``flit_core``,
from the ``server`` extra).

An installed arcade-fleet has no ``plugins/``: its build (``setup.py``) built them into wheels
shipped in ``arcade_server/builtin_wheels/`` (:data:`SHIPPED_WHEELS_DIR`).
:func:`builtin_wheels` takes the sources of a checkout when there are some, else those
wheels, so ``arcade publish --builtin`` works both ways (and needs neither ``build`` nor
``flit_core`` when installed).

Backends known to have no global side effects (``flit_core``) are run in this interpreter
instead of a fresh one per hook: that saves two interpreter starts per wheel. Any other
backend runs through ``build``'s ordinary subprocess hook runner.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from packaging.utils import canonicalize_name

from arcade_core import ArcadeError

from .wheelhouse import dependency_wheels

if TYPE_CHECKING:
    from build import BuildBackendException

__all__ = [
    "BUILTIN_PLUGINS_DIR",
    "SHIPPED_WHEELS_DIR",
    "PluginBuildError",
    "build_builtin_wheels",
    "build_plugin_wheel",
    "builtin_dependency_wheels",
    "builtin_plugin_sources",
    "builtin_wheels",
    "checkout_plugins_dir",
    "shipped_builtin_wheels",
]

BUILTIN_PLUGINS_DIR: Final[Path] = Path(__file__).resolve().parent.parent / "plugins"
"""``plugins/`` of the source checkout this package runs from (it exists only there)."""

SHIPPED_WHEELS_DIR: Final[Path] = Path(__file__).resolve().parent / "builtin_wheels"
"""The built-in plugins' wheels inside an installed distribution (built by ``setup.py``)."""

# Requirements that the host provides to every plugin; never fetched as dependency wheels.

# Build backends whose hooks may run in this interpreter: importing them changes nothing
# global, and their hooks only read the source tree and write the output directory.
_IN_PROCESS_BACKENDS: Final = frozenset({"flit_core.buildapi"})

# PEP 517 hooks run with the source tree as the working directory; the working directory
# (and os.environ, sys.argv) is process-wide, so in-process hook runs take turns.
_in_process_lock = threading.Lock()


class PluginBuildError(ArcadeError):
    """A plugin source tree could not be built into a wheel (or is not where it should be)."""


class _Runner(Protocol):
    """pyproject_hooks' hook runner: runs ``cmd`` in ``cwd`` with ``extra_environ`` added."""

    def __call__(
        self,
        cmd: Sequence[str],
        cwd: str | None = None,
        extra_environ: Mapping[str, str] | None = None,
    ) -> None: ...


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
    """Build the plugin (or any project) in ``source_dir`` into a wheel in ``out_dir``.

    PEP 517 through ``build``'s :class:`~build.ProjectBuilder`, with no isolated build
    environment: the build requirements must already be installed (for the built-in
    plugins: ``flit_core``, in Arcade's ``server`` extra), and nothing is downloaded.
    The wheel is built in a temporary directory inside ``out_dir`` and renamed into place,
    so ``out_dir`` never holds a partial wheel; an existing wheel of the same name is
    replaced. Returns the wheel's absolute path. Raises :class:`PluginBuildError` saying
    what to fix.
    """
    from build import BuildBackendException, BuildException, ProjectBuilder

    source = Path(source_dir).resolve()
    if not (source / "pyproject.toml").is_file():
        raise PluginBuildError(
            f"{source} is not a plugin source tree: it has no pyproject.toml "
            "(a plugin needs one, with [build-system] and [project] tables)"
        )
    target = Path(out_dir).resolve()
    target.mkdir(parents=True, exist_ok=True)
    try:
        builder = ProjectBuilder(source, runner=_hook_runner(source))
        missing = builder.check_dependencies("wheel")
    except BuildException as exc:
        raise PluginBuildError(f"cannot build a wheel from {source}: {exc}") from None
    except BuildBackendException as exc:
        raise PluginBuildError(f"cannot build a wheel from {source}: {_reason(exc)}") from None
    if missing:
        names = sorted({chain[0] for chain in missing})
        raise PluginBuildError(
            f"cannot build a wheel from {source} offline: its build requirements "
            f"{', '.join(names)} are not installed in this environment ({sys.prefix}); "
            "install them, e.g. "
            f"pip install {' '.join(repr(n) for n in names)}"
        )
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target))
    try:
        try:
            built = Path(builder.build("wheel", staging))
        except (BuildException, BuildBackendException) as exc:
            reason = _reason(exc) if isinstance(exc, BuildBackendException) else str(exc)
            raise PluginBuildError(f"cannot build a wheel from {source}: {reason}") from None
        final = target / built.name
        os.replace(built, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


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
    ``wheelhouse`` (:func:`arcade_server.wheelhouse.dependency_wheels`)."""
    paths = list(wheels.values()) if isinstance(wheels, Mapping) else list(wheels)
    return dependency_wheels(paths, wheelhouse)


def _reason(exc: BuildBackendException) -> str:
    """What went wrong in the backend: its exception, or the tail of a hook process's output."""
    cause = exc.exception
    if isinstance(cause, subprocess.CalledProcessError) and cause.output:
        output = (
            cause.output.decode(errors="replace")
            if isinstance(cause.output, bytes)
            else cause.output
        )
        tail = [line for line in output.strip().splitlines() if line.strip()][-3:]
        return " | ".join(tail)
    return str(cause)


def _project_name(pyproject: Path) -> str:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        return canonicalize_name(str(data["project"]["name"]))
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise PluginBuildError(
            f"{pyproject} has no readable [project] name ({type(exc).__name__}: {exc}); "
            "a plugin's pyproject.toml must declare it statically"
        ) from None


def _hook_runner(source: Path) -> _Runner:
    """The PEP 517 hook runner for ``source``: in this interpreter when its backend allows."""
    import pyproject_hooks

    try:
        table = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))[
            "build-system"
        ]
        # An in-tree backend path would have to go onto sys.meta_path: not in this process.
        in_process = table["build-backend"] in _IN_PROCESS_BACKENDS and "backend-path" not in table
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError):
        in_process = False  # ProjectBuilder reports what is wrong with the file
    if in_process:
        return _run_hook_in_process
    runner: _Runner = pyproject_hooks.quiet_subprocess_runner
    return runner


def _run_hook_in_process(
    cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
) -> None:
    """Run one hook the way a fresh ``python`` would, but in this interpreter.

    ``cmd`` is pyproject_hooks' ``[python, .../_in_process.py, hook_name, control_dir]``:
    the script reads its input from and writes its result to ``control_dir``. It runs here
    with the same working directory, environment and ``sys.argv`` a subprocess would get;
    they are process-wide, so they are restored afterwards and runs are serialised. (The
    script also drops its own directory from ``sys.path``; that directory is never on it.)
    """
    script, *args = cmd[1:]
    with _in_process_lock, _patched_process_state([script, *args], cwd, extra_environ or {}):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as exc:  # the script's own usage errors; a backend error propagates
            if exc.code not in (None, 0):
                raise PluginBuildError(f"PEP 517 hook runner refused {args}: {exc.code}") from None


@contextlib.contextmanager
def _patched_process_state(
    argv: list[str], cwd: str | None, environ: Mapping[str, str]
) -> Iterator[None]:
    saved_argv = sys.argv
    saved_env = {key: os.environ.get(key) for key in environ}
    sys.argv = argv
    os.environ.update(environ)
    try:
        with contextlib.chdir(cwd or os.getcwd()):
            yield
    finally:
        sys.argv = saved_argv
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
