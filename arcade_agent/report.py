"""What the agent tells the server about one plugin: a :class:`PluginReport`, and how the
host's live view of a running plugin is folded into it (:func:`with_host_status`).

Besides the state, a report carries the plugin's health: its last error and when it
happened, its failed hook calls since it started, its restarts, its last successful
``collect``, and for a process plugin the child's pid and resident memory. A loaded plugin
whose calls failed ``degraded_after`` times in a row is reported ``degraded`` until one
succeeds. :meth:`PluginReport.news` is the part whose change is worth a report at once (state,
an error appearing, restarts, pid); the rest travels with it, or at most about once a
heartbeat.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from arcade_core.rpc.v1 import pb
from arcade_core.rpc.v1.convert import to_pb
from arcade_core.states import Isolation, PluginState

if TYPE_CHECKING:
    from arcade_core import PluginStatus

__all__ = ["PluginReport", "process_rss", "with_host_status"]


@dataclass(frozen=True, slots=True)
class PluginReport:
    """The agent's view of one plugin, as reported to the server. ``isolation`` ``None``:
    not known yet (the desired state left it to the plugin's manifest)."""

    name: str
    version: str
    state: PluginState
    error: str = ""
    restarts: int = 0
    isolation: Isolation | None = Isolation.INLINE
    sha256: str = ""
    #: When ``error`` happened (epoch seconds; 0: no error or not known).
    error_at: float = 0.0
    #: Hook calls that failed since the plugin started.
    errors: int = 0
    #: The last ``collect`` that succeeded (epoch seconds; 0: never).
    last_collect_at: float = 0.0
    #: A process plugin's child and its resident memory in bytes (0: none, unknown).
    pid: int = 0
    rss: int = 0
    #: The installed files that last drifted (see :mod:`arcade_agent.drift`) and when
    #: (epoch seconds; 0: never); kept after a repair.
    drift: tuple[str, ...] = ()
    drift_at: float = 0.0
    #: Protocol lines a process or exec plugin's children got wrong (logged, never fatal).
    malformed: int = 0

    def news(self) -> tuple[object, ...]:
        """What makes a report worth sending at once when it changes: the state, restarts,
        the child, and whether there is an error at all (a plugin whose error text changes
        on every call must not send a report per call: new text goes with the counters)."""
        return (self.version, self.state, bool(self.error), self.restarts, self.pid,
                self.drift_at)

    def to_pb(self) -> pb.PluginStatus:
        """The report as the wire's ``PluginStatus``."""
        return pb.PluginStatus(
            name=self.name, version=self.version, state=to_pb(self.state),
            error=self.error, restarts=self.restarts, isolation=to_pb(self.isolation),
            sha256=self.sha256, error_at=self.error_at, errors=self.errors,
            last_collect_at=self.last_collect_at, pid=self.pid, rss=self.rss,
            drift=self.drift, drift_at=self.drift_at, malformed=self.malformed,
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (for the agent's status API)."""
        return {
            "name": self.name, "version": self.version, "state": self.state,
            "error": self.error, "restarts": self.restarts,
            "isolation": self.isolation or "", "sha256": self.sha256,
            "error_at": self.error_at or None, "errors": self.errors,
            "last_collect_at": self.last_collect_at or None, "pid": self.pid or None,
            "rss": self.rss or None, "drift": list(self.drift),
            "drift_at": self.drift_at or None, "malformed": self.malformed,
        }


def with_host_status(
    report: PluginReport,
    status: PluginStatus | None,
    *,
    degraded_after: int = 3,
    last_collect_at: float = 0.0,
    rss: Callable[[int], int] | None = None,
) -> PluginReport:
    """``report`` of a running plugin with the host's live ``status`` folded in (restarts,
    failed, restarting, degraded, the last error and the counters); ``None``: the host does
    not have it loaded (it is stopped). ``rss(pid)`` measures a child's memory.

    The server knows no "restarting": a plugin being restarted by its supervisor is still
    assigned and running as far as the fleet goes; restarts and the error say more.
    """
    if status is None:
        return replace(report, state=PluginState.STOPPED)
    live = status.state
    stopped = (PluginState.FAILED, PluginState.STOPPED)
    state = live if live in stopped else PluginState.RUNNING
    if state is PluginState.RUNNING and status.errors_in_a_row >= degraded_after:
        state = PluginState.DEGRADED
    error = status.last_error or ""
    if live is PluginState.RESTARTING and error:
        error = f"restarting after: {error}"
    pid = status.pid or 0 if live is PluginState.RUNNING else 0
    memory = rss(pid) if pid and rss is not None else 0
    return replace(report, state=state, restarts=status.restarts, error=error,
                   error_at=(status.error_at or 0.0) if error else 0.0, errors=status.errors,
                   last_collect_at=last_collect_at, pid=pid, rss=memory,
                   malformed=status.malformed)


def process_rss(pid: int) -> int:
    """The resident memory of process ``pid`` in bytes (0 when it is gone)."""
    import psutil

    with contextlib.suppress(psutil.Error):
        return int(psutil.Process(pid).memory_info().rss)
    return 0
