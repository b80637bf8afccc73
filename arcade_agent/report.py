"""What the agent tells the server about one plugin: a :class:`PluginReport`, and how the
host's live view of a running plugin is folded into it (:func:`with_host_status`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from arcade_core.rpc.v1 import pb
from arcade_core.rpc.v1.convert import to_pb
from arcade_core.states import Isolation, PluginState

if TYPE_CHECKING:
    from arcade_core import PluginStatus

__all__ = ["PluginReport", "with_host_status"]


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

    def to_pb(self) -> pb.PluginStatus:
        """The report as the wire's ``PluginStatus``."""
        return pb.PluginStatus(
            name=self.name, version=self.version, state=to_pb(self.state),
            error=self.error, restarts=self.restarts, isolation=to_pb(self.isolation),
            sha256=self.sha256,
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (for the agent's status API)."""
        return {
            "name": self.name, "version": self.version, "state": self.state,
            "error": self.error, "restarts": self.restarts,
            "isolation": self.isolation or "", "sha256": self.sha256,
        }


def with_host_status(report: PluginReport, status: PluginStatus | None) -> PluginReport:
    """``report`` of a running plugin with the host's live ``status`` folded in (restarts,
    failed, restarting); ``None``: the host does not have it loaded (it is stopped).

    The server knows no "restarting": a plugin being restarted by its supervisor is still
    assigned and running as far as the fleet goes; restarts and the error say more.
    """
    if status is None:
        return replace(report, state=PluginState.STOPPED)
    live = status.state
    stopped = (PluginState.FAILED, PluginState.STOPPED)
    state = live if live in stopped else PluginState.RUNNING
    error = status.last_error or "" if live in (*stopped, PluginState.RESTARTING) else ""
    if live is PluginState.RESTARTING and error:
        error = f"restarting after: {error}"
    return replace(report, state=state, restarts=status.restarts, error=error)
