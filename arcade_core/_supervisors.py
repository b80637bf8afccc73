"""The supervisors of a host's process and exec plugins: each one made with the host's
timeouts and restart policy, its limits, and its output wired to the host's log rings, metric
sinks and event listeners (:class:`~arcade_core._process.ProcessPlugin`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ._hostlib import ensure_host_lib
from ._limits import Limits
from ._process import ProcessPlugin
from .log_rate import limit_plugin_log

if TYPE_CHECKING:
    from ._environment import Environment
    from ._events import HostEvents
    from ._logs import PluginLogs
    from ._sinks import MetricSinks
    from .resources import Resources

__all__ = ["HostPolicy", "Supervisors"]


class HostPolicy(Protocol):
    """What a supervisor takes from its host (a :class:`~arcade_core.PluginHost`; a protocol,
    so this module does not import the one that imports it)."""

    home: Path
    hang_timeout: float
    call_timeout: float
    start_timeout: float
    max_restarts: int
    healthy_period: float
    restart_backoff: float


class Supervisors:
    """Makes (not starts) the supervisor of each process or exec plugin of ``host``; the
    instance table calls :meth:`new`. Timeouts and the restart policy are read from the host
    at that moment."""

    def __init__(self, host: HostPolicy, logs: PluginLogs, events: HostEvents,
                 sinks: MetricSinks) -> None:
        self._host = host
        self._logs = logs
        self._events = events
        self._sinks = sinks
        self._host_lib: Path | None = None

    def new(self, env: Environment, key: str, config: dict[str, Any], interval: float,
            executable: Path | None, resources: Resources) -> ProcessPlugin:
        """The supervisor of ``key``. Its log ring is made now, so a plugin loaded here
        answers ``host.logs`` (empty) before its child has written a line."""
        host, logs = self._host, self._logs
        ring = logs.ring(key)
        limit_plugin_log(key)  # its stderr into the host's log: rate-limited
        return ProcessPlugin(
            env, key, config,
            executable=executable, interval=interval, hang_timeout=host.hang_timeout,
            on_metrics=lambda metrics: self._sinks.deliver(key, metrics),
            on_log=ring.add,
            host_lib=self._ensure_host_lib(),
            call_timeout=host.call_timeout,
            start_timeout=host.start_timeout,
            max_restarts=host.max_restarts,
            healthy_period=host.healthy_period,
            restart_backoff=host.restart_backoff,
            on_event=self._process_event,
            on_stderr=lambda line: logs.add(key, "stderr", line),
            limits=Limits(key, resources, exec_plugin=env.manifest.exec is not None,
                          on_log=lambda level, text: logs.add(key, level, text)),
        )

    def _process_event(self, kind: str, data: dict[str, Any]) -> None:
        """A supervisor's event: kept in the plugin's log ring, then told to listeners."""
        key = str(data.get("key", ""))
        if kind == "plugin.restarted":
            self._logs.add(key, "WARNING", f"restarted (restart {data.get('restarts')})")
        else:
            level = "ERROR" if kind == "plugin.failed" else "WARNING"
            word = "failed for good" if kind == "plugin.failed" else "crashed"
            self._logs.add(key, level, f"{word}: {data.get('error', '')}")
        self._events.post(kind, data)

    def _ensure_host_lib(self) -> Path:
        if self._host_lib is None:
            self._host_lib = ensure_host_lib(self._host.home)
        return self._host_lib
