"""The :class:`AgentStatus` snapshot: what an :class:`~arcade_agent.Agent` is doing, for
operators and tests (``Agent.status()``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .cache import CacheStats
from .downloader import DownloadStats

__all__ = ["AgentStatus"]


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """A snapshot of what the agent is doing, for operators and tests."""

    agent_id: str
    #: The server's address; empty for a standalone agent.
    server: str
    connected: bool
    sessions: int
    last_error: str
    applied_revision: int
    plugins: list[dict[str, Any]] = field(default_factory=list)
    cache: CacheStats | None = None
    downloads: DownloadStats | None = None
    metrics_buffered: int = 0
    metrics_sent: int = 0
    metrics_dropped: int = 0
    collect_errors: dict[str, int] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)
