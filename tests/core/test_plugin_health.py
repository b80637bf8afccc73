"""What the host tells about a plugin's health: errors in a row, when the last error
happened, and the last lines the plugin logged (its stderr, its own log records, the host's
word on its failures), per key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from arcade_core import PluginHost, PluginLoadError, PluginNotFound
from arcade_core._logs import LogRing
from tests.core.hostkit import HEADER, host, install, wait_for

__all__ = ["host"]  # the fixture

FLAKY = HEADER + '''
import logging

log = logging.getLogger(__name__ + ".inner")


class Plugin:
    def __init__(self, config):
        self.fail = config.get("fail", True)
        log.warning("starting with fail=%s", self.fail)

    @hookimpl
    def collect(self):
        log.info("collecting")
        if self.fail:
            raise RuntimeError("disk /data is gone")
        return [Metric(name="ok", value=1.0)]
'''

NOISY_CHILD = HEADER + '''
import sys


class Plugin:
    def __init__(self, config):
        print("child says hello", file=sys.stderr, flush=True)

    @hookimpl
    def collect(self):
        print("about to fail", file=sys.stderr, flush=True)
        raise ValueError("bad reading")
'''

REJECTS = HEADER + '''
class Plugin:
    def __init__(self, config):
        raise ValueError("config 'path' must be an absolute path")
'''


def _texts(host: PluginHost, key: str, after: int = 0) -> list[str]:
    lines, _ = host.logs(key, after=after)
    return [f"{line.level} {line.text}" for line in lines]


def test_inline_errors_in_a_row_and_own_log_records(host: PluginHost, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    install(host, tmp_path, "flaky", source=FLAKY)
    host.load("flaky")
    for _ in range(3):
        host.hook.collect()
    status = host.status("flaky")
    assert status.errors == 3 and status.errors_in_a_row == 3
    assert status.last_error == "RuntimeError: disk /data is gone"
    assert status.error_at is not None and status.error_at > 0
    outcome = host.call("collect", keys=["flaky"])
    assert outcome.errors and host.status("flaky").errors_in_a_row == 4
    texts = _texts(host, "flaky")
    assert "WARNING starting with fail=True" in texts       # logged while constructed
    assert "INFO collecting" in texts                       # a child logger of its package
    assert texts.count("ERROR collect() failed: RuntimeError: disk /data is gone") == 4
    # A call that succeeds resets the run (not the totals).
    host.reconfigure("flaky", {"fail": False})
    host.hook.collect()
    status = host.status("flaky")
    assert status.errors_in_a_row == 0 and status.errors == 0 and status.error_at is None
    lines, last = host.logs("flaky")
    assert [line.seq for line in lines] == list(range(1, last + 1))   # kept across reloads
    newer, same_last = host.logs("flaky", after=last - 1)
    assert [line.seq for line in newer] == [last] and same_last == last
    # The handler goes away with the plugin; the ring stays.
    host.unload("flaky")
    logging.getLogger("flaky").warning("not the plugin's any more")
    assert "WARNING not the plugin's any more" not in _texts(host, "flaky")
    assert host.logs("flaky")[1] == last


def test_process_stderr_and_failures_are_kept(host: PluginHost, tmp_path: Path) -> None:
    install(host, tmp_path, "noisy", source=NOISY_CHILD)
    host.load("noisy", isolation="process")
    wait_for(lambda: "stderr child says hello" in _texts(host, "noisy"))
    host.hook.collect()
    wait_for(lambda: "stderr about to fail" in _texts(host, "noisy"))
    status = host.status("noisy")
    assert status.errors_in_a_row == 1 and status.pid is not None
    assert any(t.startswith("ERROR collect() failed:") and "bad reading" in t
               for t in _texts(host, "noisy"))


def test_a_load_that_fails_leaves_its_reason_in_the_logs(host: PluginHost,
                                                          tmp_path: Path) -> None:
    install(host, tmp_path, "rejects", source=REJECTS)
    for isolation in ("inline", "process"):
        with pytest.raises(PluginLoadError, match="absolute path"):
            host.load("rejects", isolation=isolation)
    texts = _texts(host, "rejects")
    assert sum("absolute path" in t and t.startswith("ERROR loading") for t in texts) == 2
    with pytest.raises(PluginNotFound, match="no logs"):
        host.logs("never-loaded")


def test_ring_is_bounded_in_lines_and_line_length() -> None:
    ring = LogRing(capacity=3, line_chars=10)
    ring.add("stderr", "one\n\ntwo\nthree\nfour-is-a-very-long-line")
    lines = ring.read()
    assert [line.seq for line in lines] == [2, 3, 4]      # blank line dropped, oldest gone
    assert lines[-1].text == "four-is-a…" and len(lines[-1].text) == 10
    assert [line.text for line in ring.read(after=2, limit=1)] == ["four-is-a…"]
    assert ring.read(limit=0) == []
