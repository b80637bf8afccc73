"""Isolated hook execution: one plugin's failure never stops the others.

Two paths, sharing the per-plugin :class:`CallStats`:

* The fast path, ``host.hook.<name>(...)``: :func:`make_hookexec` builds the function the
  host installs as the PluginManager's ``_inner_hookexec`` (the seam pluggy's own tracing
  uses). It replaces pluggy's ``_multicall`` rather than wrapping it, so isolation and
  accounting add no extra layer of Python per call. It calls each implementation in its
  own ``try``, records calls, errors and latency, and returns the other plugins' results.
  It cannot bound a hanging in-process plugin (that would cost a thread hand-off per call).
* The bounded path, ``host.call(...)`` (:func:`call_isolated`): in-process
  implementations run on :class:`~arcade_core._pool.WorkerPool` threads and are abandoned
  after their timeout; a plugin whose abandoned call is still running is *stuck* and is not called
  again (by either path) until that call returns. Process plugins
  (:class:`RemotePlugin`) get the timeout passed through to their proxy, which kills the
  child when it expires.

Arcade's hooks are plain calls: :func:`check_plugin` refuses wrapper implementations
and implementations of hooks Arcade does not define, before anything is registered.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import pluggy
from pluggy import HookCallError

from . import hookspecs
from ._exceptions import InvalidCall, PluginLoadError

if TYPE_CHECKING:  # a plugin's child process imports this module, but never the pool
    from ._pool import Pending, WorkerPool

__all__ = [
    "CallStats",
    "HookExec",
    "OnFailure",
    "RemotePlugin",
    "call_isolated",
    "check_arguments",
    "check_plugin",
    "describe_error",
    "make_hookexec",
]

logger = logging.getLogger("arcade.hooks")


class HookExec(Protocol):
    """The signature pluggy calls as ``PluginManager._inner_hookexec``."""

    def __call__(
        self,
        hook_name: str,
        hook_impls: Sequence[pluggy.HookImpl],
        caller_kwargs: Mapping[str, object],
        firstresult: bool,
    ) -> object: ...


class CallStats:
    """Counters for one registered plugin (keyed by its registration name).

    Updated without a lock from whichever thread calls the plugin: under heavy concurrent
    calls of the *same* plugin an increment may rarely be lost, which is the price of
    keeping the hook path free of locks.
    """

    __slots__ = ("calls", "elapsed", "error_at", "errors", "in_a_row", "last_error",
                 "stuck_since")

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.in_a_row = 0  # failed calls since the last one that succeeded
        self.elapsed = 0.0  # seconds spent in completed calls
        self.last_error = ""
        self.error_at = 0.0  # wall-clock time of the last failure; 0.0 = none
        self.stuck_since = 0.0  # monotonic time an abandoned call started; 0.0 = not stuck

    @property
    def mean_latency_ms(self) -> float:
        return self.elapsed / self.calls * 1000.0 if self.calls else 0.0

    def fail(self, error: str) -> None:
        """Record one failed call (raised, timed out, crashed, skipped while stuck)."""
        self.calls += 1
        self.errors += 1
        self.in_a_row += 1
        self.last_error = error
        self.error_at = time.time()

    def succeed(self) -> None:
        """Record one call that returned (the fast path inlines this)."""
        self.calls += 1
        self.in_a_row = 0


class RemotePlugin(abc.ABC):
    """Base for objects that forward hook calls elsewhere (the process proxy).

    :func:`call_isolated` calls :meth:`invoke` directly with the caller's timeout instead
    of the hook method, which would use the default one.
    """

    __slots__ = ()

    @abc.abstractmethod
    def invoke(self, hook: str, kwargs: Mapping[str, Any], timeout: float | None = None) -> Any:
        """Run ``hook`` with ``kwargs`` wherever the plugin lives, bounded by ``timeout``."""


def describe_error(exc: BaseException) -> str:
    """The one-line error text recorded for a failed call: ``Type: message``."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


#: Hears each failed call: ``(registration name, hook, error text)`` (the host keeps it in
#: the plugin's log ring).
OnFailure = Callable[[str, str, str], None]


