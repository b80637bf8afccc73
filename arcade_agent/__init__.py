"""Arcade's agent: keeps a gRPC stream to the server, reconciles desired state into a
:class:`arcade_core.PluginHost`, collects metrics and runs jobs.

The public surface is :class:`Agent` (the embedding API), :class:`AgentSettings` and the
agent's exceptions (:class:`AgentError` and its subclasses, see :mod:`arcade_agent.errors`);
they are imported on first use so that ``arcade --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arcade_core.lazy import lazy_attributes

if TYPE_CHECKING:
    from .agent import Agent, AgentStatus
    from .errors import AgentConfigError, AgentError, AgentNotStarted, DownloadError
    from .settings import AgentSettings

_LAZY = {
    "Agent": "agent",
    "AgentStatus": "agent",
    "AgentSettings": "settings",
    "AgentConfigError": "errors",
    "AgentError": "errors",
    "AgentNotStarted": "errors",
    "DownloadError": "errors",
}

__all__ = [
    "Agent",
    "AgentConfigError",
    "AgentError",
    "AgentNotStarted",
    "AgentSettings",
    "AgentStatus",
    "DownloadError",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
