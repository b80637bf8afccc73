"""Reaping and resource limits with real children: nothing a plugin starts outlives it
(``setsid()`` and double-forked processes included), and a tree past its memory limit is
killed and reported as such."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arcade_core import PluginHost, PluginLoadError
from arcade_core._limits import INLINE_LIMITS, Limits, kill_tree
from arcade_core._reaper import descendants, parent_map
from arcade_core.log_rate import DEFAULT_BURST, DEFAULT_RATE
from arcade_core.resources import Resources, parse_cpu
from tests.core.hostkit import HEADER, host, install, make_host, pid_alive, wait_for

__all__ = ["host"]  # the fixture

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="subreaper and /proc: Linux")

#: A plugin that leaves processes behind: a setsid() child and a double-forked grandchild
#: that also called setsid(); each writes its pid to the file ``config["pids"]``.
SPAWNER = HEADER + '''
import os, subprocess, time

def _record(path, pid):
    with open(path, "a") as f:
        f.write(f"{pid}\\n")

class Plugin:
    def __init__(self, config):
        self.config = config
        path = config["pids"]
        child = subprocess.Popen(["sleep", "300"], start_new_session=True)
        _record(path, child.pid)
        first = os.fork()
        if first == 0:
            if os.fork() == 0:
                os.setsid()
                _record(path, os.getpid())
                os.execvp("sleep", ["sleep", "301"])
            os._exit(0)
        os.waitpid(first, 0)

    @hookimpl
    def collect(self):
        if self.config.get("mode") == "exit":
            os._exit(3)
        if self.config.get("mode") == "hang":
            time.sleep(300)
        return [Metric("pid", float(os.getpid()))]
'''

#: A plugin whose collect() grows it past any small limit (pages written, so resident).
HOG = HEADER + '''
class Plugin:
    def __init__(self, config):
        self.hog = []

    @hookimpl
    def collect(self):
        self.hog.append(b"x" * (200 << 20))
        return []
'''


def _pids(path: Path, count: int) -> list[int]:
    wait_for(lambda: path.exists() and len(path.read_text().split()) >= count,
             what=f"{count} pids in {path.name}")
    return [int(word) for word in path.read_text().split()]


def _all_gone(pids: list[int]) -> None:
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), what=f"{pids} to be gone")


def _spawner(host: PluginHost, tmp_path: Path, mode: str) -> Path:
    pids = tmp_path / f"{mode}.pids"
    install(host, tmp_path, f"spawner-{mode}", "1.0.0", SPAWNER)
    status = host.load(f"spawner-{mode}", isolation="process",
                       config={"pids": str(pids), "mode": mode})
    assert status.state == "running" and status.limits == "none declared"
    return pids


def test_stop_leaves_no_setsid_or_double_forked_process(host: PluginHost,
                                                        tmp_path: Path) -> None:
    pids = _pids(_spawner(host, tmp_path, "stop"), 2)
    plugin_pid = host.status("spawner-stop").pid
    assert plugin_pid is not None and all(pid_alive(pid) for pid in [*pids, plugin_pid])

    host.unload("spawner-stop")

    _all_gone([*pids, plugin_pid])


def test_a_restart_leaves_nothing_of_the_old_process(host: PluginHost, tmp_path: Path) -> None:
    path = _spawner(host, tmp_path, "exit")
    first = _pids(path, 2)

    host.call("collect", keys=["spawner-exit"])  # the process exits: a crash, a restart

    wait_for(lambda: host.status("spawner-exit").restarts == 1
             and host.status("spawner-exit").state == "running")
    _all_gone(first)
    assert all(pid_alive(pid) for pid in _pids(path, 4)[2:])


def test_a_killed_plugin_takes_its_whole_tree(host: PluginHost, tmp_path: Path) -> None:
    path = _spawner(host, tmp_path, "hang")
    pids = _pids(path, 2)
    plugin_pid = host.status("spawner-hang").pid

    outcome = host.call("collect", keys=["spawner-hang"], timeout=0.5)  # killed on timeout

    assert "did not answer within 0.5s" in outcome.errors["spawner-hang"]
    _all_gone([*pids, plugin_pid])


def test_memory_limit_kills_and_says_so(tmp_path: Path) -> None:
    with make_host(tmp_path, max_restarts=1) as host:
        install(host, tmp_path, "hog", "1.0.0", HOG,
                manifest={"isolation": "process", "resources": {"memory": "64Mi"}})
        status = host.load("hog")
        assert status.limits == "memory 64Mi: watchdog" and status.state == "running"

        def grow_until_failed() -> bool:
            if host.status("hog").state == "running":
                host.call("collect", keys=["hog"])
            return host.status("hog").state == "failed"

        wait_for(grow_until_failed, what="the hog to fail")
        status = host.status("hog")
        assert status.restarts == 1
        assert status.last_error.startswith("memory limit 64Mi exceeded (rss ")
        lines = [line.text for line in host.logs("hog")[0]]
        assert any("memory limit 64Mi exceeded" in line and "killed" in line
                   for line in lines)


def test_an_override_wins_and_inline_plugins_say_they_cannot_be_limited(
    host: PluginHost, tmp_path: Path,
) -> None:
    install(host, tmp_path, "limited", "1.0.0",
            manifest={"isolation": "process", "resources": {"memory": "1Gi", "cpu": "1"}})
    status = host.load("limited", resources={"memory": "512Mi", "cpu": "none", "disk": "1Gi"})
    assert status.limits == "memory 512Mi: watchdog; disk 1Gi: not enforced"
    pid = status.pid
    # The same override again is a no-op; a new one restarts the child with it.
    assert host.load("limited", resources={"memory": "512Mi", "cpu": "none",
                                           "disk": "1Gi"}).pid == pid
    assert host.reconfigure("limited", {}).limits.startswith("memory 512Mi")
    assert host.load("limited", resources={"cpu": "250m"}).limits == \
        "memory 1Gi: watchdog; cpu 250m: measured"
    assert host.load("limited", isolation="inline").limits == INLINE_LIMITS
    with pytest.raises(Exception, match="resources: unknown resource 'ram'"):
        host.load("limited", resources={"ram": "1Gi"})


def test_a_plugin_that_declares_no_memory_limit_gets_the_hosts_default(tmp_path: Path) -> None:
    # A process plugin that grew to 2.1 GB still showed `running`: with a default limit no
    # process or exec plugin can grow without bound; its own limit or an override wins.
    with make_host(tmp_path, default_resources={"memory": "256Mi"}) as host:
        install(host, tmp_path, "plain", "1.0.0", manifest={"isolation": "process"})
        install(host, tmp_path, "declared", "1.0.0",
                manifest={"isolation": "process", "resources": {"memory": "512Mi"}})
        assert host.load("plain").limits == "memory 256Mi: watchdog"
        assert host.load("declared").limits == "memory 512Mi: watchdog"
        assert host.load("plain", resources={"memory": "none"}).limits == "none declared"
        assert host.load("plain", isolation="inline").limits == INLINE_LIMITS
    with pytest.raises(Exception, match="memory"):
        make_host(tmp_path / "bad", default_resources={"memory": "lots"})


def test_the_watchdog_kills_an_executable_over_its_limit() -> None:
    limits = Limits("exe", Resources(memory=48 << 20), exec_plugin=True)
    hog = "import time\nx = b'x' * (160 << 20)\ntime.sleep(60)\n"
    argv = limits.command([sys.executable, "-c", hog])
    assert argv[argv.index("--as") + 1] == str((48 << 20) + (1 << 30))
    proc = subprocess.Popen(argv)
    try:
        limits.watch(proc)
        assert proc.wait(timeout=60) == -signal.SIGKILL
        assert limits.exceeded is not None
        assert re.fullmatch(r"memory limit 48Mi exceeded \(rss [0-9.]+Mi\)", limits.exceeded)
        assert limits.rss_peak > 48 << 20
    finally:
        limits.kill(proc)


def test_cpu_is_measured_and_noted_over_its_limit() -> None:
    notes: list[tuple[str, str]] = []
    limits = Limits("spin", Resources(cpu=100), on_log=lambda *note: notes.append(note))
    assert limits.describe() == "cpu 100m: measured"
    proc = subprocess.Popen(limits.command([sys.executable, "-c", "while True: pass"]))
    try:
        limits.watch(proc)
        wait_for(lambda: notes, what="a note of the cpu use")
        assert limits.cpu_used is not None  # the latest sample (under load it may be lower)
        level, text = notes[0]
        assert level == "WARNING"
        # The use as a quantity: "250m", or "1" for a whole core (a quiet machine).
        noted = re.fullmatch(r"cpu use (\S+) over the limit 100m \(measured, not enforced: "
                             r"no cgroup\)", text)
        assert noted is not None and parse_cpu(noted.group(1)) > 100, text
        assert proc.poll() is None  # measured, not killed
    finally:
        limits.kill(proc)
    assert proc.returncode == -signal.SIGKILL


def test_the_address_space_backstop_stops_a_spike_between_samples() -> None:
    limits = Limits("spike", Resources(memory=16 << 20), exec_plugin=True)
    argv = limits.command([sys.executable, "-c", "bytearray(3 << 30)"])
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and "MemoryError" in result.stderr


def test_a_plugin_that_dies_while_starting_over_its_limit_fails_with_that_reason(
    tmp_path: Path,
) -> None:
    source = HEADER + "class Plugin:\n    def __init__(self, config):\n" \
        "        import time\n        self.hog = b'x' * (200 << 20)\n        time.sleep(30)\n"
    with make_host(tmp_path, start_timeout=30) as host:
        install(host, tmp_path, "hog-start", "1.0.0", source,
                manifest={"isolation": "process", "resources": {"memory": "32Mi"}})
        with pytest.raises(PluginLoadError, match=r"memory limit 32Mi exceeded \(rss "):
            host.load("hog-start")


#: A plugin that floods its stderr from a thread as fast as the pipe takes it.
FLOOD = HEADER + '''
import os, threading

def _flood():
    chunk = b"".join(b"flood line %d\\n" % i for i in range(1000))
    while True:
        os.write(2, chunk)

class Plugin:
    def __init__(self, config):
        threading.Thread(target=_flood, daemon=True).start()

    @hookimpl
    def collect(self):
        return [Metric("alive", 1.0)]
'''


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_flooding_plugin_is_rate_limited_and_still_answers(host: PluginHost,
                                                             tmp_path: Path) -> None:
    logger = logging.getLogger("arcade.plugin.flood")
    counter = _Counter()
    logger.addHandler(counter)
    level, logger.level = logger.level, logging.INFO
    try:
        install(host, tmp_path, "flood", "1.0.0", FLOOD)
        started = time.monotonic()
        host.load("flood", isolation="process")
        wait_for(lambda: host.logs("flood")[1] > 20_000, what="20,000 lines flooded")
        slowest = 0.0
        for _ in range(20):
            before = time.monotonic()
            outcome = host.call("collect", keys=["flood"])
            slowest = max(slowest, time.monotonic() - before)
            assert outcome.ok, outcome.errors
        host.unload("flood")
        elapsed = time.monotonic() - started
    finally:
        logger.removeHandler(counter)
        logger.level = level
    assert slowest < 1.0
    lines = [r for r in counter.records if not getattr(r, "arcade_summary", False)]
    assert len(lines) <= DEFAULT_BURST + DEFAULT_RATE * elapsed + 1
    summaries = [r.getMessage() for r in counter.records if getattr(r, "arcade_summary", False)]
    assert all(re.fullmatch(r"plugin flood: suppressed \d+ lines \(over 20 lines/s\)", text)
               for text in summaries)


def test_descendants_from_children_files_and_from_a_full_scan_agree() -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & (sleep 61 & wait) & wait"])
    try:
        wait_for(lambda: len(descendants(proc.pid)) == 3, what="sh's three descendants")
        assert set(descendants(proc.pid)) == set(descendants(proc.pid, parent_map()))
    finally:
        kill_tree(proc)
    assert descendants(proc.pid) == []