def make_hookexec(stats: dict[str, CallStats], on_failure: OnFailure | None = None
                  ) -> HookExec:
    """Return an ``_inner_hookexec`` that isolates and accounts each implementation.

    ``stats`` maps registration names to their counters; a plugin registered on the
    manager by other means gets counters on its first call. Results follow pluggy's
    semantics (``None`` results are dropped; ``firstresult`` stops at the first one).
    ``on_failure`` hears every failed call (off the fast path: only when one fails).
    """
    perf = time.perf_counter

    def log_failure(plugin: str, hook: str, exc: BaseException) -> None:
        _log_failure(plugin, hook, exc, on_failure)

    def arcade_hookexec(
        hook_name: str,
        hook_impls: Sequence[pluggy.HookImpl],
        caller_kwargs: Mapping[str, object],
        firstresult: bool,
    ) -> Any:
        results: list[object] = []
        for impl in reversed(hook_impls):
            st = stats.get(impl.plugin_name)
            if st is None:
                st = stats.setdefault(impl.plugin_name, CallStats())
            if st.stuck_since:
                st.fail(f"skipped: a previous call has been running for "
                        f"{time.monotonic() - st.stuck_since:.1f}s")
                continue
            try:  # a missing argument is the caller's mistake, not the plugin's
                args = [caller_kwargs[a] for a in impl.argnames] if impl.argnames else ()
            except KeyError as exc:
                raise HookCallError(f"hook call must provide argument {exc.args[0]!r}") \
                    from None
            start = perf()
            try:
                if impl.kwargnames:
                    res = impl.function(*args, **{
                        a: caller_kwargs[a] for a in impl.kwargnames if a in caller_kwargs
                    })
                else:
                    res = impl.function(*args)
            except (Exception, SystemExit) as exc:
                st.elapsed += perf() - start
                st.fail(describe_error(exc))
                log_failure(impl.plugin_name, hook_name, exc)
                continue
            st.elapsed += perf() - start
            st.calls += 1
            st.in_a_row = 0
            if res is not None:
                results.append(res)
                if firstresult:
                    return res
        if firstresult:
            return None
        return results

    return arcade_hookexec


def _log_failure(plugin: str, hook: str, exc: BaseException,
                 on_failure: OnFailure | None = None) -> None:
    text = describe_error(exc)
    logger.warning("plugin %s: %s() failed: %s", plugin, hook, text,
                   exc_info=exc if logger.isEnabledFor(logging.DEBUG) else None)
    if on_failure is not None:
        try:
            on_failure(plugin, hook, text)
        except Exception:  # pragma: no cover - a host bug must not break the other plugins
            logger.exception("recording the failure of %s failed", plugin)


def check_plugin(pm: pluggy.PluginManager, plugin: object, name: str) -> list[str]:
    """Return the hooks ``plugin`` implements, refusing what Arcade does not run.

    Raises :class:`~arcade_core.PluginLoadError` for a wrapper implementation
    (``wrapper=True``/``hookwrapper=True``: Arcade's hooks are plain calls) and for an
    implementation of a hook that has no specification. Nothing is registered here.
    """
    hooks: list[str] = []
    for attr in dir(plugin):
        opts = pm.parse_hookimpl_opts(plugin, attr)
        if opts is None:
            continue
        hook = opts.get("specname") or attr
        if opts.get("wrapper") or opts.get("hookwrapper"):
            raise PluginLoadError(
                f"plugin {name!r}: {attr}() is declared as a hook wrapper; Arcade's hooks are "
                "plain calls, so remove wrapper=True/hookwrapper=True"
            )
        caller = getattr(pm.hook, hook, None)
        if caller is None or not caller.has_spec():
            if opts.get("optionalhook"):
                continue
            known = ", ".join(sorted(n for n in vars(pm.hook) if not n.startswith("_")))
            raise PluginLoadError(
                f"plugin {name!r}: {attr}() implements unknown hook {hook!r}; "
                f"Arcade's hooks are: {known}"
            )
        hooks.append(hook)
    return sorted(set(hooks))


