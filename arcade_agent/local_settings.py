"""The agent's ``plugins:`` settings: local plugins, declared in its own config file.

An agent may run plugins no server assigned (the seed's ``config.yaml``; a standalone agent
is a valid deployment)::

    plugins:
      cpu:    {enabled: true, interval: 60}                     # a built-in, by name
      custom: {wheel: /opt/plugins/custom-1.0-py3-none-any.whl, config: {path: /var/log/x}}

or in TOML ``[plugins.cpu] interval = 60``. Each entry is either a built-in plugin by its
name (``cpu`` or ``arcade-cpu``: the wheels ship inside arcade-fleet,
:mod:`arcade_core.builtin`), or ``wheel:`` a plugin wheel file or a directory holding the
plugin wheel and its dependency wheels; then the entry's key must be the plugin's name.
Keys: ``enabled`` (default true), ``interval`` (seconds > 0; default the manifest's, then
the agent's ``collect_interval``), ``config`` (a mapping, checked against the plugin's schema
when it loads), ``isolation`` (``inline`` or ``process``; default the manifest's).
A relative ``wheel`` is relative to the config file's directory.
``ARCADE_AGENT_PLUGINS`` takes the same mapping as JSON.

Parsed by :class:`~arcade_agent.settings.AgentSettings` (its ``plugins`` field) through
:func:`parse_local_plugins`, which names the entry and the fix for every mistake (an unknown
key, an unknown built-in, a missing file, a bad interval). Run by
:mod:`arcade_agent.local`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from arcade_core.states import Isolation

from ._values import table
from .errors import AgentConfigError

__all__ = ["LocalPluginSpec", "parse_local_plugins"]

_KEYS = ("enabled", "interval", "config", "isolation", "wheel")


@dataclass(frozen=True, slots=True)
class LocalPluginSpec:
    """One ``plugins:`` entry. ``name`` is the plugin's name: the built-in's full name
    (``arcade-cpu`` for ``cpu``), or the entry's key for a ``wheel`` (checked against the
    wheel when it is installed). ``wheel`` ``None``: a built-in."""

    name: str
    wheel: Path | None = None
    enabled: bool = True
    interval: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    isolation: Isolation | None = None
    #: The entry's key as written (for messages).
    key: str = ""

    @property
    def builtin(self) -> bool:
        return self.wheel is None

    def describe(self) -> str:
        """``plugins.cpu (built-in arcade-cpu)`` / ``plugins.custom (wheel /opt/...)``."""
        what = f"built-in {self.name}" if self.wheel is None else f"wheel {self.wheel}"
        return f"plugins.{self.key or self.name} ({what})"


def parse_local_plugins(value: Any, *, base: Path | None = None) -> tuple[LocalPluginSpec, ...]:
    """``plugins:`` from a config file's mapping or JSON text (``ARCADE_AGENT_PLUGINS``).

    ``base``: the config file's directory, for relative ``wheel`` paths. Raises
    :class:`AgentConfigError` naming the entry and what to fix (the caller adds where from).
    """
    if isinstance(value, tuple) and all(isinstance(v, LocalPluginSpec) for v in value):
        return value
    value = table(value, blank=True,
                  bad_json='plugins must be a JSON object, e.g. {"cpu": {"interval": 60}}',
                  not_a_table="plugins must be a mapping of plugin name to its settings, "
                              "e.g. plugins: {cpu: {interval: 60}}")
    from arcade_core.builtin import builtin_names

    specs: dict[str, LocalPluginSpec] = {}
    for key, entry in value.items():
        spec = _entry(str(key), entry, base, builtin_names)
        if spec.name in specs:
            raise AgentConfigError(
                f"plugins.{key}: plugin {spec.name} is already declared as "
                f"plugins.{specs[spec.name].key}; keep one entry")
        specs[spec.name] = spec
    return tuple(specs.values())


def _entry(key: str, entry: Any, base: Path | None,
           builtin_names: Callable[[], Collection[str]]) -> LocalPluginSpec:
    where = f"plugins.{key}"
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        raise AgentConfigError(f"{where} must be a mapping, e.g. {{enabled: true, "
                               "interval: 60}} (an empty one for a built-in's defaults)")
    unknown = sorted(str(k) for k in entry if k not in _KEYS)
    if unknown:
        raise AgentConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; an entry "
                               f"takes {', '.join(_KEYS)}")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise AgentConfigError(f"{where}.enabled = {enabled!r}: expected true or false")
    interval = entry.get("interval", 0.0)
    if (isinstance(interval, bool) or not isinstance(interval, int | float)
            or not math.isfinite(interval) or interval <= 0) and "interval" in entry:
        raise AgentConfigError(f"{where}.interval = {interval!r}: expected a number of "
                               "seconds > 0 (leave it out for the plugin's default)")
    config = entry.get("config", {})
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise AgentConfigError(f"{where}.config must be a mapping of the plugin's settings")
    isolation = entry.get("isolation")
    if isolation is not None:
        allowed = (Isolation.INLINE, Isolation.PROCESS)
        if isolation not in allowed:
            raise AgentConfigError(f"{where}.isolation = {isolation!r}: expected inline or "
                                   "process (or leave it out for the manifest's; an exec "
                                   "plugin's isolation comes from its manifest)")
        isolation = Isolation(isolation)
    wheel = entry.get("wheel")
    common: dict[str, Any] = {"enabled": enabled, "interval": float(interval),
                              "config": dict(config), "isolation": isolation, "key": key}
    if wheel is None:
        names = builtin_names()
        name = _builtin(key, names)
        if name is None:
            raise AgentConfigError(
                f"{where}: no built-in plugin named {key!r} (the built-ins are "
                f"{', '.join(sorted(n.removeprefix('arcade-') for n in names)) or 'none'}); "
                "for another plugin give its wheel: wheel: /path/to/plugin.whl")
        return LocalPluginSpec(name=name, **common)
    if not isinstance(wheel, str) or not wheel.strip():
        raise AgentConfigError(f"{where}.wheel must be the path of a wheel file or a "
                               "directory of wheels")
    path = Path(wheel).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if path.is_file() and path.suffix != ".whl":
        raise AgentConfigError(f"{where}.wheel: {path} is not a .whl file")
    if not path.exists():
        raise AgentConfigError(f"{where}.wheel: {path} does not exist; give the path of the "
                               "plugin's wheel file or of a directory holding it and its "
                               "dependency wheels")
    return LocalPluginSpec(name=str(canonicalize_name(key)), wheel=path.absolute(), **common)


def _builtin(key: str, names: Collection[str]) -> str | None:
    wanted = str(canonicalize_name(key))
    for candidate in (wanted, f"arcade-{wanted}"):
        if candidate in names:
            return candidate
    return None
