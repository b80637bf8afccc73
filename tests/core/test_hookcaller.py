"""Isolated hook execution: the fast executor, the bounded path and the plugin checks."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pluggy
import pytest

from arcade_core import Metric, PluginLoadError, hookimpl, hookspec
from arcade_core._hookcaller import CallStats, call_isolated, check_plugin, make_hookexec
from arcade_core._manager import make_plugin_manager
from arcade_core._pool import WorkerPool
from tests.waiting import DEADLINE, until_sync


class Good:
    def __init__(self, value: float) -> None:
        self.value = value

    @hookimpl
    def collect(self) -> list[Metric]:
        return [Metric("good", self.value, timestamp=0.0)]


class Raising:
    @hookimpl
    def collect(self) -> list[Metric]:
        raise RuntimeError("disk on fire")


class Exiting:
    @hookimpl
    def collect(self) -> list[Metric]:
        raise SystemExit(3)


class Blocking:
    """collect() waits until released (or a minute), like a plugin stuck on I/O."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    @hookimpl
    def collect(self) -> list[Metric]:
        self.calls += 1
        self.release.wait(DEADLINE)
        return [Metric("late", 1.0, timestamp=0.0)]


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    p = WorkerPool("test")
    yield p
    p.shutdown()


def managed(*plugins: tuple[str, object]) -> tuple[pluggy.PluginManager, dict[str, CallStats]]:
    pm = make_plugin_manager()
    stats: dict[str, CallStats] = {}
    pm._inner_hookexec = make_hookexec(stats)
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    return pm, stats


def test_raising_impl_is_recorded_and_the_others_still_answer() -> None:
    pm, stats = managed(("a", Good(1.0)), ("bad", Raising()), ("exit", Exiting()),
                        ("b", Good(2.0)))

    results = pm.hook.collect()

    assert sorted(m[0].value for m in results) == [1.0, 2.0]
    assert stats["bad"].errors == 1 and stats["bad"].last_error == "RuntimeError: disk on fire"
    assert stats["exit"].errors == 1 and stats["exit"].last_error == "SystemExit: 3"
    assert stats["a"].calls == 1 and stats["a"].errors == 0
    assert stats["a"].mean_latency_ms > 0


def test_fast_path_keeps_pluggy_call_order_and_drops_none_results() -> None:
    class NoneResult:
        @hookimpl
        def collect(self) -> None:
            return None

    bare = make_plugin_manager()
    pm, _ = managed()
    plugins = [("a", Good(1.0)), ("n", NoneResult()), ("b", Good(2.0))]
    for name, plugin in plugins:
        bare.register(plugin, name=name)
        pm.register(plugin, name=name)

    assert pm.hook.collect() == bare.hook.collect()


def test_fast_path_honours_firstresult_and_default_arguments() -> None:
    class Spec:
        @hookspec(firstresult=True)
        def pick(self, x: int) -> int:  # type: ignore[empty-body]
            ...

    class First:
        @hookimpl
        def pick(self, x: int) -> int | None:
            return None

    class Second:
        @hookimpl
        def pick(self, x: int, scale: int = 10) -> int:
            return x * scale

    pm, stats = managed()
    pm.add_hookspecs(Spec)
    pm.register(Second(), name="second")
    pm.register(First(), name="first")

    assert pm.hook.pick(x=4) == 40
    assert stats["first"].calls == 1 and stats["second"].calls == 1


def test_check_plugin_refuses_wrapper_implementations() -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def collect(self):  # type: ignore[no-untyped-def]
            return (yield)

    with pytest.raises(PluginLoadError, match=r"collect\(\) is declared as a hook wrapper"):
        check_plugin(make_plugin_manager(), Wrapper(), "w")


def test_check_plugin_refuses_unknown_hooks_but_allows_optional_ones() -> None:
    class Unknown:
        @hookimpl
        def colect(self) -> list[Metric]:
            return []

    class Optional:
        @hookimpl(optionalhook=True)
        def future_hook(self) -> None: ...

        @hookimpl
        def notify(self, event: object) -> None: ...

    pm = make_plugin_manager()
    with pytest.raises(PluginLoadError, match=r"unknown hook 'colect'.*collect"):
        check_plugin(pm, Unknown(), "u")
    assert check_plugin(pm, Optional(), "o") == ["notify"]


def test_hanging_impl_is_abandoned_after_its_timeout_and_skipped_while_stuck(
    pool: WorkerPool,
) -> None:
    pm, stats = managed(("good", Good(1.0)), ("stuck", Blocking()))
    blocking = pm.get_plugin("stuck")
    assert isinstance(blocking, Blocking)
    targets = [(impl.plugin_name, impl) for impl in pm.hook.collect.get_hookimpls()]

    # "stuck" blocks until released: that the call returns at all shows it was abandoned.
    results, errors = call_isolated("collect", targets, {}, 1.0, stats, pool)
    assert list(results) == ["good"] and "did not return within 1s" in errors["stuck"]
    assert stats["stuck"].stuck_since > 0

    # While the abandoned call still runs, neither path calls the plugin again.
    results, errors = call_isolated("collect", targets, {}, 0.1, stats, pool)
    assert errors["stuck"].startswith("skipped: a previous collect() call has been running")
    assert [m[0].name for m in pm.hook.collect()] == ["good"]
    assert blocking.calls == 1

    blocking.release.set()
    until_sync(lambda: not stats["stuck"].stuck_since, what="the stuck call to return")
    results, errors = call_isolated("collect", targets, {}, DEADLINE, stats, pool)
    assert errors == {} and results["stuck"][0].name == "late"
    assert blocking.calls == 2


def test_results_follow_the_order_of_the_targets(pool: WorkerPool) -> None:
    pm, stats = managed(("a", Good(1.0)), ("b", Good(2.0)), ("c", Good(3.0)))
    impls = {impl.plugin_name: impl for impl in pm.hook.collect.get_hookimpls()}

    results, _ = call_isolated("collect", [("c", impls["c"]), ("a", impls["a"]),
                                           ("none", None)], {}, 1.0, stats, pool)

    assert list(results) == ["c", "a", "none"] and results["none"] is None


def test_worker_pool_adds_a_thread_when_every_worker_is_busy(pool: WorkerPool) -> None:
    gate = threading.Event()
    first = pool.submit(gate.wait, (DEADLINE,))
    second = pool.submit(lambda: "free")

    assert second.wait(DEADLINE) and second.value == "free"
    gate.set()
    assert first.wait(DEADLINE) and first.value is True


def test_missing_hook_argument_is_the_callers_error_not_the_plugins() -> None:
    class Before:
        @hookimpl
        def before(self, job: object) -> None: ...

    pm, stats = managed(("b", Before()))

    with pytest.warns(UserWarning, match="cannot be found"), \
            pytest.raises(pluggy.HookCallError, match="must provide argument 'job'"):
        pm.hook.before()
    assert "b" not in stats or stats["b"].errors == 0