def _call_impl(impl: pluggy.HookImpl, kwargs: Mapping[str, Any]) -> Any:
    args = [kwargs[a] for a in impl.argnames]
    extra = {a: kwargs[a] for a in impl.kwargnames if a in kwargs}
    return impl.function(*args, **extra)


def call_isolated(
    hook: str,
    targets: Sequence[tuple[str, pluggy.HookImpl | None]],
    kwargs: Mapping[str, Any],
    timeout: float,
    stats: dict[str, CallStats],
    pool: WorkerPool,
    on_failure: OnFailure | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Call each target's implementation, isolated and bounded by ``timeout``.

    ``targets`` pairs a registration name with its implementation (``None``: the plugin
    does not implement the hook; its result is ``None``). Returns ``(results, errors)``
    keyed by registration name, in ``targets`` order. One after another, each call getting
    the full timeout. ``on_failure`` hears each failure, as for :func:`make_hookexec`.
    """
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}

    for name, impl in targets:
        st = stats.get(name)
        if st is None:
            st = stats.setdefault(name, CallStats())
        if impl is None:
            results[name] = None
            continue
        if st.stuck_since:
            st.fail(f"skipped: a previous {hook}() call has been running for "
                    f"{time.monotonic() - st.stuck_since:.1f}s")
            errors[name] = st.last_error
            continue
        plugin = impl.plugin
        started = time.perf_counter()
        if isinstance(plugin, RemotePlugin):
            # The proxy bounds the call itself (and kills its child on timeout).
            try:
                value = plugin.invoke(hook, kwargs, timeout)
            except (Exception, SystemExit) as exc:
                st.elapsed += time.perf_counter() - started
                st.fail(describe_error(exc))
                errors[name] = st.last_error
                _log_failure(name, hook, exc, on_failure)
                continue
            st.elapsed += time.perf_counter() - started
            st.succeed()
            results[name] = value
            continue
        pending = pool.submit(_call_impl, (impl, kwargs), _make_unstick(name, st, hook))
        _finish(name, st, pending, started, hook, timeout, results, errors, on_failure)
    return results, errors


def _finish(
    name: str,
    st: CallStats,
    pending: Pending,
    started: float,
    hook: str,
    timeout: float,
    results: dict[str, Any],
    errors: dict[str, str],
    on_failure: OnFailure | None,
) -> None:
    remaining = max(0.0, started + timeout - time.perf_counter())

    def mark_stuck() -> None:
        st.stuck_since = time.monotonic() - (time.perf_counter() - started)

    if not pending.wait(remaining, mark_stuck):
        st.fail(f"TimeoutError: {hook}() did not return within {timeout:g}s; "
                "the call was abandoned")
        errors[name] = st.last_error
        logger.warning("plugin %s: %s() timed out after %gs; not calling it again until "
                       "that call returns", name, hook, timeout)
        if on_failure is not None:
            on_failure(name, hook, st.last_error)
        return
    st.elapsed += pending.finished_at - started
    if pending.error is not None:
        st.fail(describe_error(pending.error))
        errors[name] = st.last_error
        _log_failure(name, hook, pending.error, on_failure)
    else:
        st.succeed()
        results[name] = pending.value


def _make_unstick(name: str, st: CallStats, hook: str) -> Callable[[Pending], None]:
    def unstick(pending: Pending) -> None:
        st.stuck_since = 0.0
        logger.info("plugin %s: an abandoned %s() call finally returned", name, hook)

    return unstick


def check_arguments(pm: pluggy.PluginManager, hook: str, kwargs: Mapping[str, Any]
                    ) -> pluggy.HookCaller:
    """The caller of ``hook`` once ``kwargs`` fit its spec; :class:`InvalidCall` saying
    what is unknown, missing or unexpected (:meth:`PluginHost.call
    <arcade_core.PluginHost.call>`)."""
    caller: pluggy.HookCaller | None = getattr(pm.hook, hook, None)
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
        raise InvalidCall(f"{hook}() takes ({', '.join(spec.argnames)}): {'; '.join(problems)}")
    return caller
