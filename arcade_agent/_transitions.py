"""The host operations that take one desired-state plugin from what runs to what is wanted.

Used by the :class:`~arcade_agent.reconciler.Reconciler` for each plugin of a desired state,
concurrently: :meth:`Transitions.apply` installs and loads a new plugin or another version
(the host loads the new one first and unloads the old one only when that worked, so a broken
new version leaves the old one running), or adjusts the config, isolation or interval of the
version that runs; :meth:`Transitions.remove` unloads a plugin no longer wanted and deletes
its environment. Each step sets the plugin's status (:mod:`arcade_agent._statuses`) and saves
the applied state.

Deterministic failures (an install or load error) are remembered per plugin fingerprint, so
the same desired state delivered again does not retry them; a download failure is retried on
the next delivery. A version not signed by a trusted key fails before anything is downloaded
(remembered until the trust or the signatures change); a version already running that the
trust no longer covers keeps running and shows ``untrusted`` (:mod:`arcade_agent.trust`).
A newer desired state *supersedes* the one in flight: waiting for downloads
stops with :class:`Superseded` (the downloads go on into the cache), host operations in
progress finish.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from arcade_core import ArcadeError, PluginNotFound
from arcade_core.rpc.v1 import pb
from arcade_core.signing import Signature
from arcade_core.states import PluginState

from ._statuses import Statuses
from .desired import DesiredPlugin
from .errors import DownloadError, InvalidWheelRef, UntrustedPlugin
from .report import PluginReport
from .state import AppliedPlugin, AppliedState
from .trust import Trust

if TYPE_CHECKING:
    from arcade_core import Environment, PluginHost

__all__ = ["EnsureEnvironment", "Superseded", "Transitions"]

log = logging.getLogger("arcade_agent.reconciler")


class Superseded(Exception):
    """A newer desired state arrived; stop working on this one."""


class EnsureEnvironment(Protocol):
    """Makes a plugin version's environment exist: :meth:`Reconciler.ensure_environment
    <arcade_agent.reconciler.Reconciler.ensure_environment>`."""

    def __call__(
        self, name: str, version: str, refs: Sequence[pb.WheelRef],
        *, on_download: Callable[[], None] | None = None,
        signatures: Sequence[Signature] = (),
    ) -> Awaitable[Environment]: ...


class Transitions:
    """Brings single plugins of ``state`` to their desired form on ``host``.

    ``superseded`` is set by the reconciler when a newer desired state arrives;
    ``ensure_environment`` makes a version's environment exist (downloading what is not
    cached); ``save`` persists ``state``; ``plugins_changed`` tells the collector that the
    set of loaded plugins (or an interval) changed; ``trust()`` is the agent's current trust.
    """

    def __init__(
        self,
        host: PluginHost,
        state: AppliedState,
        statuses: Statuses,
        superseded: asyncio.Event,
        ensure_environment: EnsureEnvironment,
        *,
        save: Callable[[], Awaitable[None]],
        plugins_changed: Callable[[], None],
        trust: Callable[[], Trust] = Trust,
    ) -> None:
        self.host = host
        self.state = state
        self.statuses = statuses
        self.superseded = superseded
        self.ensure_environment = ensure_environment
        self._save = save
        self._plugins_changed = plugins_changed
        self._failures: dict[str, str] = {}  # name -> fingerprint of a deterministic failure
        self._trust = trust
        self._trust_failures: set[str] = set()  # names whose remembered failure is trust

    def forget_trust_failures(self) -> None:
        """The trust changed: retry the versions refused as untrusted."""
        for name in self._trust_failures:
            self._failures.pop(name, None)
        self._trust_failures.clear()

    def forget_failures(self, wanted: Mapping[str, DesiredPlugin]) -> None:
        """Forget the remembered failures of plugins no longer wanted, or wanted otherwise."""
        for name in list(self._failures):
            if name not in wanted or wanted[name].fingerprint() != self._failures[name]:
                del self._failures[name]

    async def apply(self, d: DesiredPlugin) -> None:
        """Install and load ``d`` (or adjust the version that runs); see the module."""
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
            self.statuses.set(PluginReport(d.name, d.version, PluginState.DOWNLOADING,
                                           isolation=d.isolation, sha256=d.sha256))

        old = current if loaded else None
        try:
            env = await self._until_superseded(
                self.ensure_environment(d.name, d.version, d.refs, on_download=mark_downloading,
                                        signatures=d.signatures)
            )
        except UntrustedPlugin as exc:  # nothing was downloaded or installed
            self.fail(d, str(exc), old)
            self._trust_failures.add(d.name)
            return
        except (DownloadError, InvalidWheelRef) as exc:  # the server may fix it: retry
            self.fail(d, str(exc), old, remember=False)
            return
        except ArcadeError as exc:  # InstallError, InvalidWheel
            self.fail(d, f"install failed: {exc}", old)
            return
        self._check_superseded()
        if downloading:
            self.statuses.set(PluginReport(d.name, d.version, PluginState.INSTALLING,
                                           isolation=d.isolation, sha256=d.sha256))
        try:
            host_status = await asyncio.to_thread(
                functools.partial(self.host.load, d.name, d.version, d.config, d.isolation,
                                  interval=d.interval or None, resources=d.resources))
        except ArcadeError as exc:  # PluginLoadError, InvalidConfig, PluginNotFound
            self.fail(d, f"load failed: {exc}", old)
            if old is None or old.version != d.version:
                await self._discard_env(d.name, d.version)
            return
        interval = d.interval or (env.manifest.interval or 0.0)
        isolation = host_status.isolation
        applied = AppliedPlugin(d.name, d.version, d.sha256, isolation, d.config, interval,
                                d.wheels, resources=d.resources)
        self.state.plugins[d.name] = applied
        self._failures.pop(d.name, None)
        self.statuses.mark_untrusted(d.name, None)
        self.statuses.set(self.statuses.refresh(PluginReport(
            d.name, d.version, PluginState.RUNNING, isolation=isolation, sha256=d.sha256)))
        self._plugins_changed()
        if current is not None and current.version != d.version:
            await self._discard_env(current.name, current.version)
            log.info("upgraded %s %s -> %s", d.name, current.version, d.version)
        else:
            log.info("loaded %s@%s (%s)", d.name, d.version, isolation)
        await self._save()

    async def _adjust(self, current: AppliedPlugin, d: DesiredPlugin) -> None:
        """Same version already loaded: apply config, isolation and interval changes, and
        say whether it is still trusted (it keeps running either way)."""
        try:
            self._trust().check(d.name, d.version, d.wheel_hashes, d.signatures)
        except UntrustedPlugin as exc:
            if self.statuses.mark_untrusted(d.name, str(exc)):
                log.warning("plugin %s@%s keeps running but is no longer trusted: %s",
                            d.name, d.version, exc)
        else:
            self.statuses.mark_untrusted(d.name, None)
        # No preference: keep what runs (the manifest's default).
        isolation = d.isolation or current.isolation
        d = replace(d, isolation=isolation)
        if current.isolation != isolation or current.resources != d.resources:
            # Another isolation, or new limits (the reaper and watchdog are per child): a new
            # instance. The host builds it first and swaps it in only if that worked, so a
            # failure leaves the plugin running the way it was.
            if self._failures.get(d.name) == d.fingerprint():
                return
            what = (f"switching to {isolation} isolation" if current.isolation != isolation
                    else "applying new resource limits")
            try:
                await asyncio.to_thread(functools.partial(
                    self.host.load, d.name, d.version, d.config, isolation,
                    interval=d.interval or None, resources=d.resources))
            except ArcadeError as exc:
                self.fail(d, f"{what} failed: {exc}", current)
                return
        elif current.config != d.config or (d.interval and d.interval != current.interval):
            # A running process or exec child takes both without a restart.
            if self._failures.get(d.name) == d.fingerprint():
                return
            try:
                await asyncio.to_thread(self.host.reconfigure, d.name, d.config,
                                        interval=d.interval or None)
            except ArcadeError as exc:
                self.fail(d, f"reconfigure failed: {exc}", current)
                return
        interval = d.interval or current.interval
        updated = replace(current, config=d.config, isolation=isolation, interval=interval,
                          resources=d.resources)
        if updated != current:
            self.state.plugins[d.name] = updated
            self._plugins_changed()
            await self._save()
        self._failures.pop(d.name, None)
        status = self.statuses.refresh(PluginReport(d.name, d.version, PluginState.RUNNING,
                                                    isolation=isolation, sha256=d.sha256))
        if self.statuses.get(d.name) != status:
            self.statuses.set(status)

    async def remove(self, name: str) -> None:
        """Unload the applied plugin ``name`` and delete its environment."""
        plugin = self.state.plugins[name]
        try:
            if self._loaded(name):
                await asyncio.to_thread(self.host.unload, name)
            await self._discard_env(name, plugin.version)
        except ArcadeError as exc:
            self.statuses.set(PluginReport(name, plugin.version, PluginState.FAILED,
                                           f"remove failed: {exc}", isolation=plugin.isolation,
                                           sha256=plugin.sha256))
            return
        del self.state.plugins[name]
        self._plugins_changed()
        self.statuses.mark_untrusted(name, None)
        self.statuses.set(PluginReport(name, plugin.version, PluginState.REMOVED,
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

    def fail(self, d: DesiredPlugin, error: str, old: AppliedPlugin | None,
             *, remember: bool = True) -> None:
        """Report ``d`` failed with ``error`` (saying so when ``old`` keeps running);
        ``remember``: a deterministic failure, not retried for the same fingerprint."""
        if old is not None and self._loaded(old.name):
            error += f" ({old.name} {old.version} keeps running)"
        if remember:
            self._failures[d.name] = d.fingerprint()
        log.error("plugin %s@%s: %s", d.name, d.version, error)
        self.statuses.set(PluginReport(d.name, d.version, PluginState.FAILED, error,
                                       isolation=d.isolation, sha256=d.sha256))

    def _loaded(self, key: str) -> bool:
        try:
            self.host.status(key)
        except PluginNotFound:
            return False
        return True

    # ------------------------------------------------------------------ supersede

    def _check_superseded(self) -> None:
        if self.superseded.is_set():
            raise Superseded()

    async def _until_superseded(self, work: Awaitable[Environment]) -> Environment:
        """Await ``work`` unless a newer desired state arrives first (then raise)."""
        task = asyncio.ensure_future(work)
        waiter = asyncio.ensure_future(self.superseded.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if task in done:
            return task.result()
        # The downloads behind `task` are shielded and go on into the cache; the install
        # step (a thread) cannot be interrupted, so let it finish before handing over.
        await asyncio.gather(task, return_exceptions=True)
        raise Superseded()
