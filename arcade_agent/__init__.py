"""Arcade's agent: keeps a gRPC stream to the server, reconciles desired state into a
:class:`arcade_core.PluginHost`, collects metrics and runs jobs.

The public surface is :class:`Agent` (the embedding API), :class:`AgentSettings` and
:class:`AgentConfigError`; they are imported on first use so that ``arcade --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arcade_core.lazy import lazy_attributes

if TYPE_CHECKING:
    from .agent import Agent, AgentStatus
    from .settings import AgentConfigError, AgentSettings

_LAZY = {
    "Agent": "agent",
    "AgentStatus": "agent",
    "AgentSettings": "settings",
    "AgentConfigError": "settings",
}

__all__ = ["Agent", "AgentConfigError", "AgentSettings", "AgentStatus"]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
