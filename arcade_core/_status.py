"""What the host reports: one loaded plugin's :class:`PluginStatus`, and the
:class:`HookOutcome` of a bounded :meth:`~arcade_core.PluginHost.call`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .states import Isolation, PluginState

__all__ = ["HookOutcome", "PluginStatus"]


@dataclass
class PluginStatus:
    """What one loaded plugin is doing.

    ``state`` is :attr:`~PluginState.RUNNING`, :attr:`~PluginState.RESTARTING` (process
    plugins, between a crash and the restart), :attr:`~PluginState.FAILED` (restarts
    exhausted) or :attr:`~PluginState.STOPPED`. ``calls``/``errors``/``mean_latency_ms``
    count hook calls from both ``host.hook`` and ``host.call`` since this instance was
    loaded; ``errors_in_a_row`` the failed calls since the last one that succeeded (the agent
    shows ``degraded`` past its threshold); ``error_at`` is when ``last_error`` happened
    (epoch seconds; ``None``: no error). ``malformed`` counts protocol lines a process
    or exec plugin's child got wrong.
    """

    key: str
    name: str
    version: str
    isolation: Isolation
    state: PluginState
    restarts: int
    last_error: str
    calls: int
    errors: int
    mean_latency_ms: float
    pid: int | None
    config: dict[str, Any]
    hooks: list[str] = field(default_factory=list)
    malformed: int = 0
    errors_in_a_row: int = 0
    error_at: float | None = None
    #: The plugin's interval in seconds (the assignment's, the manifest's, or the host's).
    interval: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The status as plain JSON-ready data (states and isolation as their words)."""
        return {
            "key": self.key, "name": self.name, "version": self.version,
            "isolation": self.isolation, "state": self.state, "restarts": self.restarts,
            "last_error": self.last_error, "calls": self.calls, "errors": self.errors,
            "mean_latency_ms": self.mean_latency_ms, "pid": self.pid,
            "config": dict(self.config), "hooks": list(self.hooks),
            "malformed": self.malformed, "errors_in_a_row": self.errors_in_a_row,
            "error_at": self.error_at, "interval": self.interval,
        }


@dataclass
class HookOutcome:
    """The result of :meth:`~arcade_core.PluginHost.call`: each plugin's return value or
    its error."""

    results: dict[str, Any]
    errors: dict[str, str]

    @property
    def ok(self) -> bool:
        """True when no plugin failed."""
        return not self.errors
