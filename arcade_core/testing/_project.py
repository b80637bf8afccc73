"""A plugin project under test: :class:`PluginProject` builds it into a wheel, checks the
wheel the way ``arcade publish`` does, installs it with its dependency wheels into a
throwaway :class:`~arcade_core.PluginHost` and hands out a :class:`LoadedPlugin` to call.

Nothing here leaves a trace in the test process: each :meth:`PluginProject.loaded` host has
its own home and is closed afterwards (which really unloads in-process plugins: their
modules leave ``sys.modules``), and :meth:`PluginProject.source_module` removes the package
it imported from the sources again. So two plugin projects whose packages have the same
name can be tested in one pytest session, in any order.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
import threading
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from .._exceptions import PluginCallError
from .._spec import normalize_name
from .._wheel import EntryPoint
from ._build import HarnessError, build_wheel

if TYPE_CHECKING:
    from .._host import PluginHost
    from .._manifest import Manifest
    from .._status import PluginStatus
    from .._types import Event, JobContext, JobResult, Metric
    from .._wheel import WheelInfo
    from ._exec import ExecProcess

__all__ = ["LoadedPlugin", "PluginProject"]

_GROUP = "arcade.plugins"


class _Pushes:
    """What one loaded plugin pushed (a host metric sink, called on the pushing thread)."""

    def __init__(self, key: str = "") -> None:
        self.key = key
        self.metrics: list[Metric] = []
        self.changed = threading.Condition()

    def __call__(self, key: str, metrics: list[Metric]) -> None:
        if key == self.key:
            with self.changed:
                self.metrics.extend(metrics)
                self.changed.notify_all()


@dataclass
class LoadedPlugin:
    """One plugin loaded into a throwaway host (from :meth:`PluginHost.loaded`).

    Each hook method calls the plugin alone through :meth:`PluginHost.call` (bounded by
    ``timeout``, isolated), returns what it returned and raises :class:`PluginCallError`
    with the plugin's error when it failed, so a test reads like a direct call.
    """

    host: PluginHost
    key: str
    _pushes: _Pushes = field(default_factory=lambda: _Pushes())

    def pushed(self) -> list[Metric]:
        """Every metric the plugin pushed so far (a Python plugin's ``metrics.push``, an exec
        plugin's ``metric`` lines), oldest first."""
        with self._pushes.changed:
            return list(self._pushes.metrics)

    def wait_pushed(self, count: int = 1, *, timeout: float = 30.0) -> list[Metric]:
        """Wait until the plugin pushed at least ``count`` metrics and return them all;
        :class:`TimeoutError` after ``timeout`` seconds."""
        with self._pushes.changed:
            if not self._pushes.changed.wait_for(
                    lambda: len(self._pushes.metrics) >= count, timeout):
                raise TimeoutError(f"{self.key} pushed {len(self._pushes.metrics)} metrics "
                                   f"within {timeout:g}s, not {count}")
            return list(self._pushes.metrics)

    @property
    def status(self) -> PluginStatus:
        """The host's status of the plugin: state, isolation, config, errors, restarts."""
        return self.host.status(self.key)

    def call(self, hook: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        """Call ``hook`` on this plugin alone; its result, or :class:`PluginCallError`."""
        outcome = self.host.call(hook, keys=[self.key], timeout=timeout, **kwargs)
        if self.key in outcome.errors:
            raise PluginCallError(self.key, hook, outcome.errors[self.key])
        return outcome.results.get(self.key)

    def collect(self, *, timeout: float | None = None) -> list[Metric]:
        """The plugin's ``collect()``."""
        result: list[Metric] = self.call("collect", timeout=timeout)
        return result

    def before(self, job: JobContext, *, timeout: float | None = None) -> dict[str, Any] | None:
        """The plugin's ``before(job)``."""
        result: dict[str, Any] | None = self.call("before", timeout=timeout, job=job)
        return result

    def after(
        self, job: JobContext, result: JobResult, *, timeout: float | None = None
    ) -> dict[str, Any] | None:
        """The plugin's ``after(job, result)``."""
        returned: dict[str, Any] | None = self.call(
            "after", timeout=timeout, job=job, result=result
        )
        return returned

    def notify(self, event: Event, *, timeout: float | None = None) -> None:
        """The plugin's ``notify(event)``."""
        self.call("notify", timeout=timeout, event=event)


class PluginProject:
    """The plugin project in ``root`` (its ``pyproject.toml`` declares one entry point in the
    group ``arcade.plugins``), built and installed under ``workdir``.

    ``wheelhouse`` is where its dependency wheels are found, or fetched once with ``pip
    download`` (default ``$ARCADE_WHEELHOUSE`` or ``~/.cache/arcade/wheelhouse``). The wheel is
    built on first use and reused by every later test of the session.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        workdir: str | os.PathLike[str],
        *,
        wheelhouse: str | os.PathLike[str] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.workdir = Path(workdir)
        self.wheelhouse = Path(wheelhouse) if wheelhouse is not None else None
        self.name, self.entry_point = _read_pyproject(self.root / "pyproject.toml")
        self._wheel: Path | None = None
        self._info: WheelInfo | None = None
        self._dependencies: list[Path] | None = None

    def __repr__(self) -> str:
        return f"<PluginProject {self.name} at {str(self.root)!r}>"

    @classmethod
    def find(
        cls,
        start: str | os.PathLike[str],
        workdir: str | os.PathLike[str],
        *,
        wheelhouse: str | os.PathLike[str] | None = None,
    ) -> PluginProject:
        """The plugin project that contains ``start`` (a test file, usually): the nearest
        directory upwards whose ``pyproject.toml`` declares an ``arcade.plugins`` entry point."""
        here = Path(start).resolve()
        for directory in [here, *here.parents]:
            pyproject = directory / "pyproject.toml"
            if pyproject.is_file() and _declares_plugin(pyproject):
                return cls(directory, workdir, wheelhouse=wheelhouse)
        raise HarnessError(
            f"no plugin project above {here}: no pyproject.toml there declares an entry point "
            f"in [project.entry-points.{_GROUP!r}]"
        )

    # -- the wheel -------------------------------------------------------------------------

    @property
    def wheel(self) -> Path:
        """The project's wheel, built from the current sources on first use."""
        if self._wheel is None:
            self._wheel = build_wheel(self.root, self.workdir / "dist")
        return self._wheel

    @property
    def info(self) -> WheelInfo:
        """The wheel as the server sees it when it is published (:func:`inspect_wheel`):
        raises :class:`~arcade_core.InvalidWheel` with the reason the server would give."""
        if self._info is None:
            from .._inspection import inspect_wheel

            self._info = inspect_wheel(self.wheel)
        return self._info

    @property
    def manifest(self) -> Manifest:
        """The wheel's ``arcade-plugin.json`` (``Manifest()`` when it has none)."""
        from .._manifest import Manifest

        return self.info.manifest or Manifest()

    @property
    def dependency_wheels(self) -> list[Path]:
        """The wheels of the plugin's dependencies, transitively (what ``arcade publish``
        needs beside the plugin's wheel), from the wheelhouse."""
        if self._dependencies is None:
            from ..wheelhouse import dependency_wheels

            self._dependencies = dependency_wheels([self.wheel], self.wheelhouse)
        return list(self._dependencies)

    def check(self, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Check the wheel as publishing does and ``config`` against the manifest's schema.

        Refused with the server's reason: no or several entry points, an entry point other
        than the one ``pyproject.toml`` declares (a stale build), a manifest that is not
        valid or not in the wheel, a config the schema refuses. Returns the effective config
        (the schema's defaults, ``default_config``, then ``config``).
        """
        info = self.info
        if info.entry_point != self.entry_point:
            raise HarnessError(
                f"the wheel's entry point is {info.entry_point}, not {self.entry_point} as "
                f"{self.root / 'pyproject.toml'} declares"
            )
        parts = self.entry_point.module.split(".")
        package = self._source_base().joinpath(*parts)
        directory = package if package.is_dir() else package.parent
        if (directory / "arcade-plugin.json").is_file() and info.manifest is None:
            raise HarnessError(
                f"{directory / 'arcade-plugin.json'} is not in the wheel: make the build "
                "backend include it (setuptools: [tool.setuptools.package-data])"
            )
        return self.manifest.validate_config(config or {})

    def _source_base(self) -> Path:
        """Where the package's sources are: ``src/`` (the src layout) or the project root."""
        top = self.entry_point.module.split(".")[0]
        return self.root / "src" if _has_package(self.root / "src", top) else self.root

    # -- running it ------------------------------------------------------------------------

    @contextlib.contextmanager
    def loaded(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        isolation: str | None = None,
        call_timeout: float = 30.0,
        interval: float | None = None,
    ) -> Iterator[LoadedPlugin]:
        """Install the wheel and its dependency wheels into a fresh :class:`PluginHost` and
        load the plugin with ``config``, ``isolation`` (``"inline"`` or ``"process"``;
        ``None``: the manifest's default) and ``interval`` (``None``: the manifest's), as an
        agent does; what it pushes is kept (:meth:`LoadedPlugin.wait_pushed`). The host is
        closed afterwards."""
        from .._host import PluginHost

        self.workdir.mkdir(parents=True, exist_ok=True)
        home = Path(tempfile.mkdtemp(prefix="host-", dir=self.workdir))
        with PluginHost(home, call_timeout=call_timeout) as host:
            host.install([self.wheel, *self.dependency_wheels])
            pushes = _Pushes(normalize_name(self.name))  # the key it is loaded as
            host.add_metric_sink(pushes)
            status = host.load(self.name, config=config, isolation=isolation,
                               interval=interval)
            yield LoadedPlugin(host, status.key, pushes)

    @contextlib.contextmanager
    def exec_process(self, *, env: Mapping[str, str] | None = None) -> Iterator[ExecProcess]:
        """For an exec plugin (its manifest names ``exec``): install the wheel into a fresh
        :class:`PluginHost`, start the installed program (``bin/<exec>`` of its environment,
        which is the working directory) and yield it as an :class:`ExecProcess`; it is killed
        afterwards. Nothing talks to it until the test does."""
        from .._host import PluginHost
        from ._exec import ExecProcess

        program = self.manifest.exec
        if program is None:
            raise HarnessError(f"{self.name} is not an exec plugin: its manifest names no "
                               "'exec' (use loaded() for a Python plugin)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        home = Path(tempfile.mkdtemp(prefix="host-", dir=self.workdir))
        with PluginHost(home) as host:
            installed = host.install([self.wheel, *self.dependency_wheels])
        with ExecProcess([installed.path / "bin" / program], cwd=installed.path,
                         env=env) as process:
            yield process

    @contextlib.contextmanager
    def source_module(self) -> Iterator[ModuleType]:
        """The entry point's module imported from the project's sources (``src/`` layout
        too), for testing the plugin's class directly. Its top-level package leaves
        ``sys.path`` and ``sys.modules`` afterwards, so another project's package of the
        same name, or this project's wheel in a host, imports its own copy later."""
        top = self.entry_point.module.split(".")[0]
        base = self._source_base()
        if top in sys.modules:
            raise HarnessError(
                f"a module {top!r} is imported already ({sys.modules[top]!r}): import the "
                "plugin only through the harness, so each test gets the copy it means"
            )
        sys.path.insert(0, str(base))
        try:
            yield importlib.import_module(self.entry_point.module)
        finally:
            sys.path.remove(str(base))
            sys.path_importer_cache.pop(str(base), None)
            for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
                del sys.modules[name]
            importlib.invalidate_caches()


def _has_package(base: Path, top: str) -> bool:
    return (base / top).is_dir() or (base / f"{top}.py").is_file()


def _load_toml(pyproject: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise HarnessError(f"cannot read {pyproject}: {exc}") from None


def _declares_plugin(pyproject: Path) -> bool:
    project = _load_toml(pyproject).get("project")
    return isinstance(project, dict) and bool(
        (project.get("entry-points") or {}).get(_GROUP)
    )


def _read_pyproject(pyproject: Path) -> tuple[str, EntryPoint]:
    """The project's normalized name and its one ``arcade.plugins`` entry point."""
    project = _load_toml(pyproject).get("project")
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        raise HarnessError(f"{pyproject} has no [project] name: not a plugin project")
    entries = (project.get("entry-points") or {}).get(_GROUP) or {}
    if not isinstance(entries, dict) or len(entries) != 1:
        raise HarnessError(
            f"{pyproject} must declare exactly one entry point in "
            f"[project.entry-points.{_GROUP!r}], not {len(entries)}"
        )
    [(name, value)] = entries.items()
    return canonicalize_name(project["name"]), EntryPoint.parse(name, str(value))
