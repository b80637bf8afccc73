"""Process isolation: handshake, proxy calls, a channel prints cannot corrupt, supervision."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from arcade_core import Event, JobContext, JobResult, PluginHost, PluginLoadError
from arcade_core._hostlib import ensure_host_lib
from tests.core.hostkit import (
    HEADER,
    Recorder,
    child_pids,
    host,
    install,
    make_host,
    metric_plugin,
    pid_alive,
    plugin_wheel,
    wait_for,
)

__all__ = ["host"]  # the fixture

REPO = Path(__file__).resolve().parents[2]

JOBS = HEADER + '''
import json, os

class Plugin:
    def __init__(self, config):
        self.log = config.get("log")

    @hookimpl
    def collect(self):
        return [Metric("proc.pid", float(os.getpid()), labels={"cwd": os.getcwd()})]

    @hookimpl
    def before(self, job):
        assert isinstance(job, JobContext)
        return {"env": {"JOB": job.job_id}, "outputs": {"commands": job.commands}}

    @hookimpl
    def after(self, job, result):
        assert isinstance(result, JobResult)
        return {"status": result.status, "exit_code": result.exit_code}

    @hookimpl
    def notify(self, event):
        assert isinstance(event, Event)
        with open(self.log, "a") as fh:
            fh.write(json.dumps(event.to_dict()) + "\\n")
'''

NOISY = HEADER + '''
import os, sys
print("garbage printed in __init__ {not json")

class Plugin:
    def __init__(self, config):
        print("more garbage from the constructor")

    @hookimpl
    def collect(self):
        print("}}} noisy collect output")
        sys.stdout.write("partial line without newline")
        sys.__stdout__.write("via sys.__stdout__\\n")
        sys.__stdout__.flush()
        os.write(1, b"raw write to fd 1\\n")
        return [Metric("noisy.ok", 1.0)]
'''

MALFORMED = HEADER + '''
import fcntl, os, stat

def protocol_fd():
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd <= 2:
            continue
        try:
            mode = os.fstat(fd).st_mode
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            continue
        if stat.S_ISFIFO(mode) and flags & os.O_ACCMODE == os.O_WRONLY:
            return fd
    raise RuntimeError("no protocol fd found")

class Plugin:
    def __init__(self, config):
        pass

    @hookimpl
    def collect(self):
        os.write(protocol_fd(), b"this is not json\\n")
        return [Metric("malformed.ok", 1.0)]
'''

EXITS = HEADER + '''
import os

class Plugin:
    def __init__(self, config):
        pass

    @hookimpl
    def collect(self):
        os._exit(3)
'''

SLOW = HEADER + '''
import os, time

class Plugin:
    def __init__(self, config):
        self.delay = config.get("delay", 0)

    @hookimpl
    def collect(self):
        time.sleep(self.delay)
        return [Metric("slow.pid", float(os.getpid()))]
'''

HEARS = HEADER + '''
HEARD = []

class Plugin:
    def __init__(self, config):
        pass

    @hookimpl
    def notify(self, event):
        HEARD.append(event)
'''


def test_handshake_and_collect_reach_the_child_through_host_hook(
    host: PluginHost, tmp_path: Path
) -> None:
    install(host, tmp_path, "proc-jobs", "1.0.0", JOBS)
    install(host, tmp_path, "proc-inline", "1.0.0", metric_plugin(5.0))

    status = host.load("proc-jobs", isolation="process",
                       config={"log": str(tmp_path / "events.log")})
    host.load("proc-inline")

    assert status.isolation == "process" and status.state == "running"
    assert status.hooks == ["after", "before", "collect", "notify"]
    assert status.pid is not None and status.pid != os.getpid() and pid_alive(status.pid)
    metrics = {m[0].name: m[0] for m in host.hook.collect()}
    assert metrics["proc.pid"].value == status.pid
    assert metrics["proc.pid"].labels["cwd"] == str(host.store.get("proc-jobs").path)
    assert metrics["value"].value == 5.0
    assert host.status("proc-jobs").calls == 1


def test_job_values_cross_the_process_boundary_both_ways(
    host: PluginHost, tmp_path: Path
) -> None:
    install(host, tmp_path, "proc-values", "1.0.0", JOBS)
    log = tmp_path / "events.log"
    host.load("proc-values", isolation="process", config={"log": str(log)})
    job = JobContext(job_id="j9", commands=["make test"])

    before = host.call("before", keys=["proc-values"], job=job)
    after = host.call("after", job=job, result=JobResult(job_id="j9", status="failed",
                                                          exit_code=2))
    notified = host.emit(Event("job.finished", {"job_id": "j9"}, timestamp=1.0))

    assert before.results["proc-values"] == {"env": {"JOB": "j9"},
                                             "outputs": {"commands": ["make test"]}}
    assert after.results["proc-values"] == {"status": "failed", "exit_code": 2}
    assert notified.ok
    assert json.loads(log.read_text()) == {"kind": "job.finished", "data": {"job_id": "j9"},
                                           "timestamp": 1.0}


def test_plugin_printing_garbage_to_stdout_still_works_and_is_logged(
    host: PluginHost, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="arcade.plugin")
    install(host, tmp_path, "proc-noisy", "1.0.0", NOISY)
    host.load("proc-noisy", isolation="process")

    for _ in range(3):
        assert [m[0].name for m in host.hook.collect()] == ["noisy.ok"]

    status = host.status("proc-noisy")
    assert status.errors == 0 and status.malformed == 0
    wait_for(lambda: "raw write to fd 1" in caplog.text, what="the child's output in the log")
    assert "garbage printed in __init__ {not json" in caplog.text
    assert {r.name for r in caplog.records if "noisy" in r.getMessage()} == {
        "arcade.plugin.proc-noisy"}


def test_malformed_protocol_line_is_logged_and_counted_not_fatal(
    host: PluginHost, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install(host, tmp_path, "proc-malformed", "1.0.0", MALFORMED)
    host.load("proc-malformed", isolation="process")
    pid = host.status("proc-malformed").pid

    assert [m[0].name for m in host.hook.collect()] == ["malformed.ok"]
    assert [m[0].name for m in host.hook.collect()] == ["malformed.ok"]

    status = host.status("proc-malformed")
    assert status.malformed == 2 and status.errors == 0
    assert status.state == "running" and status.pid == pid and status.restarts == 0
    assert "malformed protocol line" in caplog.text and "this is not json" in caplog.text


def test_plugin_that_exits_on_every_call_fails_after_exactly_three_restarts(
    host: PluginHost, tmp_path: Path
) -> None:
    install(host, tmp_path, "proc-exits", "1.0.0", EXITS)
    install(host, tmp_path, "proc-steady", "1.0.0", metric_plugin(8.0))
    install(host, tmp_path, "proc-hears", "1.0.0", HEARS)
    heard = Recorder()
    host.add_listener(heard)
    host.load("proc-exits", isolation="process")
    host.load("proc-steady", isolation="process")
    host.load("proc-hears")
    pids = set()

    for _ in range(4):  # the first run and three restarts, each killed by one call
        wait_for(lambda: host.status("proc-exits").state in ("running", "failed"))
        pids.add(host.status("proc-exits").pid)
        results = host.hook.collect()
        assert [m[0].value for m in results] == [8.0]  # the other plugin keeps answering
    wait_for(lambda: host.status("proc-exits").state == "failed", what="the failed state")

    status = host.status("proc-exits")
    assert status.restarts == 3 and status.pid is None and len(pids) == 4
    assert "exited with code 3" in status.last_error
    wait_for(lambda: "plugin.failed" in heard.kinds(), what="listeners to hear plugin.failed")
    assert heard.kinds("proc-exits") == [
        "plugin.loaded",
        "plugin.crashed", "plugin.restarted",
        "plugin.crashed", "plugin.restarted",
        "plugin.crashed", "plugin.restarted",
        "plugin.crashed", "plugin.failed",
    ]
    failed = heard.events[-1]
    assert failed.data["restarts"] == 3 and failed.data["version"] == "1.0.0"
    notify_heard = sys.modules["proc_hears"].HEARD
    wait_for(lambda: bool(notify_heard), what="the notify plugin to hear plugin.failed")
    assert [(e.kind, e.data["key"]) for e in notify_heard] == [("plugin.failed", "proc-exits")]
    # A failed plugin answers at once with its reason; the others still run.
    outcome = host.call("collect")
    assert "failed" in outcome.errors["proc-exits"]
    assert outcome.results["proc-steady"][0].value == 8.0
    assert not any(pid_alive(pid) for pid in pids if pid is not None)


def test_call_past_its_timeout_kills_and_restarts_the_child(
    host: PluginHost, tmp_path: Path
) -> None:
    install(host, tmp_path, "proc-slow", "1.0.0", SLOW)
    heard = Recorder()
    host.add_listener(heard)
    host.load("proc-slow", isolation="process", config={"delay": 30})
    first_pid = host.status("proc-slow").pid
    assert first_pid is not None

    # The plugin would answer in 30 s: the call returns because the child was killed.
    outcome = host.call("collect", timeout=0.3)

    assert "did not answer within 0.3s; the process was killed" in outcome.errors["proc-slow"]
    assert not pid_alive(first_pid)
    wait_for(lambda: host.status("proc-slow").state == "running", what="the restart")
    status = host.status("proc-slow")
    assert status.restarts == 1 and status.pid not in (None, first_pid)
    wait_for(lambda: len(heard.events) == 3, what="the restart event")
    assert heard.kinds("proc-slow") == ["plugin.loaded", "plugin.crashed", "plugin.restarted"]


def test_restart_counter_resets_after_a_healthy_period(tmp_path: Path) -> None:
    with make_host(tmp_path, healthy_period=0.3) as host_:
        install(host_, tmp_path, "proc-healthy", "1.0.0", EXITS)
        host_.load("proc-healthy", isolation="process")

        for _ in range(3):
            host_.hook.collect()
            wait_for(lambda: host_.status("proc-healthy").state == "running")
            assert host_.status("proc-healthy").restarts == 1
            time.sleep(0.35)  # healthy for longer than healthy_period


def test_plugin_that_fails_to_import_in_its_child_is_reported_and_leaves_no_child(
    host: PluginHost, tmp_path: Path
) -> None:
    before = child_pids()
    install(host, tmp_path, "proc-noimport", "1.0.0",
            "import psutil  # installed in the host, not in this environment\n")

    with pytest.raises(PluginLoadError, match=r"proc-noimport@1.0.0 \(as 'proc-noimport'\): "
                                              r".*ModuleNotFoundError: No module named 'psutil'"):
        host.load("proc-noimport", isolation="process")

    assert host.plugins() == []
    wait_for(lambda: child_pids() <= before, what="no child left")


def test_failed_upgrade_of_a_process_plugin_keeps_the_old_child(
    host: PluginHost, tmp_path: Path
) -> None:
    install(host, tmp_path, "proc-upgrade", "1.0.0", metric_plugin(1.0))
    install(host, tmp_path, "proc-upgrade", "2.0.0", metric_plugin(2.0).replace(
        "self.config = config", "raise RuntimeError('v2 cannot start')"))
    install(host, tmp_path, "proc-upgrade", "3.0.0", metric_plugin(3.0))
    host.load("proc-upgrade", "1.0.0", isolation="process")
    old_pid = host.status("proc-upgrade").pid
    assert old_pid is not None

    with pytest.raises(PluginLoadError, match="RuntimeError: v2 cannot start"):
        host.load("proc-upgrade", "2.0.0")

    status = host.status("proc-upgrade")
    assert status.version == "1.0.0" and status.pid == old_pid
    assert [m[0].value for m in host.hook.collect()] == [1.0]

    host.load("proc-upgrade", "3.0.0", isolation="process")
    assert host.status("proc-upgrade").isolation == "process"
    assert [m[0].value for m in host.hook.collect()] == [3.0]
    wait_for(lambda: not pid_alive(old_pid), what="the old child to stop")


def test_reconfigure_keeps_the_child_and_switching_isolation_replaces_it(
    host: PluginHost, tmp_path: Path
) -> None:
    install(host, tmp_path, "proc-reconf", "1.0.0", metric_plugin(1.0))
    host.load("proc-reconf", isolation="process", config={"k": "a"})
    first = host.status("proc-reconf").pid
    assert first is not None

    # A config change reaches the running child (constructed anew inside it): no restart.
    host.reconfigure("proc-reconf", {"k": "b"})
    assert host.hook.collect()[0][0].labels == {"k": "b"}
    status = host.status("proc-reconf")
    assert status.pid == first and status.restarts == 0 and status.config == {"k": "b"}

    host.load("proc-reconf", config={"k": "b"}, isolation="inline")
    assert host.status("proc-reconf").pid is None
    assert host.hook.collect()[0][0].labels == {"k": "b"}
    wait_for(lambda: not pid_alive(first))


def test_no_child_process_is_left_after_close(tmp_path: Path) -> None:
    before = child_pids()
    host_ = make_host(tmp_path)
    install(host_, tmp_path, "proc-close-a", "1.0.0", SLOW)
    install(host_, tmp_path, "proc-close-b", "1.0.0", metric_plugin(1.0))
    host_.load("proc-close-a", isolation="process", config={"delay": 30})
    host_.load("proc-close-b", isolation="process")
    pids = {p.pid for p in host_.plugins()}
    assert len(pids) == 2 and child_pids() - before == pids

    host_.close()

    assert child_pids() - before == set()
    assert host_.plugins() == []


def test_child_exits_when_its_parent_dies(tmp_path: Path) -> None:
    wheel = plugin_wheel(tmp_path / "wheels", "proc-orphan", "1.0.0", metric_plugin(1.0))
    script = textwrap.dedent(f"""
        import sys, time
        from arcade_core import PluginHost
        host = PluginHost({str(tmp_path / "home")!r})
        host.install([{str(wheel)!r}])
        print(host.load("proc-orphan", isolation="process").pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              cwd=REPO, text=True)
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert pid_alive(child_pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        wait_for(lambda: not pid_alive(child_pid), what="the orphan to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_host_lib_links_only_arcade_core_and_pluggy(tmp_path: Path) -> None:
    import pluggy

    import arcade_core

    lib = ensure_host_lib(tmp_path)

    assert sorted(os.listdir(lib)) == ["arcade_core", "pluggy"]
    assert (lib / "arcade_core").resolve() == Path(arcade_core.__file__).resolve().parent
    assert (lib / "pluggy").resolve() == Path(pluggy.__file__).resolve().parent
    assert ensure_host_lib(tmp_path) == lib

    # A stale link (the host moved or was upgraded) is replaced as a whole.
    (lib / "pluggy").unlink()
    os.symlink(tmp_path, lib / "pluggy")
    ensure_host_lib(tmp_path)
    assert (lib / "pluggy").resolve() == Path(pluggy.__file__).resolve().parent
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".host-lib")] == []


def test_result_that_cannot_cross_the_boundary_is_an_error_not_a_crash(
    host: PluginHost, tmp_path: Path
) -> None:
    source = HEADER + '''
class Plugin:
    def __init__(self, config):
        pass

    @hookimpl
    def collect(self):
        return {1, 2}
'''
    install(host, tmp_path, "proc-unsendable", "1.0.0", source)
    host.load("proc-unsendable", isolation="process")
    pid = host.status("proc-unsendable").pid

    outcome = host.call("collect")

    assert "builtins.set cannot cross the process boundary" in outcome.errors["proc-unsendable"]
    status = host.status("proc-unsendable")
    assert status.state == "running" and status.pid == pid and status.restarts == 0
