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

Plugins are handled concurrently (downloads are bounded by the downloader). A newer desired
state arriving mid-way *supersedes* the one being applied: plugins waiting for downloads stop
waiting (the downloads go on into the cache), host operations in progress finish, and the new
state is applied from what is then true. Deterministic failures (an install or load error) are
remembered per plugin fingerprint, so the same desired state delivered again (on reconnect)
does not retry them; a download failure (server gone) is retried on the next delivery.

Statuses (``downloading`` → ``installing`` → ``running`` | ``failed`` | ``removed``, with error
text and restarts) are reported as they change, coalesced per event loop tick, and a report
with ``complete=True`` closes each revision. Host events (a process plugin crashed, restarted
or failed for good) update the statuses and are reported too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from arcade_core import ArcadeError, Event, PluginNotFound
from arcade_core.memory import release_memory
from arcade_core.rpc.v1 import pb
from arcade_core.states import Isolation, PluginState

from .cache import WheelCache
from .desired import DesiredPlugin
from .downloader import Downloader
from .errors import DownloadError, InvalidDesiredPlugin, InvalidWheelRef
from .report import PluginReport, with_host_status
from .state import AppliedPlugin, AppliedState, StateStore

if TYPE_CHECKING:
    from arcade_core import Environment, PluginHost

__all__ = ["PluginReport", "Reconciler"]

log = logging.getLogger(__name__)

class _Superseded(Exception):
    """A newer desired state arrived; stop working on this one."""


