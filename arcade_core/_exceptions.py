"""Arcade's exceptions: one root, with subclasses that say who should catch them.

* :class:`ArcadeError` — the root; catch it to handle anything Arcade raises on purpose.
* :class:`InvalidSpec` — an operator typed a bad ``name@version`` spec.
* :class:`InvalidWheel` — a wheel is malformed, hostile or not an Arcade plugin;
  publishers and the registry catch it.
* :class:`InvalidConfig` — a plugin config does not match the plugin's schema.
* :class:`InstallError` — a plugin environment could not be built (missing dependency,
  incompatible requirement, hash mismatch).
* :class:`PluginLoadError` — a plugin could not be imported, constructed or registered.
* :class:`PluginNotFound` — a name the host does not know.
* :class:`PluginCallError` — one plugin's hook call failed (raised, timed out, crashed).
* :class:`ProtocolError` — a subprocess plugin spoke out of turn (or its process ended
  mid-conversation); the host turns it into a :class:`PluginCallError` or a restart.
* :class:`PluginInUse` — an operation needs a plugin that is still loaded to be unloaded
  first (uninstalling it); the operator catches it.
* :class:`InvalidCall` — the embedding code called the host wrongly: an unknown hook, hook
  arguments that do not match its spec, a timeout or limit that is not positive. A
  programming error: fix the call.
* :class:`HostClosed` — the :class:`~arcade_core.PluginHost` was closed; code still using
  it while shutting down catches it.

Internal signals that never leave ``arcade_core`` (a child's pipe closing, a race won by a
concurrent installer) are private classes of the modules that raise and catch them.
"""

from __future__ import annotations

__all__ = [
    "ArcadeError",
    "HostClosed",
    "InstallError",
    "InvalidCall",
    "InvalidConfig",
    "InvalidSpec",
    "InvalidWheel",
    "PluginCallError",
    "PluginInUse",
    "PluginLoadError",
    "PluginNotFound",
    "ProtocolError",
]


class ArcadeError(Exception):
    """Root of every error Arcade raises on purpose."""


class InvalidSpec(ArcadeError, ValueError):
    """A plugin spec such as ``name@1.2.0`` could not be parsed."""


class InvalidWheel(ArcadeError, ValueError):
    """A wheel is not a valid, safe Arcade plugin (or dependency) wheel."""


class InvalidConfig(ArcadeError, ValueError):
    """A plugin config does not validate against the plugin's config schema."""


class InstallError(ArcadeError):
    """A plugin environment could not be built from the given wheels."""


class PluginLoadError(ArcadeError):
    """A plugin could not be imported, constructed or registered."""


class PluginNotFound(ArcadeError, LookupError):
    """The host has no plugin (or no installed version) by that name."""


class PluginCallError(ArcadeError):
    """One plugin's hook call failed: it raised, timed out, or its process crashed."""

    def __init__(self, plugin: str, hook: str, message: str) -> None:
        super().__init__(f"{plugin}.{hook}: {message}")
        self.plugin = plugin
        self.hook = hook
        self.message = message


class ProtocolError(ArcadeError):
    """A subprocess plugin sent something the host protocol does not allow."""


class PluginInUse(ArcadeError):
    """A plugin is still loaded where the operation needs it unloaded (e.g. uninstall)."""


class InvalidCall(ArcadeError, ValueError):
    """The host was called wrongly: unknown hook, mismatched arguments, bad timeout."""


class HostClosed(ArcadeError, RuntimeError):
    """The :class:`~arcade_core.PluginHost` (or its worker pool) is closed."""
