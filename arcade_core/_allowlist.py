"""The allow-list of a :class:`~arcade_core.PluginHost`: the only plugins that may load.

Read once when a host is built (``PluginHost(allow=...)``, else ``$ARCADE_PLUGINS``,
comma-separated; unset means every plugin may load) and checked on every
:meth:`~arcade_core.PluginHost.load`, before anything of the plugin is imported or started.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ._exceptions import PluginLoadError
from ._spec import normalize_name

__all__ = ["ENV_ALLOW", "allowed_names", "check_allowed"]

#: Environment variable holding the comma-separated names of the plugins that may load.
ENV_ALLOW = "ARCADE_PLUGINS"


def allowed_names(allow: Iterable[str] | None) -> frozenset[str] | None:
    """The normalized names of ``allow`` (``None``: read ``$ARCADE_PLUGINS``); ``None``
    when neither restricts anything."""
    if allow is None:
        raw = os.environ.get(ENV_ALLOW)
        if raw is None:
            return None
        allow = raw.split(",")
    return frozenset(normalize_name(name.strip()) for name in allow if name.strip())


def check_allowed(plugin: str, allow: frozenset[str] | None) -> None:
    """Raise :class:`~arcade_core.PluginLoadError` when the normalized name ``plugin`` is
    not on the allow-list ``allow`` (``None`` allows every plugin)."""
    if allow is not None and plugin not in allow:
        allowed = ", ".join(sorted(allow)) or "none"
        raise PluginLoadError(
            f"plugin {plugin!r} is not allowed to load here (allowed: {allowed}; set "
            f"by {ENV_ALLOW} or PluginHost(allow=...))"
        )
