"""The plugin host: install, hot-load, call, supervise and unload plugins.

:class:`PluginHost` is what the agent runs and what an application embeds. It owns:

* an :class:`~arcade_core._environment.EnvironmentStore` under ``<home>/envs`` (one
  immutable environment per ``name@version``);
* one pluggy ``PluginManager`` (built by :func:`make_plugin_manager`) whose hook executor
  is replaced by Arcade's isolating one (:mod:`arcade_core._hookcaller`), so
  ``host.hook.collect()`` is plain pluggy speed while one plugin's exception never stops
  the others;
* the loaded plugins, each registered under a *key* (the plugin name by default; a job
  may load one plugin under several keys with different configs). In-process plugins
  are imported by :mod:`arcade_core._loader`; process plugins run in supervised children
  (:mod:`arcade_core._process`) and are represented by a proxy (:mod:`arcade_core._proxy`)
  registered in the same manager;
* its events and listeners (:mod:`arcade_core._events`); what it reports is in
  :mod:`arcade_core._status`.

Loading is *make the new one first, then swap*: an upgrade, a config change or an
isolation change builds the new instance (or starts the new child) while the old one
keeps serving; only if that worked is the old one unregistered and unloaded. A failure
leaves the old one running and raises :class:`~arcade_core.PluginLoadError` with the reason.

Thread safety: management calls (load/unload/reconfigure/uninstall/close) are serialized
by one lock; hook calls take no lock at all, and no lock is held while plugin code runs.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pluggy

from . import _loader, hookspecs
from ._environment import Environment, EnvironmentStore
from ._events import HostEvents
from ._exceptions import (
    HostClosed,
    InvalidCall,
    InvalidConfig,
    PluginInUse,
    PluginLoadError,
    PluginNotFound,
)
from ._hookcaller import CallStats, call_isolated, check_plugin, make_hookexec
from ._hostlib import ensure_host_lib
from ._markers import PROJECT_NAME
from ._pool import WorkerPool
from ._process import ProcessPlugin
from ._proxy import make_proxy
from ._spec import normalize_name
from ._status import HookOutcome, PluginStatus
from ._types import Event
from .states import Isolation, PluginState

__all__ = ["ENV_ALLOW", "HookOutcome", "PluginHost", "PluginStatus", "make_plugin_manager"]

logger = logging.getLogger("arcade.host")

#: Environment variable holding the comma-separated names of the plugins that may load.
ENV_ALLOW = "ARCADE_PLUGINS"


def make_plugin_manager() -> pluggy.PluginManager:
    """A PluginManager for Arcade's hooks (``collect``, ``before``, ``after``, ``notify``).

    Built on demand, never at import time, so that embedding applications and tests get
    managers of their own.
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


@dataclass(eq=False)
class _Loaded:
    key: str
    env: Environment
    isolation: Isolation
    config: dict[str, Any]
    obj: object  # what is registered in the PluginManager
    hooks: list[str]
    imported: _loader.ImportedPlugin | None = None
    process: ProcessPlugin | None = None


def _allowed_names(allow: Iterable[str] | None) -> frozenset[str] | None:
    if allow is None:
        raw = os.environ.get(ENV_ALLOW)
        if raw is None:
            return None
        allow = raw.split(",")
    return frozenset(normalize_name(name.strip()) for name in allow if name.strip())


