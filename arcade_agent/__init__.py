"""Arcade's agent: keeps a gRPC stream to the server, reconciles desired state into a
:class:`arcade_core.PluginHost`, collects metrics and runs jobs.

The public surface is :class:`Agent` (the embedding API), :class:`AgentSettings` and
:class:`AgentConfigError`; they are imported on first use so that ``arcade --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'arcade_agent' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
