"""The per-plugin statuses of the desired-state plugins, and the reports that carry them.

Used by the :class:`~arcade_agent.reconciler.Reconciler`: every status change of a plugin
(``downloading`` → ``installing`` → ``running`` | ``failed`` | ``removed``, with error text and
restarts) is :meth:`Statuses.set` here, and the changes of one event loop tick are coalesced
into one ``PluginStatusReport`` for the revision being applied (``complete=True`` once it is
applied). A running plugin's status is refreshed from the host's live status on the way out,
so restarts, a process plugin that failed for good, a plugin whose calls keep failing
(``degraded``), its last error, counters, pid and memory are reported as they are.

Health without a flood: :meth:`Statuses.watch` compares the live view with what was last
sent. A change of state, restarts or pid, or an error appearing (:meth:`PluginReport.news`)
is reported at once (the agent watches after every collect round and on each host event);
counters, a new error text, the last collect time and memory only when ``counters=True`` (the
agent's periodic watch, about once a heartbeat). Runs on the agent's event loop only.

A loaded plugin that its agent no longer trusts (:meth:`Statuses.mark_untrusted`) is shown
``untrusted`` while the host runs it (a crash or a failure still shows as such).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from typing import TYPE_CHECKING

from arcade_core import Event, PluginNotFound
from arcade_core.rpc.v1 import pb
from arcade_core.states import PluginState

from .report import PluginReport, process_rss, with_host_status
from .state import AppliedState

if TYPE_CHECKING:
    from arcade_core import PluginHost

__all__ = ["Report", "Statuses"]

#: States of a plugin the host has loaded, refreshed from its live status.
_LOADED = (PluginState.RUNNING, PluginState.DEGRADED, PluginState.UNTRUSTED)

log = logging.getLogger("arcade_agent.reconciler")

#: Sends a status report; False when the stream is down (the next ``Register`` carries the
#: truth anyway).
Report = Callable[[pb.AgentMessage], Awaitable[bool]]


class Statuses:
    """The statuses by plugin name, for the plugins applied in ``state`` on ``host``.

    ``revision`` and ``complete`` go into every report: the revision being applied (or last
    applied) and whether it is fully applied. ``degraded_after`` is the agent's setting;
    ``collected_at(name)`` the time of the plugin's last successful ``collect`` (0: never).
    """

    def __init__(
        self,
        host: PluginHost,
        state: AppliedState,
        report: Report,
        *,
        degraded_after: int = 3,
        collected_at: Callable[[str], float] | None = None,
    ) -> None:
        self.host = host
        self.degraded_after = degraded_after
        self._collected_at = collected_at
        #: What the last report said, by plugin (for :meth:`watch`).
        self._sent: dict[str, PluginReport] = {}
        self.reports_sent = 0
        self.state = state
        self.revision = state.revision
        self.complete = True
        self._by_name: dict[str, PluginReport] = {}
        #: The last drift of each plugin version: (version, paths, when, not repaired yet);
        #: kept after a repair. While not repaired, a loaded plugin shows ``drifted``.
        self._drift: dict[str, tuple[str, tuple[str, ...], float, bool]] = {}
        self._untrusted: dict[str, str] = {}  # name -> why it is no longer trusted
        #: The local plugins' names, and the server's ignored assignments of such names
        #: (name -> why): see :mod:`arcade_agent.local`.
        self.local: frozenset[str] = frozenset()
        self.conflicts: dict[str, str] = {}
        self._report = report
        self._report_scheduled = False
        self._loop = asyncio.get_running_loop()

    def get(self, name: str) -> PluginReport | None:
        """The status of ``name`` as last set (not refreshed), or None."""
        return self._by_name.get(name)

    def all(self) -> list[PluginReport]:
        """Current per-plugin statuses (restarts and failures refreshed from the host)."""
        return [self.refresh(r) for r in sorted(self._by_name.values(), key=lambda r: r.name)]

    def drifted(self, report: PluginReport, paths: Collection[str], at: float) -> None:
        """Remember the drift of ``report``'s plugin (kept on its later reports of the same
        version) and report it with ``report``'s state."""
        self._drift[report.name] = (report.version, tuple(paths), at, True)
        self.set(report)

    def repaired(self, name: str) -> None:
        """``name``'s drift was repaired: its reports keep the drift, not the state."""
        drift = self._drift.get(name)
        if drift is not None:
            self._drift[name] = (*drift[:3], False)

    def running(self) -> list[PluginReport]:
        """What really runs: the applied plugins as the host sees them (for ``Register``)."""
        out = []
        for plugin in sorted(self.state.plugins.values(), key=lambda p: p.name):
            report = PluginReport(plugin.name, plugin.version, PluginState.RUNNING,
                                  isolation=plugin.isolation, sha256=plugin.sha256)
            out.append(self.refresh(report))
        return out

    def set(self, report: PluginReport) -> None:
        """Record ``report`` as its plugin's status and report it (coalesced)."""
        self._by_name[report.name] = report
        self.schedule_report()

    def mark_untrusted(self, name: str, reason: str | None) -> bool:
        """Show the loaded plugin ``name`` as ``untrusted`` with ``reason`` (None: trusted
        again, or gone). True when this changed its trust (a report is then scheduled)."""
        if self._untrusted.get(name) == reason:
            return False
        if reason is None:
            del self._untrusted[name]
        else:
            self._untrusted[name] = reason
        self.schedule_report()
        return True

    def forget_removed(self) -> None:
        """Drop the ``removed`` statuses: an earlier revision's news."""
        for name, status in list(self._by_name.items()):
            if status.state is PluginState.REMOVED:
                del self._by_name[name]
                self._drift.pop(name, None)

    def forget(self, name: str) -> None:
        """Drop ``name``'s status (a local plugin's entry that failed, now removed)."""
        if self._by_name.pop(name, None) is not None:
            self.schedule_report()

    def forget_unwanted(self, wanted: Collection[str]) -> None:
        """Drop the statuses of plugins neither ``wanted`` nor applied (e.g. a failed
        install that is no longer wanted)."""
        for name in list(self._by_name):
            if name not in wanted and name not in self.state.plugins:
                del self._by_name[name]

    def refresh(self, report: PluginReport, *, measure: bool = True) -> PluginReport:
        """``report`` of a loaded plugin (``running`` or ``degraded``) with the host's live
        state (restarts, failed, restarting, degraded, errors) folded in; ``measure=False``
        leaves a process child's memory unmeasured (0)."""
        if report.local != (report.name in self.local):
            report = replace(report, local=report.name in self.local)
        drift = self._drift.get(report.name)
        if drift is not None and drift[0] == report.version:
            report = replace(report, drift=drift[1], drift_at=drift[2])
            if drift[3] and report.state in _LOADED:  # e.g. set again by a redelivery
                report = replace(report, state=PluginState.DRIFTED)
        if report.state not in _LOADED:
            return report
        applied = self.state.plugins.get(report.name)
        if applied is None or applied.version != report.version:
            return report
        try:
            status = self.host.status(report.name)
        except PluginNotFound:
            return with_host_status(report, None)
        collected = self._collected_at(report.name) if self._collected_at else 0.0
        live = with_host_status(report, status, degraded_after=self.degraded_after,
                                last_collect_at=collected,
                                rss=process_rss if measure else None)
        reason = self._untrusted.get(report.name)
        if reason is not None and live.state in (PluginState.RUNNING, PluginState.DEGRADED):
            return replace(live, state=PluginState.UNTRUSTED, error=live.error or reason)
        conflict = self.conflicts.get(report.name) if report.local else None
        if conflict is not None and not live.error:
            return replace(live, error=conflict)
        return live

    def watch(self, *, counters: bool = False) -> bool:
        """Report now if a plugin's state, restarts or pid changed since the last report, or
        an error appeared — or, with ``counters``, anything else (error text and count, last
        collect, memory). True when a report was scheduled."""
        # Memory is measured only when it would be reported (it is not news on its own).
        reports = [self.refresh(r, measure=counters)
                   for r in sorted(self._by_name.values(), key=lambda r: r.name)]
        for report in reports:
            sent = self._sent.get(report.name)
            if sent is None or sent.news() != report.news() or (counters and sent != report):
                self.schedule_report()
                return True
        return False

    def host_event(self, event: Event) -> None:
        """On the loop: a process plugin crashed, restarted or failed for good."""
        key = str(event.data.get("key") or event.data.get("name") or "")
        current = self._by_name.get(key)
        applied = self.state.plugins.get(key)
        if current is None or applied is None:
            return
        self.set(self.refresh(PluginReport(key, applied.version, PluginState.RUNNING,
                                           isolation=applied.isolation,
                                           sha256=applied.sha256)))

    def schedule_report(self) -> None:
        """Send the statuses on the next loop tick (once, however many changes come)."""
        if not self._report_scheduled:
            self._report_scheduled = True
            self._loop.call_soon(self._send_report)

    def _send_report(self) -> None:
        self._report_scheduled = False
        reports = self.all()
        self._sent = {r.name: r for r in reports}
        self.reports_sent += 1
        message = pb.AgentMessage(status=pb.PluginStatusReport(
            revision=self.revision,
            plugins=[r.to_pb() for r in reports],
            complete=self.complete,
        ))
        task = asyncio.ensure_future(self._report(message))
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[bool]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("could not send a status report: %r", task.exception())
