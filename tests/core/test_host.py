"""PluginHost with in-process plugins: load, call, upgrade, reconfigure, unload."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from arcade_core import (
    Event,
    HostClosed,
    InvalidCall,
    InvalidConfig,
    JobContext,
    PluginHost,
    PluginInUse,
    PluginLoadError,
    PluginNotFound,
)
from tests.core.hostkit import (
    HEADER,
    Recorder,
    host,
    install,
    make_host,
    metric_plugin,
    plugin_wheel,
)
from tests.waiting import DEADLINE

__all__ = ["host"]  # the fixture

SCHEMA_MANIFEST = {
    "description": "test plugin",
    "config_schema": {
        "type": "object",
        "properties": {
            "k": {"type": "string", "default": "fallback"},
            "interval": {"type": "number", "minimum": 1},
        },
        "additionalProperties": False,
    },
    "default_config": {"interval": 10},
}

HANGS = HEADER + '''
import threading

class Plugin:
    def __init__(self, config):
        self.calls = 0
        self.release = threading.Event()

    @hookimpl
    def collect(self):
        self.calls += 1
        self.release.wait(60)  # hangs until the test lets it go
        return [Metric("hang.done", 1.0)]
'''

RAISES = HEADER + '''
class Plugin:
    def __init__(self, config):
        pass

    @hookimpl
    def collect(self):
        raise ValueError("sensor unplugged")
'''

NOTIFY = HEADER + '''
HEARD = []

class Plugin:
    def __init__(self, config):
        pass

    @hookimpl
    def notify(self, event):
        HEARD.append(event)

    @hookimpl
    def before(self, job):
        return {"env": {"SEEN": job.plugin_config.get("mark", "")}}
'''


def values(host: PluginHost) -> list[float]:
    return sorted(metrics[0].value for metrics in host.hook.collect())


def test_load_collect_unload_purges_modules_and_path(host: PluginHost, tmp_path: Path) -> None:
    install(host, tmp_path, "host-basic", "1.0.0", metric_plugin(7.0))

    status = host.load("host-basic")
    env = host.store.get("host-basic")

    assert status.state == "running" and status.isolation == "inline"
    assert status.version == "1.0.0" and status.hooks == ["collect"] and status.pid is None
    assert values(host) == [7.0]
    assert str(env.site_packages) in sys.path and "host_basic" in sys.modules

    host.unload("host-basic")

    assert host.hook.collect() == [] and host.plugins() == []
    assert str(env.site_packages) not in sys.path
    assert not [m for m in sys.modules if m.startswith("host_basic")]
    with pytest.raises(PluginNotFound, match="no plugin is loaded as 'host-basic'"):
        host.unload("host-basic")


def test_upgrade_to_v2_runs_v2_code_not_a_stale_module(host: PluginHost, tmp_path: Path) -> None:
    install(host, tmp_path, "host-upgrade", "1.0.0", metric_plugin(1.0))
    install(host, tmp_path, "host-upgrade", "2.0.0", metric_plugin(2.0))
    heard = Recorder()
    host.add_listener(heard)

    host.load("host-upgrade", "1.0.0")
    assert values(host) == [1.0]
    status = host.load("host-upgrade", "2.0.0")

    assert status.version == "2.0.0" and values(host) == [2.0]
    assert [p.version for p in host.plugins()] == ["2.0.0"]
    assert str(host.store.get("host-upgrade", "1.0.0").site_packages) not in sys.path
    assert heard.events[-1].data["previous_version"] == "1.0.0"

    host.load("host-upgrade", "1.0.0")  # and a downgrade goes back to v1's code
    assert values(host) == [1.0]


def test_v2_that_fails_to_import_leaves_v1_running(host: PluginHost, tmp_path: Path) -> None:
    install(host, tmp_path, "host-badimport", "1.0.0", metric_plugin(1.0))
    install(host, tmp_path, "host-badimport", "2.0.0", "import not_a_real_module_xyz\n")
    host.load("host-badimport", "1.0.0")

    with pytest.raises(PluginLoadError, match=r"host-badimport 2.0.0.*ModuleNotFoundError: "
                                              r"No module named 'not_a_real_module_xyz'"):
        host.load("host-badimport", "2.0.0")

    assert host.status("host-badimport").version == "1.0.0"
    assert values(host) == [1.0]
    assert str(sys.modules["host_badimport"].__file__).startswith(
        str(host.store.get("host-badimport", "1.0.0").site_packages))


def test_v2_that_fails_to_construct_leaves_v1_running(host: PluginHost, tmp_path: Path) -> None:
    broken = metric_plugin(2.0).replace("self.config = config",
                                        "raise RuntimeError('no license key')")
    install(host, tmp_path, "host-badinit", "1.0.0", metric_plugin(1.0))
    install(host, tmp_path, "host-badinit", "2.0.0", broken)
    host.load("host-badinit", "1.0.0")

    with pytest.raises(PluginLoadError, match="constructing host_badinit:Plugin failed: "
                                              "RuntimeError: no license key"):
        host.load("host-badinit", "2.0.0")

    assert host.status("host-badinit").version == "1.0.0" and values(host) == [1.0]
    host.unload("host-badinit")
    assert not [m for m in sys.modules if m.startswith("host_badinit")]


def test_config_is_validated_against_the_manifest_with_defaults(
    host: PluginHost, tmp_path: Path
) -> None:
    install(host, tmp_path, "host-config", "1.0.0", metric_plugin(1.0), manifest=SCHEMA_MANIFEST)

    status = host.load("host-config", config={"interval": 5})
    assert status.config == {"k": "fallback", "interval": 5}

    with pytest.raises(InvalidConfig, match=r"config.interval: 0 is less than the minimum"):
        host.reconfigure("host-config", {"interval": 0})
    with pytest.raises(InvalidConfig):
        host.load("host-config", config={"nope": 1}, key="other")
    assert [p.key for p in host.plugins()] == ["host-config"]


_NO_JSONSCHEMA = """
import sys
from pathlib import Path
from arcade_core import PluginHost
with PluginHost(Path(sys.argv[1]), check_config_schemas=False) as host:
    host.install([sys.argv[2]])
    status = host.load("host-config", config={"interval": 0})   # the caller vouches for it
    print(sorted(status.config.items()))
