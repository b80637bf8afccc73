"""The agent's answer to the server's ``LogsRequest``: the last lines a plugin logged.

The host keeps them (:meth:`arcade_core.PluginHost.logs`: a process child's stderr, an
in-process plugin's own log records, the host's word on its failures), bounded per plugin;
the server asks on demand (``GET /api/v1/agents/{id}/plugins/{name}/logs``, ``arcade logs``)
and the answer goes back on the agent's stream with the request's id. A request for more
lines than :data:`MAX_LINES` gets :data:`MAX_LINES` (the newest), so one answer stays far
below the stream's message limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arcade_core import PluginNotFound
from arcade_core.rpc.v1 import pb

if TYPE_CHECKING:
    from arcade_core import PluginHost

__all__ = ["MAX_LINES", "plugin_logs"]

#: The most lines one answer carries (a ring keeps 500 lines of at most 1,000 characters).
MAX_LINES = 500


def plugin_logs(host: PluginHost, message: Any) -> pb.PluginLogs:
    """The ``PluginLogs`` answer to ``message``'s ``LogsRequest``: the newest ``limit`` lines
    after ``after``, or an error when nothing was ever logged by that plugin here."""
    request = message.logs_request
    limit = min(request.limit or MAX_LINES, MAX_LINES)
    try:
        lines, last = host.logs(request.plugin, after=request.after, limit=limit)
    except PluginNotFound as exc:
        return pb.PluginLogs(request_id=request.request_id, plugin=request.plugin,
                             error=str(exc))
    return pb.PluginLogs(
        request_id=request.request_id, plugin=request.plugin, last_seq=last,
        lines=[pb.LogLine(seq=line.seq, time=line.time, level=line.level, text=line.text)
               for line in lines],
    )
