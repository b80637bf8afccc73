"""The pluggy ``PluginManager`` of Arcade's hooks, built on demand.

Used by :class:`~arcade_core.PluginHost` (one manager per host, whose hook executor it then
replaces with Arcade's isolating one) and by tests and benchmarks that need a bare manager
for the same hooks. Never built at import time, so embedding applications and tests get
managers of their own.
"""

from __future__ import annotations

import pluggy

from . import hookspecs
from ._markers import PROJECT_NAME

__all__ = ["make_plugin_manager"]


def make_plugin_manager() -> pluggy.PluginManager:
    """A PluginManager for Arcade's hooks (``collect``, ``before``, ``after``, ``notify``).

    Built on demand, never at import time, so that embedding applications and tests get
    managers of their own.
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm
