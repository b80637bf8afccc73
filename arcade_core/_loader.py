"""Importing plugin code into this interpreter, and really taking it out again.

``sys.path`` and ``sys.modules`` belong to the whole process, so the bookkeeping here is
process-wide (one lock, one table), whichever :class:`~arcade_core.PluginHost` asks:

* :func:`import_plugin` puts an environment's ``site-packages`` at the front of
  ``sys.path`` (its own dependencies win over anything the host happens to have
  installed) and imports the entry point. Environments are reference counted: the same
  ``name@version`` loaded under several keys shares one import.
* :func:`release` drops a reference; the last one removes the path (and its
  ``sys.path_importer_cache`` entries), purges every module whose file lives under the
  environment from ``sys.modules`` and invalidates the import caches, so loading another
  version afterwards runs *its* code, not a stale module.
* An upgrade imports v2 while v1 is still registered: v1's modules are moved aside
  (``displaced``) for the import, put back by :func:`abort` if v2 fails, and dropped for
  good once v1 is released.

In-process plugins share one module namespace: two *different* versions of a plugin
cannot be imported side by side (that is what ``Isolation.PROCESS`` is for), and the
import of one is refused with a message that says so.

The child process imports this module too (:func:`load_target`, :func:`instantiate`), so
it stays stdlib-only.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ._exceptions import PluginLoadError
from ._push import MetricPush, wants_metrics

if TYPE_CHECKING:
    from ._environment import Environment

__all__ = [
    "ImportedPlugin",
    "abort",
    "commit",
    "import_plugin",
    "imported_paths",
    "instantiate",
    "load_target",
    "modules_under",
    "release",
]

_lock = threading.RLock()


@dataclass
class _Entry:
    path: str
    refs: int = 0
    top_level: str = ""
    displaced: bool = False  # moved aside while a new version imports


@dataclass
class _Displaced:
    path: str
    modules: dict[str, ModuleType]
    position: int


@dataclass(eq=False)
class ImportedPlugin:
    """One reference to an imported environment, and what its entry point names."""

    path: str
    target: Any
    displaced: _Displaced | None = field(default=None, repr=False)
    released: bool = False


# site-packages path -> entry; guarded by _lock.
_entries: dict[str, _Entry] = {}


def load_target(module: str, attr: str | None) -> Any:
    """Import ``module`` and return ``attr`` (a dotted path) from it, or the module."""
    obj: Any = importlib.import_module(module)
    for part in (attr or "").split("."):
        if part:
            obj = getattr(obj, part)
    return obj


def instantiate(target: Any, config: Mapping[str, Any], metrics: MetricPush | None = None
                ) -> Any:
    """Make the object to register from an entry point's target.

    A class is instantiated with the (validated, defaulted) config — or with no argument
    when it defines no ``__init__`` of its own — plus ``metrics=`` (the push handle of
    :mod:`arcade_core._push`) when its constructor takes a parameter of that name; a module
    or any other object is registered as it is.
    """
    if isinstance(target, type):
        if getattr(target, "__init__", None) is object.__init__:
            return target()
        if metrics is not None and wants_metrics(target):
            return target(dict(config), metrics=metrics)
        return target(dict(config))
    return target


def _under(path: str, filename: str | None) -> bool:
    return bool(filename) and filename.startswith(path + os.sep)  # type: ignore[union-attr]


def modules_under(path: str) -> dict[str, ModuleType]:
    """Every module in ``sys.modules`` whose code lives under ``path``."""
    found: dict[str, ModuleType] = {}
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None)
        if filename is not None:
            if _under(path, filename):
                found[name] = module
            continue
        # Namespace packages have no __file__: judge them by their search path.
        entries = _locations(module)
        if entries and all(_under(path, entry) for entry in entries):
            found[name] = module
    return found


def imported_paths() -> dict[str, int]:
    """The environments imported in-process right now, with their reference counts."""
    with _lock:
        return {path: entry.refs for path, entry in _entries.items()}


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _forget_path(path: str) -> None:
    while path in sys.path:
        sys.path.remove(path)
    prefix = path + os.sep
    for key in list(sys.path_importer_cache):
        if key == path or key.startswith(prefix):
            sys.path_importer_cache.pop(key, None)


def _purge(path: str) -> None:
    for name in modules_under(path):
        sys.modules.pop(name, None)
    _forget_path(path)
    importlib.invalidate_caches()


def _locations(module: ModuleType) -> list[str]:
    filename = getattr(module, "__file__", None)
    if filename:
        return [filename]
    try:
        return [str(entry) for entry in getattr(module, "__path__", None) or []]
    except Exception:  # pragma: no cover - exotic __path__ objects
        return []


def _holder_of(module_name: str) -> tuple[str | None, str | None]:
    """Who already provides ``module_name``: (an imported env's path, or the host's file)."""
    module = sys.modules.get(module_name)
    if module is None:
        return None, None
    locations = _locations(module)
    for path in _entries:
        if any(_under(path, location) for location in locations):
            return path, locations[0]
    return None, (locations[0] if locations else repr(module))


def import_plugin(env: Environment, *, replacing: Environment | None = None) -> ImportedPlugin:
    """Import ``env``'s entry point and take a reference on the environment.

    ``replacing`` is the environment the caller is about to unload (an upgrade of the
    same key): if it is the only user of the clashing modules they are moved aside
    instead of refusing. Raises :class:`~arcade_core.PluginLoadError` with the reason
    when the import fails; nothing of ``env`` is left behind then.
    """
    ep = env.entry_point
    path = str(env.site_packages)
    top = ep.module.split(".", 1)[0]
    with _lock:
        entry = _entries.get(path)
        if entry is not None and entry.displaced:
            raise PluginLoadError(
                f"{env.name} {env.version} is being replaced by another version right now; "
                "load it again once that upgrade has finished"
            )
        if entry is not None and entry.refs > 0:
            try:
                target = load_target(ep.module, ep.attr)
            except Exception as exc:
                raise PluginLoadError(
                    f"{env.name} {env.version}: entry point {ep.value!r} failed to load: "
                    f"{_describe(exc)}"
                ) from exc
            entry.refs += 1
            return ImportedPlugin(path, target)

        displaced: _Displaced | None = None
        holder, filename = _holder_of(top)
        if holder is not None:
            old = _entries[holder]
            if replacing is not None and str(replacing.site_packages) == holder and old.refs == 1:
                position = sys.path.index(holder) if holder in sys.path else 0
                modules = modules_under(holder)
                for name in modules:
                    sys.modules.pop(name, None)
                _forget_path(holder)
                old.displaced = True
                displaced = _Displaced(holder, modules, position)
            else:
                raise PluginLoadError(
                    f"{env.name} {env.version}: module {top!r} is already imported in-process "
                    f"from {holder} (another version of this plugin, or another plugin with "
                    "the same package name); unload that one first, or load this one with "
                    "isolation='process'"
                )
        elif filename is not None:
            raise PluginLoadError(
                f"{env.name} {env.version}: its module {top!r} clashes with a module the host "
                f"already imported ({filename}); rename the plugin's package or load it with "
                "isolation='process'"
            )

        if path not in sys.path:
            sys.path.insert(0, path)
        importlib.invalidate_caches()
        try:
            target = load_target(ep.module, ep.attr)
        except BaseException as exc:
            _purge(path)
            if displaced is not None:
                _restore(displaced)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise PluginLoadError(
                f"{env.name} {env.version}: entry point {ep.value!r} failed to import: "
                f"{_describe(exc)}"
            ) from exc
        _entries[path] = _Entry(path, refs=1, top_level=top)
        return ImportedPlugin(path, target, displaced)


def _restore(displaced: _Displaced) -> None:
    entry = _entries.get(displaced.path)
    if entry is not None:
        entry.displaced = False
    if displaced.path not in sys.path:
        sys.path.insert(min(displaced.position, len(sys.path)), displaced.path)
    sys.modules.update(displaced.modules)
    importlib.invalidate_caches()


def release(imported: ImportedPlugin) -> None:
    """Drop one reference; the last one unloads the environment's code for good."""
    with _lock:
        if imported.released:
            return
        imported.released = True
        entry = _entries.get(imported.path)
        if entry is None:
            return
        entry.refs -= 1
        if entry.refs <= 0:
            del _entries[imported.path]
            _purge(imported.path)


def abort(imported: ImportedPlugin) -> None:
    """Undo :func:`import_plugin` after a later step failed (e.g. construction).

    Releases the reference and, if v1 was moved aside for this import, puts it back.
    """
    with _lock:
        release(imported)
        if imported.displaced is not None:
            _restore(imported.displaced)
            imported.displaced = None


def commit(imported: ImportedPlugin) -> None:
    """The new plugin is registered: forget the moved-aside modules of the old one."""
    with _lock:
        imported.displaced = None