class Reconciler:
    """Applies desired states to a :class:`~arcade_core.PluginHost`, one at a time.

    ``report`` sends a status report (returns False when the stream is down: the next
    ``Register`` carries the truth anyway). ``on_plugins`` receives ``{key: interval}`` of the
    loaded plugins whenever that set changes (the collector schedules from it).
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
    ) -> None:
        self.host = host
        self.downloader = downloader
        self.cache = cache
        self.store = store
        self.state = state
        self._report = report
        self._on_plugins = on_plugins
        self._statuses: dict[str, PluginReport] = {}
        self._pending: pb.DesiredState | None = None
        self._wakeup = asyncio.Event()
        self._superseded = asyncio.Event()
        self._busy = False
        self._revision = state.revision  # the revision being applied (or last applied)
        self._complete = True
        self._failures: dict[str, str] = {}  # name -> fingerprint of a deterministic failure
        self._report_scheduled = False
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
        return [self._refresh(r) for r in sorted(self._statuses.values(), key=lambda r: r.name)]

    def running(self) -> list[PluginReport]:
        """What really runs: the applied plugins as the host sees them (for ``Register``)."""
        out = []
        for plugin in sorted(self.state.plugins.values(), key=lambda p: p.name):
            report = PluginReport(plugin.name, plugin.version, PluginState.RUNNING,
                                  isolation=plugin.isolation, sha256=plugin.sha256)
            out.append(self._refresh(report))
        return out

    def submit(self, desired: pb.DesiredState) -> None:
        """Apply ``desired`` as soon as possible, superseding any state being applied."""
        self._pending = desired
        if self._busy:
            self._superseded.set()
        self._wakeup.set()

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
                    await self._apply(desired)
                except _Superseded:
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
                    self.host.load, plugin.name, plugin.version, plugin.config, plugin.isolation
                )
            except ArcadeError as exc:
                log.error("could not load %s@%s from disk: %s", plugin.name, plugin.version, exc)
                self._set(PluginReport(plugin.name, plugin.version, PluginState.FAILED, str(exc),
                                       isolation=plugin.isolation, sha256=plugin.sha256))
                del self.state.plugins[plugin.name]
                continue
            log.info("restored %s@%s from disk", plugin.name, plugin.version)
            self._set(PluginReport(plugin.name, plugin.version, PluginState.RUNNING,
                                   isolation=plugin.isolation, sha256=plugin.sha256))
        self._plugins_changed()
        self.cache.set_pinned(self.state.pinned_wheels())
        await self._save()

    def on_host_event(self, event: Event) -> None:
        """Host listener (any thread): a plugin crashed, restarted or failed for good."""
        if event.kind in ("plugin.crashed", "plugin.restarted", "plugin.failed"):
            self._loop.call_soon_threadsafe(self._host_event, event)

    async def ensure_environment(
        self, name: str, version: str, refs: Sequence[pb.WheelRef],
        *, on_download: Callable[[], None] | None = None,
    ) -> Environment:
        """The environment of ``name@version`` built from ``refs``: reused if present,
        else built from cached or downloaded (verified) wheels.

        Also the entry point for job plugins (issue 5), which need an environment without
        touching the desired-state plugins.
        """
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

    # ------------------------------------------------------------------ applying

    async def _apply(self, desired: pb.DesiredState) -> None:
        self.applies += 1
        self._revision = desired.revision
        self._complete = False
        # Statuses of plugins removed by an earlier revision are no longer news.
        for name, status in list(self._statuses.items()):
            if status.state is PluginState.REMOVED:
                del self._statuses[name]
        wanted: dict[str, DesiredPlugin] = {}
        for plugin in desired.plugins:
            try:
                wanted[plugin.name] = DesiredPlugin.from_pb(plugin)
            except InvalidDesiredPlugin as exc:
                self._set(PluginReport(plugin.name, plugin.version, PluginState.FAILED,
                                       f"invalid desired state: {exc}",
                                       isolation=Isolation.INLINE))
        for name in list(self._failures):
            if name not in wanted or wanted[name].fingerprint() != self._failures[name]:
                del self._failures[name]
        removals = [n for n in self.state.plugins if n not in wanted]
        for name in list(self._statuses):
            if name not in wanted and name not in self.state.plugins:
                del self._statuses[name]  # e.g. a failed install that is no longer wanted
        await asyncio.gather(*(self._remove(n) for n in removals))
        results = await asyncio.gather(*(self._apply_plugin(d) for d in wanted.values()),
                                       return_exceptions=True)
        for d, result in zip(wanted.values(), results, strict=True):
            if isinstance(result, _Superseded):
                raise result
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                # Not one of Arcade's errors (a full disk, a bug): report it, keep the agent
                # up, and try again on the next delivery (not remembered as deterministic).
                log.error("unexpected error applying %s@%s", d.name, d.version,
                          exc_info=result)
                old = self.state.plugins.get(d.name)
                self._fail(d, f"unexpected error: {type(result).__name__}: {result}",
                           old if old is not None and old.version != d.version else None,
                           remember=False)
        self.state.revision = desired.revision
        self._complete = True
        self.cache.set_pinned(self.state.pinned_wheels())
        await asyncio.to_thread(self.cache.evict)
        await self._save()
        self._schedule_report()
        # Installing needed a transient peak of memory; don't carry it while idle.
        await asyncio.to_thread(release_memory)
        log.info("applied desired revision %d (%d plugins)", desired.revision, len(wanted))

    async def _apply_plugin(self, d: DesiredPlugin) -> None:
        current = self.state.plugins.get(d.name)
        loaded = current is not None and self._loaded(d.name)
        if current is not None and loaded and (current.version, current.sha256) == (
            d.version, d.sha256
        ):
            await self._adjust(current, d)
            return
        if self._failures.get(d.name) == d.fingerprint():
            return  # already failed deterministically; its failed status stands
        self._check_superseded()
        downloading = False

        def mark_downloading() -> None:
            nonlocal downloading
            downloading = True
            self._set(PluginReport(d.name, d.version, PluginState.DOWNLOADING,
                                   isolation=d.isolation, sha256=d.sha256))

        old = current if loaded else None
        try:
            env = await self._until_superseded(
                self.ensure_environment(d.name, d.version, d.refs, on_download=mark_downloading)
            )
        except (DownloadError, InvalidWheelRef) as exc:  # the server may fix it: retry
            self._fail(d, str(exc), old, remember=False)
            return
        except ArcadeError as exc:  # InstallError, InvalidWheel
            self._fail(d, f"install failed: {exc}", old)
            return
        self._check_superseded()
        if downloading:
            self._set(PluginReport(d.name, d.version, PluginState.INSTALLING, isolation=d.isolation,
                                   sha256=d.sha256))
        try:
            host_status = await asyncio.to_thread(self.host.load, d.name, d.version, d.config,
                                                  d.isolation)
        except ArcadeError as exc:  # PluginLoadError, InvalidConfig, PluginNotFound
            self._fail(d, f"load failed: {exc}", old)
            if old is None or old.version != d.version:
                await self._discard_env(d.name, d.version)
            return
        interval = d.interval or (env.manifest.interval or 0.0)
        isolation = host_status.isolation
        applied = AppliedPlugin(d.name, d.version, d.sha256, isolation, d.config, interval,
                                d.wheels)
        self.state.plugins[d.name] = applied
        self._failures.pop(d.name, None)
        self._set(self._refresh(PluginReport(d.name, d.version, PluginState.RUNNING,
                                             isolation=isolation, sha256=d.sha256)))
        self._plugins_changed()
        if current is not None and current.version != d.version:
            await self._discard_env(current.name, current.version)
            log.info("upgraded %s %s -> %s", d.name, current.version, d.version)
        else:
            log.info("loaded %s@%s (%s)", d.name, d.version, isolation)
        await self._save()

    async def _adjust(self, current: AppliedPlugin, d: DesiredPlugin) -> None:
        """Same version already loaded: apply config, isolation and interval changes."""
        # No preference: keep what runs (the manifest's default).
        isolation = d.isolation or current.isolation
        d = replace(d, isolation=isolation)
        if current.isolation != isolation:
            if self._failures.get(d.name) == d.fingerprint():
                return
            try:
                # The host builds the new instance (or child) first and swaps it in only if
                # that worked: a failure leaves the plugin running the way it was.
                await asyncio.to_thread(self.host.load, d.name, d.version, d.config, isolation)
            except ArcadeError as exc:
                self._fail(d, f"switching to {isolation} isolation failed: {exc}", current)
                return
        elif current.config != d.config:
            if self._failures.get(d.name) == d.fingerprint():
                return
            try:
                await asyncio.to_thread(self.host.reconfigure, d.name, d.config)
            except ArcadeError as exc:
                self._fail(d, f"reconfigure failed: {exc}", current)
                return
        interval = d.interval or current.interval
        updated = replace(current, config=d.config, isolation=isolation, interval=interval)
        if updated != current:
            self.state.plugins[d.name] = updated
            self._plugins_changed()
            await self._save()
        self._failures.pop(d.name, None)
        status = self._refresh(PluginReport(d.name, d.version, PluginState.RUNNING,
                                            isolation=isolation, sha256=d.sha256))
        if self._statuses.get(d.name) != status:
            self._set(status)

    async def _remove(self, name: str) -> None:
        plugin = self.state.plugins[name]
        try:
            if self._loaded(name):
                await asyncio.to_thread(self.host.unload, name)
            await self._discard_env(name, plugin.version)
        except ArcadeError as exc:
            self._set(PluginReport(name, plugin.version, PluginState.FAILED,
                                   f"remove failed: {exc}", isolation=plugin.isolation,
                                   sha256=plugin.sha256))
            return
        del self.state.plugins[name]
        self._plugins_changed()
        self._set(PluginReport(name, plugin.version, PluginState.REMOVED,
                               isolation=plugin.isolation, sha256=plugin.sha256))
        log.info("removed %s@%s", name, plugin.version)
        await self._save()

    async def _discard_env(self, name: str, version: str) -> None:
        try:
            await asyncio.to_thread(self.host.uninstall, name, version)
        except PluginNotFound:
            pass
        except ArcadeError as exc:
            log.warning("could not delete the environment of %s@%s: %s", name, version, exc)

    def _fail(self, d: DesiredPlugin, error: str, old: AppliedPlugin | None,
              *, remember: bool = True) -> None:
        if old is not None and self._loaded(old.name):
            error += f" ({old.name} {old.version} keeps running)"
        if remember:
            self._failures[d.name] = d.fingerprint()
        log.error("plugin %s@%s: %s", d.name, d.version, error)
        self._set(PluginReport(d.name, d.version, PluginState.FAILED, error, isolation=d.isolation,
                               sha256=d.sha256))

    # ------------------------------------------------------------------ supersede

    def _check_superseded(self) -> None:
        if self._superseded.is_set():
            raise _Superseded()

    async def _until_superseded(self, work: Awaitable[Environment]) -> Environment:
        """Await ``work`` unless a newer desired state arrives first (then raise)."""
        task = asyncio.ensure_future(work)
        waiter = asyncio.ensure_future(self._superseded.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if task in done:
            return task.result()
        # The downloads behind `task` are shielded and go on into the cache; the install
        # step (a thread) cannot be interrupted, so let it finish before handing over.
        await asyncio.gather(task, return_exceptions=True)
        raise _Superseded()

    # ------------------------------------------------------------------ statuses

    def _loaded(self, key: str) -> bool:
        try:
            self.host.status(key)
        except PluginNotFound:
            return False
        return True

    def _refresh(self, report: PluginReport) -> PluginReport:
        """``report`` with the host's live state (restarts, failed, restarting) folded in."""
        if report.state is not PluginState.RUNNING:
            return report
        applied = self.state.plugins.get(report.name)
        if applied is None or applied.version != report.version:
            return report
        try:
            status = self.host.status(report.name)
        except PluginNotFound:
            return with_host_status(report, None)
        return with_host_status(report, status)

    def _host_event(self, event: Event) -> None:
        key = str(event.data.get("key") or event.data.get("name") or "")
        current = self._statuses.get(key)
        applied = self.state.plugins.get(key)
        if current is None or applied is None:
            return
        self._set(self._refresh(PluginReport(key, applied.version, PluginState.RUNNING,
                                             isolation=applied.isolation,
                                             sha256=applied.sha256)))

    def _set(self, report: PluginReport) -> None:
        self._statuses[report.name] = report
        self._schedule_report()

    def _schedule_report(self) -> None:
        if not self._report_scheduled:
            self._report_scheduled = True
            self._loop.call_soon(self._send_report)

    def _send_report(self) -> None:
        self._report_scheduled = False
        message = pb.AgentMessage(status=pb.PluginStatusReport(
            revision=self._revision,
            plugins=[r.to_pb() for r in self.statuses()],
            complete=self._complete,
        ))
        task = asyncio.ensure_future(self._report(message))
        task.add_done_callback(_log_failure)

    def report_now(self) -> None:
        """Send the current statuses again (e.g. right after reconnecting)."""
        self._schedule_report()

    def _plugins_changed(self) -> None:
        self._on_plugins({p.name: p.interval for p in self.state.plugins.values()})

    async def _save(self) -> None:
        async with self._save_lock:
            snapshot = AppliedState(self.state.revision, dict(self.state.plugins))
            await asyncio.to_thread(self.store.save, snapshot)


def _log_failure(task: asyncio.Future[bool]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("could not send a status report: %r", task.exception())

