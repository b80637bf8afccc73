"""When the agent checks its plugins' environments for drift (:mod:`arcade_agent.drift`).

:meth:`DriftWatch.check_all` runs first, as the agent starts (its plugins just loaded from
disk): every applied plugin's environment is hashed in full (its baseline taken).
:meth:`DriftWatch.run` then goes round the plugins
forever, one plugin per step, the steps spread evenly over ``check_interval`` (the stat pass);
a plugin whose last full hash is older than ``hash_interval`` gets the full pass at its step
instead. So the work is spread over time, never all plugins at once, and each check runs in
a worker thread (the event loop never waits on the disk). The CPU a check costs is counted
(:attr:`DriftWatch.cpu_seconds`), for the figures in ``docs/benchmarks.md``.

A check that finds drift hands the plugin and its paths to ``on_drift`` (the reconciler:
report, ``notify``, repair per ``[drift] policy``). A plugin left drifted (policy ``report``)
is not checked again until its environment is replaced; a repaired one gets a new baseline
(:meth:`DriftWatch.forget`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .drift import Baseline, take_baseline
from .drift_settings import DriftSettings

if TYPE_CHECKING:
    from arcade_core import Environment

    from .reconciler import Reconciler

__all__ = ["DriftWatch", "Watched", "watch_for"]

log = logging.getLogger(__name__)

#: The environments to watch, by plugin name (run in a worker thread).
Watched = Callable[[], Awaitable[dict[str, "Environment"]]]
#: Told about drift: plugin name, its environment, the drifted paths.
OnDrift = Callable[[str, "Environment", list[str]], Awaitable[None]]


@dataclass
class _Watch:
    env: Environment
    baseline: Baseline
    hashed_at: float
    drifted: bool = False


class DriftWatch:
    """Checks the environments ``watched()`` returns; see the module."""

    def __init__(self, settings: DriftSettings, watched: Watched, on_drift: OnDrift) -> None:
        self.settings = settings
        self._watched = watched
        self._on_drift = on_drift
        self._watches: dict[str, _Watch] = {}
        #: CPU seconds spent checking (worker thread time), and checks done, by kind.
        self.cpu_seconds = 0.0
        self.quick_checks = 0
        self.full_checks = 0

    def forget(self, name: str) -> None:
        """Drop ``name``'s baseline: its environment was rebuilt (a new one is taken)."""
        self._watches.pop(name, None)

    async def check_all(self) -> None:
        """Hash every watched environment in full now (at start), reporting drift."""
        envs = await self._watched()
        for name in sorted(envs):
            await self._check(name, envs[name], full=True)

    async def run(self, *, check_first: bool = True) -> None:
        """:meth:`check_all` (unless ``check_first`` is false), then check forever, one plugin
        per step (until cancelled). A task: a repair at start may need the connection."""
        if check_first:
            await self.check_all()
        quick, full = self.settings.check_interval, self.settings.hash_interval
        if not quick and not full:
            return
        while True:
            envs = await self._watched()
            for name in list(self._watches):
                if name not in envs or not _same_env(self._watches[name].env, envs[name]):
                    del self._watches[name]
            if not envs:
                await asyncio.sleep(quick or full)
                continue
            step = (quick or full) / len(envs)
            for name in sorted(envs):
                await asyncio.sleep(step)
                watch = self._watches.get(name)
                due = bool(full) and (watch is None
                                      or time.time() - watch.hashed_at >= full)
                if quick or due:
                    await self._check(name, envs[name], full=due)

    async def _check(self, name: str, env: Environment, *, full: bool) -> None:
        watch = self._watches.get(name)
        if watch is not None and not _same_env(watch.env, env):
            watch = None
        if watch is not None and watch.drifted:
            return  # left drifted (policy "report") until it is replaced
        drift, checked = await asyncio.to_thread(self._check_in_thread, env, watch, full)
        self._watches[name] = checked
        if drift:
            checked.drifted = True
            log.warning("plugin %s: %d file(s) of its environment drifted: %s", name,
                        len(drift), ", ".join(drift[:5]))
            await self._on_drift(name, env, drift)

    def _check_in_thread(self, env: Environment, watch: _Watch | None, full: bool
                         ) -> tuple[list[str], _Watch]:
        started = time.thread_time()
        try:
            if watch is None:
                baseline, drift = take_baseline(env)
                watch = _Watch(env, baseline, time.time())
                self.full_checks += 1
            elif full:
                drift = watch.baseline.full()
                watch.hashed_at = time.time()
                self.full_checks += 1
            else:
                drift = watch.baseline.quick()
                self.quick_checks += 1
        except OSError as exc:  # e.g. the environment directory itself is gone
            drift = [f"{env.path.name} ({exc.strerror or exc})"]
        finally:
            self.cpu_seconds += time.thread_time() - started
        return drift, watch or _Watch(env, _empty_baseline(env), time.time())


def _same_env(a: Environment, b: Environment) -> bool:
    return (a.path, a.sha256, a.created_at) == (b.path, b.sha256, b.created_at)


def _empty_baseline(env: Environment) -> Baseline:
    """A baseline that expects nothing (for an environment that could not be read)."""
    return Baseline(str(env.path), {}, {})


def watch_for(reconciler: Reconciler, settings: DriftSettings) -> DriftWatch:
    """The drift watch of ``reconciler``'s plugins under ``settings`` (the policy goes to the
    reconciler, which repairs), wired so a rebuilt environment gets a new baseline.

    Also stops this process from writing bytecode (``sys.dont_write_bytecode``): an inline
    plugin's ``__pycache__`` would be drift, see :mod:`arcade_agent.drift` (children get
    ``PYTHONDONTWRITEBYTECODE`` from the host)."""
    sys.dont_write_bytecode = True
    watch = DriftWatch(settings, reconciler.watched, reconciler.drifted)
    reconciler.drift_policy = settings.policy
    reconciler.on_rebuilt = watch.forget
    return watch
