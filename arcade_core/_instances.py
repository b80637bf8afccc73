"""The loaded plugins of one :class:`~arcade_core.PluginHost`, by key: make the new one,
then swap.

Used by the host for every management call (``load``, ``reconfigure``, ``unload``,
``close``) and for status queries; never on the path of a hook call, which goes through
pluggy alone. An :class:`Instance` is one loaded plugin: its environment, isolation,
config, and the object registered in the PluginManager under its key — the plugin itself
(in-process, imported by :mod:`arcade_core._loader`) or the proxy of its supervised child
(:mod:`arcade_core._process`, :mod:`arcade_core._proxy`).

Loading is *make the new one first, then swap*: an upgrade, a config change or an isolation
change builds the new instance (or starts the new child) while the old one keeps serving;
only if that worked is the old one unregistered and unloaded. A failure leaves the old one
running and raises :class:`~arcade_core.PluginLoadError` with the reason.

Locks: :attr:`Instances.manage` serializes the management calls; :attr:`Instances.lock`
guards :attr:`Instances.by_key` for short reads and writes (the host's ``call`` takes it
too). No lock is held while plugin code runs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from . import _loader
from ._environment import Environment
from ._events import HostEvents
from ._exceptions import HostClosed, InvalidConfig, PluginLoadError, PluginNotFound
from ._hookcaller import CallStats, check_plugin
from ._limits import INLINE_LIMITS
from ._logs import PluginLogs
from ._process import ProcessPlugin
from ._proxy import make_proxy
from ._push import MetricPush
from ._sinks import MetricSink
from ._status import PluginStatus
from ._types import Event
from .resources import InvalidResources, Resources
from .states import Isolation, PluginState

__all__ = ["Instance", "Instances", "NewProcess"]

#: Makes (not yet starts) the supervisor of a process or exec plugin: ``(env, key, config,
#: interval, executable, resources)`` (``executable`` None: a Python child; ``resources``: the
#: limits in force, the manifest's under any override).
NewProcess = Callable[[Environment, str, dict[str, Any], float, Path | None, Resources],
                      ProcessPlugin]


@dataclass(eq=False)
class Instance:
    """One loaded plugin, registered in the PluginManager as ``obj`` under ``key``."""

    key: str
    env: Environment
    isolation: Isolation
    config: dict[str, Any]
    obj: object  # what is registered in the PluginManager
    hooks: list[str]
    imported: _loader.ImportedPlugin | None = None
    process: ProcessPlugin | None = None
    interval: float = 0.0
    push: MetricPush | None = None  # an in-process plugin's push handle
    resources: Resources = field(default_factory=Resources)  # the limits in force
    override: dict[str, Any] | None = None  # the operator's override they came from


class Instances:
    """Every plugin loaded in ``pm``, by key, with the call statistics ``stats`` that the
    host's hook executor keeps (one :class:`CallStats` per key, reset by each swap).

    ``new_process`` makes the supervisor of a process plugin with the host's settings;
    ``check_schemas`` is the host's ``check_config_schemas``; ``events`` hears
    ``plugin.loaded`` and ``plugin.unloaded``; ``logs`` keeps what each key logged (the
    records of an in-process plugin's own loggers while it is loaded, and why a load failed).
    ``default_interval`` is the interval of a plugin whose assignment and manifest name
    none; ``push_sink(key, metrics)`` hears what in-process plugins push.
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        stats: dict[str, CallStats],
        events: HostEvents,
        new_process: NewProcess,
        *,
        check_schemas: bool,
        logs: PluginLogs | None = None,
        default_interval: float = 60.0,
        push_sink: MetricSink | None = None,
        default_limits: Resources | None = None,
    ) -> None:
        self.pm = pm
        self.default_interval = default_interval
        self.default_limits = default_limits or Resources()
        self.push_sink = push_sink
        self.logs = logs or PluginLogs()
        self.stats = stats
        self.events = events
        self.new_process = new_process
        self.check_schemas = check_schemas
        self.manage = threading.RLock()  # serializes load/unload/reconfigure/close
        self.lock = threading.Lock()  # guards by_key for short reads/writes
        self.by_key: dict[str, Instance] = {}
        self.closed = False

    def check_open(self) -> None:
        """Raise :class:`~arcade_core.HostClosed` once the host is closed."""
        if self.closed:
            raise HostClosed("this PluginHost is closed")

    # -- queries ---------------------------------------------------------------------------

    def get(self, key: str) -> Instance:
        """The instance loaded as ``key`` (:class:`~arcade_core.PluginNotFound` if none)."""
        with self.lock:
            loaded = self.by_key.get(key)
        if loaded is None:
            raise PluginNotFound(f"no plugin is loaded as {key!r}")
        return loaded

    def keys(self) -> list[str]:
        """The keys loaded now."""
        with self.lock:
            return list(self.by_key)

    def statuses(self) -> list[PluginStatus]:
        """The status of every loaded plugin, by key."""
        with self.lock:
            loaded = sorted(self.by_key.values(), key=lambda item: item.key)
        return [self.status(item) for item in loaded]

    def in_use(self, paths: Collection[Path]) -> list[str]:
        """``key (name@version)`` of every instance running one of the environments at
        ``paths``, sorted."""
        with self.lock:
            return sorted(f"{item.key} ({item.env.key})" for item in self.by_key.values()
                          if item.env.path in paths)

    def status(self, loaded: Instance) -> PluginStatus:
        """What ``loaded`` is doing: the supervisor's state for a process plugin, its call
        statistics either way."""
        st = self.stats.get(loaded.key) or CallStats()
        process = loaded.process
        if process is not None:
            state = process.state
            restarts = process.restarts
            if state in (PluginState.FAILED, PluginState.RESTARTING):
                last_error = process.last_error or st.last_error
            else:
                last_error = st.last_error or process.last_error
            error_at = process.error_at if last_error == process.last_error else st.error_at
            pid = process.pid
            malformed = process.malformed
            hooks = list(process.hooks)
            limits = process.limits.describe()
        else:
            state, restarts, last_error = PluginState.RUNNING, 0, st.last_error
            error_at = st.error_at
            pid, malformed = None, 0
            hooks = list(loaded.hooks)
            limits = INLINE_LIMITS
        return PluginStatus(
            key=loaded.key, name=loaded.env.name, version=loaded.env.version,
            isolation=loaded.isolation, state=state, restarts=restarts,
            last_error=last_error, calls=st.calls, errors=st.errors,
            mean_latency_ms=st.mean_latency_ms, pid=pid, config=dict(loaded.config),
            hooks=hooks, malformed=malformed, errors_in_a_row=st.in_a_row,
            error_at=error_at if last_error and error_at else None, interval=loaded.interval,
            limits=limits,
        )

    # -- loading ---------------------------------------------------------------------------

    def load(
        self,
        key: str,
        env: Environment,
        config: Mapping[str, Any] | None,
        isolation: Isolation | str | None,
        interval: float | None = None,
        resources: Mapping[str, Any] | None = None,
    ) -> PluginStatus:
        """Load ``env`` as ``key`` with ``config`` (validated, defaults applied),
        ``isolation`` (``None``: the manifest's), ``interval`` (``None`` or 0: the
        manifest's, else ``default_interval``) and ``resources`` (an override of the
        manifest's, :meth:`~arcade_core.resources.Resources.override`), replacing what
        ``key`` runs.

        The same environment, config, isolation, interval and limits is a no-op, unless the
        process plugin has ``failed``: then it is started afresh. Only the config or
        interval changed: a running process or exec child takes them without a restart, an
        in-process plugin is constructed anew (an interval alone only updates its push
        handle). New limits start a new child under them.
        """
        if not isinstance(key, str) or not key.strip():
            raise PluginLoadError(f"a plugin key must be a non-empty string, not {key!r}")
        effective = env.manifest.validate_config(config, check=self.check_schemas)
        wanted = isolation or env.manifest.isolation or Isolation.INLINE
        if wanted not in tuple(Isolation):
            raise InvalidConfig(
                f"isolation {wanted!r} is not supported; use one of {', '.join(Isolation)}"
            )
        mode = Isolation(wanted)
        _check_kind(env, mode)
        every = float(interval) if interval else env.manifest.interval or self.default_interval
        try:
            limits = self.default_limits.override(env.manifest.resources).override(resources)
        except InvalidResources as exc:
            raise InvalidConfig(f"{env.key}: resources: {exc}") from None
        with self.manage:
            self.check_open()
            with self.lock:
                old = self.by_key.get(key)
            if (
                old is not None
                and old.env.path == env.path
                and old.isolation == mode
                and old.resources == limits
                and (old.process is None or old.process.state is not PluginState.FAILED)
                and (old.config == effective or old.process is not None)
            ):
                return self._adjust(old, effective, every)
            if mode is Isolation.INLINE:  # what it logs while it is constructed counts too
                self.logs.capture(key, _top_package(env))
            try:
                new = self._make(key, env, effective, mode, every, limits, replacing=old)
                new.override = dict(resources) if resources else None
                self._swap(key, old, new)
            except Exception as exc:
                self.logs.add(key, "ERROR", f"loading {env.key} failed: {exc}")
                if old is not None and old.imported is not None:
                    self.logs.capture(key, _top_package(old.env))
                else:
                    self.logs.release(key)
                raise
            if new.imported is None:
                self.logs.release(key)
        data: dict[str, Any] = {"key": key, "name": env.name, "version": env.version,
                                "isolation": mode}
        if old is not None:
            data["previous_version"] = old.env.version
        self.events.dispatch(Event("plugin.loaded", data))
        return self.status(new)

    def unload(self, key: str) -> None:
        """Unregister ``key`` and really unload it (see :meth:`PluginHost.unload
        <arcade_core.PluginHost.unload>`)."""
        with self.manage:
            with self.lock:
                loaded = self.by_key.pop(key, None)
                if loaded is None:
                    raise PluginNotFound(f"no plugin is loaded as {key!r}")
                self.pm.unregister(name=key)
                self.stats.pop(key, None)
            self.logs.release(key)
            self._discard(loaded)
        self.events.dispatch(Event("plugin.unloaded", {
            "key": key, "name": loaded.env.name, "version": loaded.env.version,
            "isolation": loaded.isolation,
        }))

    def _adjust(self, loaded: Instance, config: dict[str, Any], interval: float
                ) -> PluginStatus:
        """Same plugin, same isolation: hand a running child its new config and interval
        (no restart), or give an in-process plugin's push handle its new interval."""
        if loaded.config == config and loaded.interval == interval:
            return self.status(loaded)
        if loaded.process is not None:
            loaded.process.reconfigure(config, interval)  # PluginLoadError: the old stays
            self.logs.add(loaded.key, "INFO", f"config or interval changed (interval "
                                              f"{interval:g}s); the process kept running")
        elif loaded.push is not None:
            loaded.push.interval = interval
        loaded.config, loaded.interval = config, interval
        return self.status(loaded)

    def _make(
        self,
        key: str,
        env: Environment,
        config: dict[str, Any],
        isolation: Isolation,
        interval: float,
        limits: Resources,
        *,
        replacing: Instance | None,
    ) -> Instance:
        """Import and construct (or start) a new instance; nothing registered yet."""
        if isolation is not Isolation.INLINE:
            executable = _executable(env) if isolation is Isolation.EXEC else None
            process = self.new_process(env, key, config, interval, executable, limits)
            process.start()
            return Instance(key, env, isolation, config, make_proxy(process),
                            list(process.hooks), process=process, interval=interval,
                            resources=limits)
        old_env = replacing.env if replacing is not None and replacing.imported else None
        imported = _loader.import_plugin(env, replacing=old_env)
        sink = self.push_sink
        push = MetricPush(lambda metrics: sink(key, metrics) if sink else None, interval)
        try:
            try:
                obj = _loader.instantiate(imported.target, config, push)
            except Exception as exc:
                raise PluginLoadError(
                    f"{env.key}: constructing {env.entry_point.value} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            hooks = check_plugin(self.pm, obj, key)
        except BaseException:
            push.close()
            _loader.abort(imported)
            raise
        return Instance(key, env, isolation, config, obj, hooks, imported=imported,
                        interval=interval, push=push, resources=limits)

    def _swap(self, key: str, old: Instance | None, new: Instance) -> None:
        """Register ``new`` under ``key`` in place of ``old``, then unload ``old``."""
        with self.lock:
            if old is not None:
                self.pm.unregister(name=key)
            try:
                self.pm.register(new.obj, name=key)
            except Exception as exc:
                if old is not None:
                    self.pm.register(old.obj, name=key)
                error: Exception | None = exc
            else:
                error = None
                self.by_key[key] = new
                self.stats[key] = CallStats()
        if error is not None:
            self._discard(new, restore=True)
            reason = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
            raise PluginLoadError(f"{new.env.key}: cannot be registered as {key!r}: {reason}") \
                from error
        if new.imported is not None:
            _loader.commit(new.imported)
        if old is not None:
            self._discard(old)

    @staticmethod
    def _discard(loaded: Instance, *, restore: bool = False) -> None:
        if loaded.push is not None:
            loaded.push.close()
        if loaded.imported is not None:
            if restore:
                _loader.abort(loaded.imported)
            else:
                _loader.release(loaded.imported)
        if loaded.process is not None:
            loaded.process.stop()


def _top_package(env: Environment) -> str:
    """The logger whose records are an in-process plugin's own: its entry point's top-level
    package (``acme_disk.plugin:Plugin`` → ``acme_disk``)."""
    return env.entry_point.module.split(".")[0]


def _check_kind(env: Environment, mode: Isolation) -> None:
    """An exec plugin runs only as ``exec``, a Python plugin never does."""
    command = env.manifest.exec
    if command and mode is not Isolation.EXEC:
        raise PluginLoadError(
            f"{env.key} is an exec plugin (its manifest names the executable {command!r}): "
            f"it runs as its own process with isolation 'exec', not {str(mode)!r}; "
            "leave the isolation to the manifest"
        )
    if not command and mode is Isolation.EXEC:
        raise PluginLoadError(
            f"{env.key} is a Python plugin: load it 'inline' or 'process'; isolation "
            "'exec' is for plugins whose manifest names an executable ('exec' key)"
        )


def _executable(env: Environment) -> Path:
    """``<env>/bin/<exec>``, checked: it exists and may be executed."""
    command = env.manifest.exec or ""
    path = env.path / "bin" / command
    if not path.is_file():
        raise PluginLoadError(
            f"{env.key}: its manifest names the executable {command!r}, but the wheel did "
            f"not install {path}; ship it in the wheel's <dist>.data/scripts/ or as a "
            "console script"
        )
    if not os.access(path, os.X_OK):
        raise PluginLoadError(
            f"{env.key}: {path} is not executable; give the file in the wheel's "
            "<dist>.data/scripts/ the executable mode (0755)"
        )
    return path
