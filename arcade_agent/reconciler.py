"""Reconcile: turn the server's desired state into plugin host operations.

For every ``DesiredState`` the reconciler compares each desired plugin with what it applied
(:class:`~arcade_agent.state.AppliedState`) and what the host really runs, and does the least
that makes them equal:

* absent from the desired list → unload, delete its environment, report ``removed``;
* new, or another version (or wheel) → make sure its environment exists (download the wheels
  that are not cached, verify, install), then load it: for an upgrade the host loads the new
  version first and unloads the old one only when that worked, so a broken new version leaves
  the old one running and is reported ``failed`` with the reason;
* same version, another config → reconfigure in place; another isolation → load again;
* same everything and running → nothing (idempotent: the same desired state twice is free).

This module is the loop: one desired state at a time, its plugins handled concurrently
(downloads are bounded by the downloader); each plugin's steps are
:mod:`arcade_agent._transitions`, the statuses and the reports that carry them
:mod:`arcade_agent._statuses`. A newer desired state arriving mid-way *supersedes* the one
being applied: plugins waiting for downloads stop waiting (the downloads go on into the
cache), host operations in progress finish, and the new state is applied from what is then
true. Deterministic failures (an install or load error) are
remembered per plugin fingerprint, so the same desired state delivered again (on reconnect)
does not retry them; a download failure (server gone) is retried on the next delivery.

Trust (:mod:`arcade_agent.trust`): with trusted keys configured, a version must carry a valid
signature by one of them before anything of it is downloaded, else it fails with
``not signed by a trusted key (…)`` and nothing is installed. :meth:`Reconciler.set_trust`
(SIGHUP) applies the last desired state again under the new trust: versions no longer trusted
are refused from then on, and a plugin already running keeps running but shows ``untrusted``
until it is replaced (stopping it would turn a key rotation into an outage).

Statuses (``downloading`` → ``installing`` → ``running`` | ``failed`` | ``removed``, with error
text and restarts) are reported as they change, coalesced per event loop tick, and a report
with ``complete=True`` closes each revision. Host events (a process plugin crashed, restarted
or failed for good) update the statuses and are reported too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from arcade_core import ArcadeError, Event
from arcade_core.memory import release_memory
from arcade_core.rpc.v1 import pb
from arcade_core.signing import Signature
from arcade_core.states import Isolation, PluginState

from . import _repairs
from ._statuses import Statuses
from ._transitions import Superseded, Transitions
from .cache import WheelCache
from .desired import DesiredPlugin
from .downloader import Downloader
from .drift_settings import DriftPolicy
from .errors import InvalidDesiredPlugin
from .report import PluginReport
from .state import AppliedState, StateStore
from .trust import Trust

if TYPE_CHECKING:
    from arcade_core import Environment, PluginHost

__all__ = ["Link", "PluginReport", "Reconciler"]

log = logging.getLogger(__name__)


class Link(Protocol):
    """What the health watch needs of the agent's connection."""

    heartbeat_interval: float
    connected: asyncio.Event


