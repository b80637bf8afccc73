"""The reconciler's drift half: what happens when a plugin's installed files changed.

:func:`drifted` reports the plugin ``drifted`` with the paths, tells the other ``notify``
plugins (``plugin.drifted``) and, with the ``repair`` policy, calls :func:`repair`: the
environment is rebuilt from its verified wheels (the cache, else the server) and the plugin
loaded again. A repair is an install like any other: with trusted keys it needs the
signatures of the version (those of the last desired state), so a server cannot use a repair
to slip in code the agent would not install.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from arcade_core import ArcadeError, Event, InvalidWheel, PluginNotFound
from arcade_core.rpc.v1 import pb
from arcade_core.signing import Signature
from arcade_core.states import PluginState

from .drift_settings import DriftPolicy
from .errors import AgentError
from .report import PluginReport

if TYPE_CHECKING:
    from arcade_core import Environment, PluginHost

    from ._statuses import Statuses
    from .cache import WheelCache
    from .state import AppliedState

__all__ = ["Reconciler", "drifted", "repair", "watched"]

log = logging.getLogger("arcade_agent.reconciler")


class Reconciler(Protocol):
    """What a repair uses of :class:`arcade_agent.reconciler.Reconciler` (no import back)."""

    host: PluginHost
    state: AppliedState
    cache: WheelCache
    drift_policy: DriftPolicy
    repairs: int
    on_rebuilt: Callable[[str], None]
    _operating: asyncio.Lock
    _statuses: Statuses

    @property
    def last_desired(self) -> pb.DesiredState | None: ...

    def ensure_environment(
        self, name: str, version: str, refs: Sequence[pb.WheelRef],
        *, on_download: Callable[[], None] | None = None,
        signatures: Sequence[Signature] = (),
    ) -> Awaitable[Environment]: ...


def _signatures(rec: Reconciler, name: str, version: str) -> tuple[Signature, ...]:
    """The signatures the last desired state carried for ``name@version`` (none before the
    first desired state arrived: then a repair under trusted keys fails until it does)."""
    for plugin in rec.last_desired.plugins if rec.last_desired is not None else ():
        if plugin.name == name and plugin.version == version:
            return tuple(Signature(s.key_id, bytes(s.signature)) for s in plugin.signatures)
    return ()


async def watched(rec: Reconciler) -> dict[str, Environment]:
    """The environments of the applied plugins, by name (for the drift watch)."""
    applied = {(p.name, p.version, p.sha256): p.name for p in rec.state.plugins.values()}
    return {applied[key]: env for env in await asyncio.to_thread(rec.host.installed)
            if (key := (env.name, env.version, env.sha256)) in applied}

async def drifted(rec: Reconciler, name: str, env: Environment, paths: list[str]) -> None:
    """The files of ``name``'s environment ``env`` drifted (``paths``): report it
    ``drifted``, tell the ``notify`` plugins (``plugin.drifted``) and, with the
    ``repair`` policy, rebuild the environment and load the plugin again."""
    plugin = rec.state.plugins.get(name)
    if plugin is None or (plugin.version, plugin.sha256) != (env.version, env.sha256):
        return  # replaced meanwhile
    if rec._operating.locked():  # a desired state or a repair is changing environments:
        rec.on_rebuilt(name)     # what the check saw may be that; check afresh later
        return
    at = time.time()
    rec._statuses.drifted(PluginReport(
        name, plugin.version, PluginState.DRIFTED, "installed files changed: "
        + ", ".join(paths[:3]) + (" …" if len(paths) > 3 else ""), error_at=at,
        isolation=plugin.isolation, sha256=plugin.sha256), paths, at)
    event = Event("plugin.drifted", {"key": name, "name": name, "version": plugin.version,
                                     "paths": list(paths), "policy": rec.drift_policy})
    await asyncio.to_thread(_notify_others, rec, name, event)
    if rec.drift_policy is DriftPolicy.REPAIR:
        await repair(rec, name)

def _notify_others(rec: Reconciler, name: str, event: Event) -> None:
    keys = [impl.plugin_name for impl in reversed(rec.host.pm.hook.notify.get_hookimpls())
            if impl.plugin_name != name]
    if keys:
        rec.host.call("notify", keys=keys, event=event)

async def repair(rec: Reconciler, name: str) -> None:
    """Rebuild ``name``'s environment from its verified wheels (the cache, else the
    server; a cached wheel that fails its hash is dropped and downloaded again) and
    load it again; ``running`` afterwards (the drift stays in its reports), or
    ``failed`` saying why."""
    async with rec._operating:
        plugin = rec.state.plugins.get(name)
        if plugin is None:
            return
        refs = [pb.WheelRef(filename=w.filename, sha256=w.sha256, size=w.size)
                for w in plugin.wheels]
        signatures = _signatures(rec, name, plugin.version)
        report = PluginReport(name, plugin.version, PluginState.RUNNING,
                              isolation=plugin.isolation, sha256=plugin.sha256)
        try:
            with contextlib.suppress(PluginNotFound):
                await asyncio.to_thread(rec.host.unload, name)
            with contextlib.suppress(PluginNotFound):
                await asyncio.to_thread(rec.host.uninstall, name, plugin.version)
            rec.on_rebuilt(name)
            try:
                await rec.ensure_environment(name, plugin.version, refs, signatures=signatures)
            except InvalidWheel:  # a cached wheel changed too: fetch it again
                for ref in refs:
                    await asyncio.to_thread(rec.cache.remove, ref.sha256)
                await rec.ensure_environment(name, plugin.version, refs, signatures=signatures)
            await asyncio.to_thread(rec.host.load, name, plugin.version, plugin.config,
                                    plugin.isolation, interval=plugin.interval or None)
        except (ArcadeError, AgentError) as exc:
            log.error("repairing %s@%s failed: %s", name, plugin.version, exc)
            rec._statuses.set(replace(report, state=PluginState.FAILED,
                                       error=f"drift repair failed: {exc}",
                                       error_at=time.time()))
            return
        rec.repairs += 1
        rec._statuses.repaired(name)
        log.warning("repaired %s@%s: environment rebuilt, plugin loaded again", name,
                    plugin.version)
        rec._statuses.set(rec._statuses.refresh(report))