print("jsonschema" in sys.modules)
"""


def test_a_host_that_trusts_checked_configs_applies_defaults_without_jsonschema(
    tmp_path: Path,
) -> None:
    import subprocess

    wheel = plugin_wheel(tmp_path / "wheels", "host-config", "1.0.0", metric_plugin(1.0),
                         manifest=SCHEMA_MANIFEST)
    done = subprocess.run([sys.executable, "-c", _NO_JSONSCHEMA, str(tmp_path / "h"),
                           str(wheel)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[('interval', 0), ('k', 'fallback')]", "False"]


def test_reconfigure_builds_a_new_instance_and_keeps_the_old_one_on_failure(
    host: PluginHost, tmp_path: Path
) -> None:
    picky = metric_plugin(1.0).replace(
        "self.config = config",
        "self.config = config\n        if config.get('k') == 'bad':\n"
        "            raise ValueError('k may not be bad')")
    install(host, tmp_path, "host-reconf", "1.0.0", picky)
    host.load("host-reconf", config={"k": "one"})

    status = host.reconfigure("host-reconf", {"k": "two"})
    assert status.config == {"k": "two"}
    assert host.hook.collect()[0][0].labels == {"k": "two"}

    with pytest.raises(PluginLoadError, match="k may not be bad"):
        host.reconfigure("host-reconf", {"k": "bad"})
    assert host.hook.collect()[0][0].labels == {"k": "two"}
    assert host.status("host-reconf").config == {"k": "two"}


def test_loading_the_same_version_config_and_isolation_again_is_a_no_op(
    host: PluginHost, tmp_path: Path
) -> None:
    install(host, tmp_path, "host-noop", "1.0.0", metric_plugin(1.0))
    host.load("host-noop", config={"k": "x"})
    instance = host.pm.get_plugin("host-noop")
    heard = Recorder()
    host.add_listener(heard)

    host.load("host-noop", "1.0.0", {"k": "x"})

    assert host.pm.get_plugin("host-noop") is instance and heard.events == []


def test_same_plugin_under_two_keys_with_different_configs(
    host: PluginHost, tmp_path: Path
) -> None:
    install(host, tmp_path, "host-multi", "1.0.0", metric_plugin(1.0))
    host.load("host-multi", config={"k": "a"}, key="stage-a")
    host.load("host-multi", config={"k": "b"}, key="stage-b")

    outcome = host.call("collect", keys=["stage-b", "stage-a"])

    assert list(outcome.results) == ["stage-b", "stage-a"]
    assert outcome.results["stage-a"][0].labels == {"k": "a"}
    host.unload("stage-a")
    assert "host_multi" in sys.modules  # still used by stage-b
    host.unload("stage-b")
    assert "host_multi" not in sys.modules


def test_raising_plugin_does_not_stop_the_others_and_is_recorded(
    host: PluginHost, tmp_path: Path
) -> None:
    install(host, tmp_path, "host-raises", "1.0.0", RAISES)
    install(host, tmp_path, "host-fine", "1.0.0", metric_plugin(3.0))
    host.load("host-raises")
    host.load("host-fine")

    assert values(host) == [3.0]
    outcome = host.call("collect")

    assert outcome.errors == {"host-raises": "ValueError: sensor unplugged"}
    assert outcome.results["host-fine"][0].value == 3.0 and not outcome.ok
    status = host.status("host-raises")
    assert (status.calls, status.errors) == (2, 2)
    assert status.last_error == "ValueError: sensor unplugged"
    assert host.status("host-fine").calls == 2 and host.status("host-fine").errors == 0


def test_hanging_plugin_is_abandoned_after_the_timeout_and_the_others_answer(
    host: PluginHost, tmp_path: Path
) -> None:
    install(host, tmp_path, "host-hangs", "1.0.0", HANGS)
    install(host, tmp_path, "host-quick", "1.0.0", metric_plugin(4.0))
    host.load("host-hangs")
    host.load("host-quick")
    hanging = host.pm.get_plugin("host-hangs")
    assert hanging is not None

    try:
        # It hangs until released: that the call returns at all shows it was abandoned.
        outcome = host.call("collect", timeout=1.0)
        assert outcome.results["host-quick"][0].value == 4.0
        assert "did not return within 1s" in outcome.errors["host-hangs"]

        again = host.call("collect", timeout=1.0)  # still stuck: not called a second time
        assert again.errors["host-hangs"].startswith("skipped")
        assert hanging.calls == 1 and host.status("host-hangs").errors == 2
    finally:
        hanging.release.set()


def test_allow_list_from_the_environment_restricts_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCADE_PLUGINS", "host-allowed, Other_Plugin")
    with make_host(tmp_path) as restricted:
        assert restricted.allow == frozenset({"host-allowed", "other-plugin"})
        install(restricted, tmp_path, "host-allowed", "1.0.0", metric_plugin(1.0))
        install(restricted, tmp_path, "host-denied", "1.0.0", metric_plugin(2.0))

        restricted.load("host-allowed")
        with pytest.raises(PluginLoadError, match=r"'host-denied' is not allowed to load here "
                                                  r"\(allowed: host-allowed, other-plugin"):
            restricted.load("host-denied")
    monkeypatch.setenv("ARCADE_PLUGINS", "")
    with PluginHost(tmp_path / "home") as nothing, pytest.raises(PluginLoadError,
                                                                 match="allowed: none"):
        nothing.load("host-allowed")
    with PluginHost(tmp_path / "home", allow=["host-denied"]) as explicit:
        assert explicit.load("host-denied").state == "running"


def test_wrapper_implementation_is_refused_at_load(host: PluginHost, tmp_path: Path) -> None:
    source = HEADER + '''
class Plugin:
    def __init__(self, config):
        pass

    @hookimpl(wrapper=True)
    def collect(self):
        return (yield)
'''
    install(host, tmp_path, "host-wrapper", "1.0.0", source)

    with pytest.raises(PluginLoadError, match="declared as a hook wrapper"):
        host.load("host-wrapper")
    assert host.plugins() == [] and "host_wrapper" not in sys.modules


def test_unknown_plugin_and_version_are_reported(host: PluginHost, tmp_path: Path) -> None:
    install(host, tmp_path, "host-known", "1.0.0", metric_plugin(1.0))

    with pytest.raises(PluginNotFound, match="host-missing"):
        host.load("host-missing")
    with pytest.raises(PluginNotFound, match=r"host-known@9\.0"):
        host.load("host-known", "9.0")


def test_uninstall_is_refused_while_loaded(host: PluginHost, tmp_path: Path) -> None:
    install(host, tmp_path, "host-uninst", "1.0.0", metric_plugin(1.0))
    host.load("host-uninst", key="job-1")

    with pytest.raises(PluginInUse, match=r"loaded as job-1 \(host-uninst@1.0.0\); unload"):
        host.uninstall("host-uninst")

    host.unload("job-1")
    host.uninstall("host-uninst", "1.0.0")
    assert host.installed() == []


def test_timeouts_and_limits_must_be_positive(host: PluginHost, tmp_path: Path) -> None:
    with pytest.raises(InvalidCall, match="call_timeout and start_timeout must be positive"):
        PluginHost(tmp_path / "other", call_timeout=0)
    with pytest.raises(InvalidCall, match="max_restarts, restart_backoff and healthy_period"):
        PluginHost(tmp_path / "other", max_restarts=-1)
    with pytest.raises(InvalidCall, match="timeout must be positive seconds, not 0"):
        host.call("collect", timeout=0)


def test_call_checks_the_hook_and_its_arguments(host: PluginHost, tmp_path: Path) -> None:
    install(host, tmp_path, "host-args", "1.0.0", NOTIFY)
    host.load("host-args")

    with pytest.raises(InvalidCall, match="unknown hook 'colect'"):
        host.call("colect")
    with pytest.raises(InvalidCall, match=r"before\(\) takes \(job\): missing job"):
        host.call("before")

    outcome = host.call("before", keys=["ghost", "host-args"],
                        job=JobContext(job_id="j", plugin_config={"mark": "m"}))
    assert outcome.results == {"host-args": {"env": {"SEEN": "m"}}}
    assert outcome.errors == {"ghost": "PluginNotFound: no plugin is loaded as 'ghost'"}
    assert "ghost" not in {p.key for p in host.plugins()}
    assert host.call("collect", keys=["host-args"]).results == {"host-args": None}


def test_listeners_hear_host_events_and_their_errors_are_contained(
    host: PluginHost, tmp_path: Path
) -> None:
    install(host, tmp_path, "host-events", "1.0.0", NOTIFY)
    heard = Recorder()

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    host.add_listener(broken)
    host.add_listener(heard)
    host.load("host-events")
    outcome = host.emit(Event("job.finished", {"job_id": "j1"}))
    host.unload("host-events")
    host.remove_listener(heard)
    host.load("host-events")

    assert outcome.ok and list(outcome.results) == ["host-events"]
    assert heard.kinds() == ["plugin.loaded", "plugin.unloaded"]
    assert heard.events[0].data == {"key": "host-events", "name": "host-events",
                                    "version": "1.0.0", "isolation": "inline"}


def test_notify_plugin_hears_emitted_events(host: PluginHost, tmp_path: Path) -> None:
    install(host, tmp_path, "host-heard", "1.0.0", NOTIFY)
    host.load("host-heard")

    host.emit(Event("job.finished", {"job_id": "j2"}))

    assert [e.data for e in sys.modules["host_heard"].HEARD] == [{"job_id": "j2"}]


def test_closed_host_refuses_to_load(tmp_path: Path) -> None:
    host_ = make_host(tmp_path)
    install(host_, tmp_path, "host-closed", "1.0.0", metric_plugin(1.0))
    host_.load("host-closed")
    host_.close()
    host_.close()

    assert host_.plugins() == [] and "host_closed" not in sys.modules
    with pytest.raises(HostClosed, match="closed"):
        host_.load("host-closed")


def test_management_and_calls_from_many_threads_stay_consistent(
    host: PluginHost, tmp_path: Path
) -> None:
    for i in range(4):
        install(host, tmp_path, f"host-thread{i}", "1.0.0", metric_plugin(float(i)))
    errors: list[BaseException] = []
    stop = threading.Event()

    def churn(i: int) -> None:
        try:
            for n in range(15):
                host.load(f"host-thread{i}", config={"k": str(n)})
                host.call("collect", timeout=DEADLINE)  # a timeout would count an error
                if n % 3 == 0:
                    host.unload(f"host-thread{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def call_loop() -> None:
        while not stop.is_set():
            host.hook.collect()
            host.plugins()

    caller = threading.Thread(target=call_loop)
    caller.start()
    workers = [threading.Thread(target=churn, args=(i,)) for i in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(DEADLINE)
    stop.set()
    caller.join(DEADLINE)

    assert errors == []
    assert sorted(p.key for p in host.plugins()) == [f"host-thread{i}" for i in range(4)]
    assert values(host) == [0.0, 1.0, 2.0, 3.0]
    assert all(p.errors == 0 for p in host.plugins())


def test_install_takes_a_single_wheel_path_and_is_idempotent(
    host: PluginHost, tmp_path: Path
) -> None:
    wheel = plugin_wheel(tmp_path / "wheels", "host-single", "1.0.0")

    first = host.install(wheel)
    second = host.install([wheel])

    assert first.path == second.path and [e.key for e in host.installed()] == [
        "host-single@1.0.0"]


def test_v2_that_pluggy_refuses_to_register_leaves_v1_running(
    host: PluginHost, tmp_path: Path
) -> None:
    bad_signature = metric_plugin(2.0).replace("def collect(self):", "def collect(self, bogus):")
    install(host, tmp_path, "host-badsig", "1.0.0", metric_plugin(1.0))
    install(host, tmp_path, "host-badsig", "2.0.0", bad_signature)
    host.load("host-badsig", "1.0.0")

    with pytest.raises(PluginLoadError, match=r"cannot be registered as 'host-badsig'.*bogus"):
        host.load("host-badsig", "2.0.0")

    assert host.status("host-badsig").version == "1.0.0" and values(host) == [1.0]
    assert str(host.store.get("host-badsig", "2.0.0").site_packages) not in sys.path
