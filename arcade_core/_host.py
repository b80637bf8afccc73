"""The plugin host: install, hot-load, call, supervise and unload plugins.

:class:`PluginHost` is what the agent runs and what an application embeds. It owns:

* an :class:`~arcade_core._store.EnvironmentStore` under ``<home>/envs`` (one immutable
  environment per ``name@version``);
* one pluggy ``PluginManager`` (built by :func:`~arcade_core._manager.make_plugin_manager`)
  whose hook executor is replaced by Arcade's isolating one (:mod:`arcade_core._hookcaller`),
  so ``host.hook.collect()`` is plain pluggy speed while one plugin's exception never stops
  the others;
* the loaded plugins (:mod:`arcade_core._instances`), each registered under a *key* (the
  plugin name by default; a job may load one plugin under several keys with different
  configs), loaded *make the new one first, then swap*; in-process plugins are imported by
  :mod:`arcade_core._loader`, process plugins run in supervised children
  (:mod:`arcade_core._process`) behind a proxy (:mod:`arcade_core._proxy`) in the same
  manager;
* its allow-list (:mod:`arcade_core._allowlist`), its events and listeners
  (:mod:`arcade_core._events`); what it reports is in :mod:`arcade_core._status`.

Thread safety: management calls (load/unload/reconfigure/uninstall/close) are serialized
by one lock; hook calls take no lock at all, and no lock is held while plugin code runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pluggy

from ._allowlist import allowed_names, check_allowed
from ._environment import Environment
from ._events import HostEvents
from ._exceptions import InvalidCall, PluginInUse
from ._hookcaller import CallStats, call_isolated, check_arguments, make_hookexec
from ._instances import Instances
from ._logs import LogLine, PluginLogs
from ._manager import make_plugin_manager
from ._pool import WorkerPool
from ._sinks import MetricSink, MetricSinks
from ._spec import normalize_name
from ._status import HookOutcome, PluginStatus
from ._store import EnvironmentStore
from ._supervisors import Supervisors
from ._types import Event
from .resources import parse_resources
from .states import Isolation

__all__ = ["PluginHost"]

logger = logging.getLogger("arcade.host")


class PluginHost:
    """Install plugin wheels into environments, load them, call them, supervise them.

    ``home`` holds ``envs/`` (the environments) and ``host-lib/`` (what process plugins
    see of the host). ``call_timeout`` bounds :meth:`call` and every process-plugin call;
    ``max_restarts``, ``healthy_period`` and ``restart_backoff`` drive the supervision of
    process plugins; ``start_timeout`` bounds a child's start. ``allow`` names the only
    plugins that may load (default: ``$ARCADE_PLUGINS``, comma-separated; unset = all).
    ``default_interval`` is the interval (seconds) of a plugin whose load and manifest name
    none, ``interval_override`` (> 0) every plugin's whatever they name; ``hang_timeout`` the
    silence after which a process or exec child is killed as hung (a crash);
    ``default_resources`` the limits of a process or exec plugin whose
    manifest and load name none (``{"memory": "1Gi"}``, so no plugin grows unbounded;
    :mod:`arcade_core.resources`). ``check_config_schemas=False`` trusts that plugin
    manifests and configs were checked against their JSON Schemas elsewhere (defaults are
    still applied): the Arcade agent's host, whose server checks every schema at publish and
    every config when it is assigned; it keeps jsonschema (~4 MB resident) out of the agent.

    Use it as a context manager, or call :meth:`close`: no child process outlives it.
    """

    def __init__(
        self,
        home: str | os.PathLike[str],
        *,
        call_timeout: float = 30.0,
        max_restarts: int = 3,
        healthy_period: float = 300.0,
        restart_backoff: float = 0.5,
        allow: Iterable[str] | None = None,
        start_timeout: float = 30.0,
        check_config_schemas: bool = True,
        default_interval: float = 60.0,
        hang_timeout: float = 30.0,
        default_resources: Mapping[str, Any] | None = None,
        interval_override: float = 0.0,
    ) -> None:
        if call_timeout <= 0 or start_timeout <= 0:
            raise InvalidCall("call_timeout and start_timeout must be positive seconds")
        if default_interval <= 0 or hang_timeout <= 0 or interval_override < 0:
            raise InvalidCall("default_interval and hang_timeout must be positive seconds, "
                              "interval_override >= 0")
        if max_restarts < 0 or restart_backoff < 0 or healthy_period < 0:
            raise InvalidCall("max_restarts, restart_backoff and healthy_period must be >= 0")
        self.home = Path(home).absolute()
        self.home.mkdir(parents=True, exist_ok=True)
        self.call_timeout = call_timeout
        self.start_timeout = start_timeout
        self.max_restarts = max_restarts
        self.healthy_period = healthy_period
        self.restart_backoff = restart_backoff
        self.default_interval = default_interval
        self.hang_timeout = hang_timeout
        self.interval_override = interval_override
        self._sinks = MetricSinks()
        self.allow = allowed_names(allow)
        self.check_config_schemas = check_config_schemas
        self.store = EnvironmentStore(self.home / "envs", check_schemas=check_config_schemas)
        self._stats: dict[str, CallStats] = {}
        self._logs = PluginLogs()
        self.pm = make_plugin_manager()
        self.pm._inner_hookexec = make_hookexec(self._stats, self._hook_failed)
        self._pool = WorkerPool()
        self._events = HostEvents(after_delivery=self._tell_notify_plugins)
        self._supervisors = Supervisors(self, self._logs, self._events, self._sinks)
        self._instances = Instances(self.pm, self._stats, self._events, self._supervisors.new,
                                    check_schemas=check_config_schemas, logs=self._logs,
                                    default_interval=default_interval,
                                    default_limits=parse_resources(default_resources,
                                                                   override=True),
                                    push_sink=self._sinks.deliver)
        # The table's own lock and dict, read by call() directly: no extra step per call.
        self._lock = self._instances.lock
        self._loaded = self._instances.by_key

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> PluginHost:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PluginHost {str(self.home)!r} plugins={sorted(self._loaded)}>"

    # -- environments ----------------------------------------------------------------------

    @property
    def hook(self) -> pluggy.HookRelay:
        """``host.hook.collect()`` calls every loaded plugin, in-process and isolated alike.

        The fast path: each plugin's exception is caught and recorded, its result left
        out; calls are not bounded by a timeout (use :meth:`call` for that).
        """
        return self.pm.hook

    def install(
        self,
        wheels: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        expected_sha256: Mapping[str, str] | None = None,
    ) -> Environment:
        """Build the environment for a plugin wheel plus its dependency wheels.

        Offline and hash-checked; a no-op when that version is already installed.
        """
        if isinstance(wheels, str | os.PathLike):
            wheels = [wheels]
        return self.store.install(wheels, expected_sha256=expected_sha256)

    def installed(self) -> list[Environment]:
        """Every installed environment."""
        return self.store.list()

    def uninstall(self, name: str, version: str | None = None) -> None:
        """Delete ``name``'s environment for ``version`` (every version when ``None``).

        Refused while any key runs that environment: unload it first.
        """
        plugin = normalize_name(name)
        with self._instances.manage:
            envs = self.store.find(plugin, version)
            in_use = self._instances.in_use({e.path for e in envs})
            if in_use:
                raise PluginInUse(
                    f"cannot uninstall {plugin}{'@' + version if version else ''}: it is "
                    f"loaded as {', '.join(in_use)}; unload it first"
                )
            for env in envs:
                self.store.remove(env)

    # -- loading ---------------------------------------------------------------------------

    def load(
        self,
        name: str,
        version: str | None = None,
        config: Mapping[str, Any] | None = None,
        isolation: Isolation | str | None = None,
        *,
        key: str | None = None,
        interval: float | None = None,
        resources: Mapping[str, Any] | None = None,
    ) -> PluginStatus:
        """Load an installed plugin and register it under ``key`` (default: its name).

        ``version`` ``None`` takes the newest installed one; ``config`` is validated
        against the manifest's schema with its defaults applied (:class:`InvalidConfig`);
        ``isolation`` ``None`` takes the manifest's (``exec`` for an exec plugin, which
        runs no other way). ``interval`` (seconds; ``None``: the manifest's, else
        ``default_interval``) reaches an exec plugin in its ``config`` message, a Python
        plugin on its push handle. If ``key`` is loaded already, the new one is made first
        and the old one unloaded only if that worked — but a running process or exec child
        takes a new config or interval without a restart. The same version, config,
        isolation and interval is a no-op (unless it has ``failed``: then it starts afresh).

        ``resources`` overrides the manifest's limits key by key (``{"memory": "256Mi"}``;
        ``"none"`` lifts one; :mod:`arcade_core.resources`); they are enforced for process
        and exec plugins (the status' ``limits`` says how), not for in-process ones.
        """
        self._instances.check_open()
        _check_interval(interval)
        plugin = normalize_name(name)
        check_allowed(plugin, self.allow)
        env = self.store.get(plugin, version)
        return self._instances.load(key or plugin, env, config, isolation,
                                    self.interval_override or interval,
                                    resources)

    def reconfigure(self, key: str, config: Mapping[str, Any], *,
                    interval: float | None = None) -> PluginStatus:
        """Apply a new config and interval (``None``: the manifest's, else the host's) to a
        loaded plugin: a process or exec child gets a ``config`` message and keeps running,
        an in-process plugin is constructed anew first. If that fails the old one keeps
        running (with its old config) and the error is raised."""
        _check_interval(interval)
        loaded = self._instances.get(key)
        return self._instances.load(key, loaded.env, config, loaded.isolation,
                                    self.interval_override or interval,
                                    loaded.override)

    def unload(self, key: str) -> None:
        """Unregister ``key`` and really unload it.

        In-process: its environment leaves ``sys.path`` and its modules leave
        ``sys.modules`` (once no other key uses that version). Process: the child is
        stopped, gracefully first.
        """
        self._instances.unload(key)

    def close(self) -> None:
        """Unload every plugin and stop every child. Idempotent."""
        with self._instances.manage:
            if self._instances.closed:
                return
            self._instances.closed = True
            keys = self._instances.keys()
            for key in keys:
                try:
                    self.unload(key)
                except Exception:
                    logger.exception("unloading %s while closing the host failed", key)
            self._events.close(timeout=self.call_timeout)
            self._pool.shutdown()
            self._logs.close()

    # -- status ----------------------------------------------------------------------------

    def plugins(self) -> list[PluginStatus]:
        """The status of every loaded plugin, by key."""
        return self._instances.statuses()

    def status(self, key: str) -> PluginStatus:
        """The status of the plugin loaded as ``key``."""
        return self._instances.status(self._instances.get(key))

    def logs(self, key: str, *, after: int = 0, limit: int = 500) -> tuple[list[LogLine], int]:
        """The last lines ``key`` logged: ``(lines, last_seq)``, the newest ``limit`` lines
        with a sequence number above ``after``, oldest first (see
        :mod:`arcade_core._logs`: a process child's stderr, an in-process plugin's own log
        records, and the host's word on its failed calls, crashes and loads). Kept after
        an unload; :class:`~arcade_core.PluginNotFound` when ``key`` never logged here."""
        return self._logs.read(key, after, limit)

    # -- calling ---------------------------------------------------------------------------

    def call(
        self,
        hook: str,
        *,
        keys: Sequence[str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> HookOutcome:
        """Call ``hook`` on the selected plugins, each isolated and bounded by a timeout.

        ``keys`` ``None`` selects every plugin implementing the hook (in pluggy's call
        order); otherwise the given keys in that order — a loaded key that does not
        implement the hook gets ``None``, a key that is not loaded (say, unloaded by
        another thread a moment ago) gets a ``PluginNotFound`` error. In-process plugins
        run on worker threads and are abandoned after ``timeout`` (default
        ``call_timeout``); such a plugin is not called again while that call still runs.
        Process plugins time out in their proxy, which kills the child (counted as a
        crash). Plugins are called one after another, each with the full timeout.
        """
        caller = check_arguments(self.pm, hook, kwargs)
        limit = self.call_timeout if timeout is None else timeout
        if limit <= 0:
            raise InvalidCall(f"timeout must be positive seconds, not {limit!r}")
        impls = caller.get_hookimpls()
        if keys is None:
            targets: list[tuple[str, pluggy.HookImpl | None]] = [
                (impl.plugin_name, impl) for impl in reversed(impls)]
            absent: list[str] = []
        else:
            by_name = {impl.plugin_name: impl for impl in impls}
            with self._lock:
                absent = [k for k in keys if k not in self._loaded]
            targets = [(k, by_name.get(k)) for k in keys if k not in absent]
        results, errors = call_isolated(hook, targets, kwargs, limit, self._stats, self._pool,
                                        self._hook_failed)
        if absent:
            # A key unloaded between the caller's look and this call is reported, not raised.
            errors.update((k, f"PluginNotFound: no plugin is loaded as {k!r}") for k in absent)
            assert keys is not None
            errors = {k: errors[k] for k in keys if k in errors}
        return HookOutcome(results, errors)

    def emit(self, event: Event) -> HookOutcome:
        """Send ``event`` to every plugin implementing ``notify`` (isolated, bounded)."""
        return self.call("notify", event=event)

    def add_metric_sink(self, sink: MetricSink) -> None:
        """Hear pushed metrics: ``sink(key, metrics)`` for each batch a plugin pushes (an
        exec plugin's ``metric`` lines, a Python plugin's ``metrics.push``). Called on the
        pushing thread: return quickly (see :mod:`arcade_core._sinks`)."""
        self._sinks.add(sink)

    def remove_metric_sink(self, sink: MetricSink) -> None:
        """Stop handing pushed metrics to ``sink`` (no error if it was not added)."""
        self._sinks.remove(sink)

    # -- events ----------------------------------------------------------------------------

    def add_listener(self, fn: Callable[[Event], None]) -> None:
        """Hear host events: ``plugin.loaded``, ``plugin.unloaded``, ``plugin.crashed``,
        ``plugin.restarted``, ``plugin.failed``. A listener's exception is logged only."""
        self._events.add_listener(fn)

    def remove_listener(self, fn: Callable[[Event], None]) -> None:
        """Stop telling ``fn`` about host events (no error if it was not listening)."""
        self._events.remove_listener(fn)

    def _tell_notify_plugins(self, event: Event) -> None:
        """After a supervisor event: ``notify`` plugins (but the failed one) hear of a
        ``plugin.failed``."""
        if event.kind != "plugin.failed" or self._instances.closed:
            return
        failed_key = event.data.get("key")
        with self._lock:
            loaded = set(self._loaded)
        keys = [impl.plugin_name
                for impl in reversed(self.pm.hook.notify.get_hookimpls())
                if impl.plugin_name != failed_key and impl.plugin_name in loaded]
        if keys:
            self.call("notify", keys=keys, event=event)

    # -- internals -------------------------------------------------------------------------

    def _hook_failed(self, key: str, hook: str, error: str) -> None:
        self._logs.add(key, "ERROR", f"{hook}() failed: {error}")


def _check_interval(interval: float | None) -> None:
    if interval is not None and (isinstance(interval, bool) or not interval >= 0):
        raise InvalidCall(f"interval must be seconds >= 0 (0 or None: the manifest's), "
                          f"not {interval!r}")