class PluginHost:
    """Install plugin wheels into environments, load them, call them, supervise them.

    ``home`` holds ``envs/`` (the environments) and ``host-lib/`` (what process plugins
    see of the host). ``call_timeout`` bounds :meth:`call` and every process-plugin call;
    ``max_restarts``, ``healthy_period`` and ``restart_backoff`` drive the supervision of
    process plugins; ``start_timeout`` bounds a child's start. ``allow`` names the only
    plugins that may load (default: ``$ARCADE_PLUGINS``, comma-separated; unset = all).
    ``check_config_schemas=False`` trusts that plugin manifests and configs were checked
    against their JSON Schemas elsewhere (defaults are still applied): the Arcade agent's
    host, whose server checks every schema at publish and every config when it is
    assigned; it keeps jsonschema (~4 MB resident) out of the agent.

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
    ) -> None:
        if call_timeout <= 0 or start_timeout <= 0:
            raise InvalidCall("call_timeout and start_timeout must be positive seconds")
        if max_restarts < 0 or restart_backoff < 0 or healthy_period < 0:
            raise InvalidCall("max_restarts, restart_backoff and healthy_period must be >= 0")
        self.home = Path(home).absolute()
        self.home.mkdir(parents=True, exist_ok=True)
        self.call_timeout = call_timeout
        self.start_timeout = start_timeout
        self.max_restarts = max_restarts
        self.healthy_period = healthy_period
        self.restart_backoff = restart_backoff
        self.allow = _allowed_names(allow)
        self.check_config_schemas = check_config_schemas
        self.store = EnvironmentStore(self.home / "envs", check_schemas=check_config_schemas)
        self._stats: dict[str, CallStats] = {}
        self.pm = make_plugin_manager()
        self.pm._inner_hookexec = make_hookexec(self._stats)
        self._manage = threading.RLock()  # serializes load/unload/reconfigure/close
        self._lock = threading.Lock()  # guards _loaded for short reads/writes
        self._loaded: dict[str, _Loaded] = {}
        self._pool = WorkerPool()
        self._host_lib: Path | None = None
        self._closed = False
        self._events = HostEvents(after_delivery=self._tell_notify_plugins)

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
        with self._manage:
            envs = self.store.find(plugin, version)
            paths = {e.path for e in envs}
            with self._lock:
                in_use = sorted(f"{item.key} ({item.env.key})" for item in self._loaded.values()
                                if item.env.path in paths)
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
    ) -> PluginStatus:
        """Load an installed plugin and register it under ``key`` (default: its name).

        ``version`` ``None`` takes the newest installed one; ``config`` is validated
        against the manifest's schema with its defaults applied (:class:`InvalidConfig`);
        ``isolation`` ``None`` takes the manifest's default. If ``key`` is loaded already
        this is an upgrade/config/isolation change: the new one is made first and the old
        one unloaded only if that worked. The same version, config and isolation is a
        no-op (unless the plugin has ``failed``: then it is started afresh).
        """
        self._check_open()
        plugin = normalize_name(name)
        if self.allow is not None and plugin not in self.allow:
            allowed = ", ".join(sorted(self.allow)) or "none"
            raise PluginLoadError(
                f"plugin {plugin!r} is not allowed to load here (allowed: {allowed}; set "
                f"by {ENV_ALLOW} or PluginHost(allow=...))"
            )
        env = self.store.get(plugin, version)
        return self._load_env(key or plugin, env, config, isolation)

    def reconfigure(self, key: str, config: Mapping[str, Any]) -> PluginStatus:
        """Apply a new config to a loaded plugin without reinstalling anything.

        A new instance (or child) is built with the new config first; if that fails the
        old one keeps running and the error is raised.
        """
        loaded = self._get(key)
        return self._load_env(key, loaded.env, config, loaded.isolation)

    def _load_env(
        self,
        key: str,
        env: Environment,
        config: Mapping[str, Any] | None,
        isolation: Isolation | str | None,
    ) -> PluginStatus:
        if not isinstance(key, str) or not key.strip():
            raise PluginLoadError(f"a plugin key must be a non-empty string, not {key!r}")
        effective = env.manifest.validate_config(config, check=self.check_config_schemas)
        wanted = isolation or env.manifest.isolation or Isolation.INLINE
        if wanted not in tuple(Isolation):
            raise InvalidConfig(
                f"isolation {wanted!r} is not supported; use one of {', '.join(Isolation)}"
            )
        mode = Isolation(wanted)
        with self._manage:
            self._check_open()
            with self._lock:
                old = self._loaded.get(key)
            if (
                old is not None
                and old.env.path == env.path
                and old.config == effective
                and old.isolation == mode
                and (old.process is None or old.process.state is not PluginState.FAILED)
            ):
                return self._status(old)
            new = self._make(key, env, effective, mode, replacing=old)
            self._swap(key, old, new)
        data: dict[str, Any] = {"key": key, "name": env.name, "version": env.version,
                                "isolation": mode}
        if old is not None:
            data["previous_version"] = old.env.version
        self._events.dispatch(Event("plugin.loaded", data))
        return self._status(new)

    def _make(
        self,
        key: str,
        env: Environment,
        config: dict[str, Any],
        isolation: Isolation,
        *,
        replacing: _Loaded | None,
    ) -> _Loaded:
        """Import and construct (or start) a new instance; nothing registered yet."""
        if isolation is Isolation.PROCESS:
            process = ProcessPlugin(
                env, key, config,
                host_lib=self._ensure_host_lib(),
                call_timeout=self.call_timeout,
                start_timeout=self.start_timeout,
                max_restarts=self.max_restarts,
                healthy_period=self.healthy_period,
                restart_backoff=self.restart_backoff,
                on_event=self._events.post,
            )
            process.start()
            return _Loaded(key, env, isolation, config, make_proxy(process),
                           list(process.hooks), process=process)
        old_env = replacing.env if replacing is not None and replacing.imported else None
        imported = _loader.import_plugin(env, replacing=old_env)
        try:
            try:
                obj = _loader.instantiate(imported.target, config)
            except Exception as exc:
                raise PluginLoadError(
                    f"{env.key}: constructing {env.entry_point.value} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            hooks = check_plugin(self.pm, obj, key)
        except BaseException:
            _loader.abort(imported)
            raise
        return _Loaded(key, env, isolation, config, obj, hooks, imported=imported)

    def _swap(self, key: str, old: _Loaded | None, new: _Loaded) -> None:
        """Register ``new`` under ``key`` in place of ``old``, then unload ``old``."""
        with self._lock:
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
                self._loaded[key] = new
                self._stats[key] = CallStats()
        if error is not None:
            self._discard(new, restore=True)
            reason = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
            raise PluginLoadError(f"{new.env.key}: cannot be registered as {key!r}: {reason}") \
                from error
        if new.imported is not None:
            _loader.commit(new.imported)
        if old is not None:
            self._discard(old)

    def _discard(self, loaded: _Loaded, *, restore: bool = False) -> None:
        if loaded.imported is not None:
            if restore:
                _loader.abort(loaded.imported)
            else:
                _loader.release(loaded.imported)
        if loaded.process is not None:
            loaded.process.stop()

    def unload(self, key: str) -> None:
        """Unregister ``key`` and really unload it.

        In-process: its environment leaves ``sys.path`` and its modules leave
        ``sys.modules`` (once no other key uses that version). Process: the child is
        stopped, gracefully first.
        """
        with self._manage:
            with self._lock:
                loaded = self._loaded.pop(key, None)
                if loaded is None:
                    raise PluginNotFound(f"no plugin is loaded as {key!r}")
                self.pm.unregister(name=key)
                self._stats.pop(key, None)
            self._discard(loaded)
        self._events.dispatch(Event("plugin.unloaded", {
            "key": key, "name": loaded.env.name, "version": loaded.env.version,
            "isolation": loaded.isolation,
        }))

    def close(self) -> None:
        """Unload every plugin and stop every child. Idempotent."""
        with self._manage:
            if self._closed:
                return
            self._closed = True
            with self._lock:
                keys = list(self._loaded)
            for key in keys:
                try:
                    self.unload(key)
                except Exception:
                    logger.exception("unloading %s while closing the host failed", key)
            self._events.close(timeout=self.call_timeout)
            self._pool.shutdown()

    # -- status ----------------------------------------------------------------------------

    def plugins(self) -> list[PluginStatus]:
        """The status of every loaded plugin, by key."""
        with self._lock:
            loaded = sorted(self._loaded.values(), key=lambda item: item.key)
        return [self._status(item) for item in loaded]

    def status(self, key: str) -> PluginStatus:
        """The status of the plugin loaded as ``key``."""
        return self._status(self._get(key))

    def _get(self, key: str) -> _Loaded:
        with self._lock:
            loaded = self._loaded.get(key)
        if loaded is None:
            raise PluginNotFound(f"no plugin is loaded as {key!r}")
        return loaded

    def _status(self, loaded: _Loaded) -> PluginStatus:
        st = self._stats.get(loaded.key) or CallStats()
        process = loaded.process
        if process is not None:
            state = process.state
            restarts = process.restarts
            if state in (PluginState.FAILED, PluginState.RESTARTING):
                last_error = process.last_error or st.last_error
            else:
                last_error = st.last_error or process.last_error
            pid = process.pid
            malformed = process.malformed
            hooks = list(process.hooks)
        else:
            state, restarts, last_error = PluginState.RUNNING, 0, st.last_error
            pid, malformed = None, 0
            hooks = list(loaded.hooks)
        return PluginStatus(
            key=loaded.key, name=loaded.env.name, version=loaded.env.version,
            isolation=loaded.isolation, state=state, restarts=restarts,
            last_error=last_error, calls=st.calls, errors=st.errors,
            mean_latency_ms=st.mean_latency_ms, pid=pid, config=dict(loaded.config),
            hooks=hooks, malformed=malformed,
        )

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
        caller = getattr(self.pm.hook, hook, None)
        if caller is None or not caller.has_spec():
            raise InvalidCall(
                f"unknown hook {hook!r}; Arcade's hooks are {', '.join(hookspecs.HOOK_NAMES)}"
            )
        spec = caller.spec
        assert spec is not None
        missing = [a for a in spec.argnames if a not in kwargs]
        unknown = [a for a in kwargs if a not in spec.argnames and a not in spec.kwargnames]
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"missing {', '.join(missing)}")
            if unknown:
                problems.append(f"unexpected {', '.join(unknown)}")
            raise InvalidCall(
                f"{hook}() takes ({', '.join(spec.argnames)}): {'; '.join(problems)}"
            )
        limit = self.call_timeout if timeout is None else timeout
        if limit <= 0:
            raise InvalidCall(f"timeout must be positive seconds, not {limit!r}")
        impls = caller.get_hookimpls()
        if keys is None:
            targets = [(impl.plugin_name, impl) for impl in reversed(impls)]
            absent: list[str] = []
        else:
            by_name = {impl.plugin_name: impl for impl in impls}
            with self._lock:
                absent = [k for k in keys if k not in self._loaded]
            targets = [(k, by_name.get(k)) for k in keys if k not in absent]
        results, errors = call_isolated(hook, targets, kwargs, limit, self._stats, self._pool)
        if absent:
            # A key unloaded between the caller's look and this call is reported, not raised.
            errors.update((k, f"PluginNotFound: no plugin is loaded as {k!r}") for k in absent)
            assert keys is not None
            errors = {k: errors[k] for k in keys if k in errors}
        return HookOutcome(results, errors)

    def emit(self, event: Event) -> HookOutcome:
        """Send ``event`` to every plugin implementing ``notify`` (isolated, bounded)."""
        return self.call("notify", event=event)

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
        if event.kind != "plugin.failed" or self._closed:
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

    def _check_open(self) -> None:
        if self._closed:
            raise HostClosed("this PluginHost is closed")

    def _ensure_host_lib(self) -> Path:
        if self._host_lib is None:
            self._host_lib = ensure_host_lib(self.home)
        return self._host_lib