class Reconciler:
    """Applies desired states to a :class:`~arcade_core.PluginHost`, one at a time.

    ``report`` sends a status report (returns False when the stream is down: the next
    ``Register`` carries the truth anyway). ``on_plugins`` receives ``{key: interval}`` of the
    loaded plugins whenever that set changes (the collector schedules from it).
    ``degraded_after`` and ``collected_at`` feed the plugins' health (see
    :class:`~arcade_agent._statuses.Statuses`).
    """

    def __init__(
        self,
        host: PluginHost,
        downloader: Downloader,
        cache: WheelCache,
        store: StateStore,
        state: AppliedState,
        *,
        report: Callable[[pb.AgentMessage], Awaitable[bool]],
        on_plugins: Callable[[dict[str, float]], None],
        degraded_after: int = 3,
        collected_at: Callable[[str], float] | None = None,
        drift_policy: DriftPolicy = DriftPolicy.REPAIR,
        trust: Trust | None = None,
    ) -> None:
        self.host = host
        self.drift_policy = drift_policy
        #: The keys this agent trusts (see :meth:`set_trust`).
        self.trust = trust or Trust()
        #: Held while a desired state is applied or a drifted plugin repaired.
        self._operating = asyncio.Lock()
        #: Called with a plugin's name after its environment was rebuilt (drift repair).
        self.on_rebuilt: Callable[[str], None] = lambda name: None
        self.repairs = 0
        self.downloader = downloader
        self.cache = cache
        self.store = store
        self.state = state
        self._on_plugins = on_plugins
        self._statuses = Statuses(host, state, report, degraded_after=degraded_after,
                                  collected_at=collected_at)
        self._pending: pb.DesiredState | None = None
        self._last: pb.DesiredState | None = None
        self._wakeup = asyncio.Event()
        self._superseded = asyncio.Event()
        self._transitions = Transitions(host, state, self._statuses, self._superseded,
                                        self.ensure_environment, save=self._save,
                                        plugins_changed=self._plugins_changed,
                                        trust=lambda: self.trust)
        self._busy = False
        self._applied_event = asyncio.Condition()
        self._loop = asyncio.get_running_loop()
        self._save_lock = asyncio.Lock()
        self.applies = 0

    # ------------------------------------------------------------------ public

    @property
    def applied_revision(self) -> int:
        return self.state.revision

    def statuses(self) -> list[PluginReport]:
        """Current per-plugin statuses (restarts and failures refreshed from the host)."""
        return self._statuses.all()

    def running(self) -> list[PluginReport]:
        """What really runs: the applied plugins as the host sees them (for ``Register``)."""
        return self._statuses.running()

    @property
    def last_desired(self) -> pb.DesiredState | None:
        """The newest desired state received (``None`` before the first)."""
        return self._last

    def submit(self, desired: pb.DesiredState) -> None:
        """Apply ``desired`` as soon as possible, superseding any state being applied."""
        self._pending = self._last = desired
        if self._busy:
            self._superseded.set()
        self._wakeup.set()

    def set_trust(self, trust: Trust) -> None:
        """Trust ``trust`` from now on (the agent's config was re-read): the last desired
        state is applied again, so versions no longer trusted are refused and running ones
        show ``untrusted``; remembered trust failures are retried (a key may have been
        added)."""
        self.trust = trust
        log.info("trust changed: %s", trust.describe())
        self._transitions.forget_trust_failures()
        if self._last is not None:
            self.submit(self._last)

    async def wait_applied(self, revision: int, timeout: float | None = None) -> None:
        """Wait until a desired state with revision >= ``revision`` is fully applied."""
        async with asyncio.timeout(timeout), self._applied_event:
            await self._applied_event.wait_for(lambda: self.state.revision >= revision
                                               and not self._busy and self._pending is None)

    async def run(self) -> None:
        """Apply submitted desired states forever (until cancelled)."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending is not None:
                desired, self._pending = self._pending, None
                self._superseded.clear()
                self._busy = True
                try:
                    async with self._operating:
                        await self._apply(desired)
                except Superseded:
                    log.info("desired revision %d superseded mid-way", desired.revision)
                except Exception:
                    # Keep reconciling later states; the statuses already say what failed.
                    log.exception("applying desired revision %d failed", desired.revision)
                finally:
                    self._busy = False
            async with self._applied_event:
                self._applied_event.notify_all()

    async def restore(self) -> None:
        """Load the plugins of the persisted state from their environments (no download).

        A plugin whose environment is gone is forgotten (the next desired state installs it
        again); one that fails to load is reported ``failed`` and retried on the next
        desired state.
        """
        installed = {(e.name, e.version, e.sha256) for e in
                     await asyncio.to_thread(self.host.installed)}
        for plugin in list(self.state.plugins.values()):
            if (plugin.name, plugin.version, plugin.sha256) not in installed:
                log.warning("environment of %s@%s is gone; it will be installed again",
                            plugin.name, plugin.version)
                del self.state.plugins[plugin.name]
                continue
            try:
                await asyncio.to_thread(
                    self.host.load, plugin.name, plugin.version, plugin.config, plugin.isolation,
                    interval=plugin.interval or None,
                )
            except ArcadeError as exc:
                log.error("could not load %s@%s from disk: %s", plugin.name, plugin.version, exc)
                self._statuses.set(PluginReport(plugin.name, plugin.version, PluginState.FAILED,
                                                str(exc), isolation=plugin.isolation,
                                                sha256=plugin.sha256))
                del self.state.plugins[plugin.name]
                continue
            log.info("restored %s@%s from disk", plugin.name, plugin.version)
            self._statuses.set(PluginReport(plugin.name, plugin.version, PluginState.RUNNING,
                                            isolation=plugin.isolation, sha256=plugin.sha256))
        self._plugins_changed()
        self.cache.set_pinned(self.state.pinned_wheels())
        await self._save()

    def on_host_event(self, event: Event) -> None:
        """Host listener (any thread): a plugin crashed, restarted or failed for good."""
        if event.kind in ("plugin.crashed", "plugin.restarted", "plugin.failed"):
            self._loop.call_soon_threadsafe(self._statuses.host_event, event)

    async def ensure_environment(
        self, name: str, version: str, refs: Sequence[pb.WheelRef],
        *, on_download: Callable[[], None] | None = None,
        signatures: Sequence[Signature] = (),
    ) -> Environment:
        """The environment of ``name@version`` built from ``refs``: reused if present,
        else built from cached or downloaded (verified) wheels.

        With trusted keys, ``signatures`` must include a trusted key's signature of the
        statement of exactly ``refs`` (checked first, before anything is downloaded or an
        existing environment is handed out), else :class:`~arcade_agent.errors.UntrustedPlugin`.

        Also the entry point for job plugins (issue 5), which need an environment without
        touching the desired-state plugins; their signatures come with the job.
        """
        self.trust.check(name, version, {r.filename: r.sha256 for r in refs}, signatures)
        sha = refs[0].sha256 if refs else ""
        for env in await asyncio.to_thread(self.host.installed):
            if env.name == name and env.version == version and env.sha256 == sha:
                return env
        missing = [r for r in refs if r.sha256 not in self.cache]
        if missing and on_download is not None:
            on_download()
        paths = await self.downloader.fetch(refs)
        return await asyncio.to_thread(
            self.host.install, paths, expected_sha256={r.filename: r.sha256 for r in refs}
        )

    # ------------------------------------------------------------------ drift

    async def watched(self) -> dict[str, Environment]:
        """The environments of the applied plugins, by name (for the drift watch)."""
        return await _repairs.watched(self)

    async def drifted(self, name: str, env: Environment, paths: list[str]) -> None:
        """``name``'s environment drifted: :func:`arcade_agent._repairs.drifted`."""
        await _repairs.drifted(self, name, env, paths)

    async def repair(self, name: str) -> None:
        """Rebuild and reload ``name``: :func:`arcade_agent._repairs.repair`."""
        await _repairs.repair(self, name)

    # ------------------------------------------------------------------ applying

    async def _apply(self, desired: pb.DesiredState) -> None:
        self.applies += 1
        self._statuses.revision = desired.revision
        self._statuses.complete = False
        # Statuses of plugins removed by an earlier revision are no longer news.
        self._statuses.forget_removed()
        wanted: dict[str, DesiredPlugin] = {}
        for plugin in desired.plugins:
            try:
                wanted[plugin.name] = DesiredPlugin.from_pb(plugin)
            except InvalidDesiredPlugin as exc:
                self._statuses.set(PluginReport(plugin.name, plugin.version, PluginState.FAILED,
                                                f"invalid desired state: {exc}",
                                                isolation=Isolation.INLINE))
        self._transitions.forget_failures(wanted)
        removals = [n for n in self.state.plugins if n not in wanted]
        self._statuses.forget_unwanted(wanted)  # e.g. a failed install no longer wanted
        await asyncio.gather(*(self._transitions.remove(n) for n in removals))
        results = await asyncio.gather(*(self._transitions.apply(d) for d in wanted.values()),
                                       return_exceptions=True)
        for d, result in zip(wanted.values(), results, strict=True):
            if isinstance(result, Superseded):
                raise result
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                # Not one of Arcade's errors (a full disk, a bug): report it, keep the agent
                # up, and try again on the next delivery (not remembered as deterministic).
                log.error("unexpected error applying %s@%s", d.name, d.version,
                          exc_info=result)
                old = self.state.plugins.get(d.name)
                self._transitions.fail(
                    d, f"unexpected error: {type(result).__name__}: {result}",
                    old if old is not None and old.version != d.version else None,
                    remember=False)
        self.state.revision = desired.revision
        self._statuses.complete = True
        self.cache.set_pinned(self.state.pinned_wheels())
        await asyncio.to_thread(self.cache.evict)
        await self._save()
        self._statuses.schedule_report()
        # Installing needed a transient peak of memory; don't carry it while idle.
        await asyncio.to_thread(release_memory)
        log.info("applied desired revision %d (%d plugins)", desired.revision, len(wanted))

    def watch_health(self, *, counters: bool = False) -> bool:
        """Report the plugins' health if it changed (see :meth:`Statuses.watch
        <arcade_agent._statuses.Statuses.watch>`)."""
        return self._statuses.watch(counters=counters)

    async def watch_health_forever(self, link: Link) -> None:
        """About once a heartbeat of ``link`` (the connection), while it is connected: report
        the plugins' counters, last collect and memory if they changed (a change of state is
        reported at once, after each collect round and on host events)."""
        while True:
            await asyncio.sleep(link.heartbeat_interval)
            if link.connected.is_set():
                self.watch_health(counters=True)

    def report_now(self) -> None:
        """Send the current statuses again (e.g. right after reconnecting)."""
        self._statuses.schedule_report()

    def _plugins_changed(self) -> None:
        self._on_plugins({p.name: p.interval for p in self.state.plugins.values()})

    async def _save(self) -> None:
        async with self._save_lock:
            snapshot = AppliedState(self.state.revision, dict(self.state.plugins))
            await asyncio.to_thread(self.store.save, snapshot)
