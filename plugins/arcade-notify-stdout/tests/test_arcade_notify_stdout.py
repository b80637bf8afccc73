"""arcade-notify-stdout: events printed as JSON lines by the plugin class, its manifest, and
its built wheel installed and loaded by a real PluginHost, in-process and in a child process."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import ModuleType

import pytest

from arcade_core import Event, InvalidConfig, Manifest
from arcade_core.testing import PluginProject
from tests.waiting import until_sync

DIST = Path(__file__).resolve().parent.parent
MANIFEST = DIST / "arcade_notify_stdout" / "arcade-plugin.json"


def _event() -> Event:
    return Event("job.finished", {"job_id": "42", "status": "succeeded", "exit_code": 0})


def test_notify_prints_the_event_as_one_json_line_on_stdout(
    arcade_module: ModuleType, capfd: pytest.CaptureFixture[str]
) -> None:
    event = _event()
    arcade_module.NotifyStdout({}).notify(event)
    out, err = capfd.readouterr()
    assert err == ""
    [line] = out.splitlines()
    assert Event.from_dict(json.loads(line)) == event


def test_stderr_stream_and_prefix(
    arcade_module: ModuleType, capfd: pytest.CaptureFixture[str]
) -> None:
    event = _event()
    arcade_module.NotifyStdout({"stream": "stderr", "prefix": "arcade-event: "}).notify(event)
    out, err = capfd.readouterr()
    assert out == ""
    assert err.endswith("\n")
    prefix, _, payload = err.rstrip("\n").partition(": ")
    assert prefix == "arcade-event"
    assert json.loads(payload) == event.to_dict()


def test_values_that_are_not_json_stay_on_one_line(
    arcade_module: ModuleType, capfd: pytest.CaptureFixture[str]
) -> None:
    event = Event("plugin.failed", {"error": "line one\nline two", "path": Path("/tmp/x")})
    arcade_module.NotifyStdout({}).notify(event)
    [line] = capfd.readouterr().out.splitlines()
    assert json.loads(line)["data"] == {"error": "line one\nline two", "path": "/tmp/x"}


def test_each_event_is_flushed_as_it_comes(
    arcade_module: ModuleType, capfd: pytest.CaptureFixture[str]
) -> None:
    plugin = arcade_module.NotifyStdout({})
    kinds = ["job.finished", "plugin.failed", "plugin.loaded"]
    for kind in kinds:
        plugin.notify(Event(kind))
    assert [json.loads(line)["kind"] for line in capfd.readouterr().out.splitlines()] == kinds


def test_unknown_stream_is_refused(arcade_module: ModuleType) -> None:
    with pytest.raises(ValueError, match="stream must be 'stdout' or 'stderr'"):
        arcade_module.NotifyStdout({"stream": "file"})


def test_manifest_parses_and_its_defaults_validate() -> None:
    manifest = Manifest.from_json(MANIFEST.read_text())
    assert manifest.type == "notifier"
    assert manifest.interval is None
    assert manifest.validate_config({}) == {"stream": "stdout", "prefix": ""}
    with pytest.raises(InvalidConfig, match=r"config\.stream"):
        manifest.validate_config({"stream": "file"})


def test_built_wheel_has_no_dependencies(arcade_project: PluginProject) -> None:
    from arcade_core import inspect_wheel

    info = inspect_wheel(arcade_project.wheel)
    assert info.entry_point is not None
    assert info.entry_point.value == "arcade_notify_stdout:NotifyStdout"
    assert info.requires_dist == ()
    assert info.manifest == Manifest.from_json(MANIFEST.read_text())


def test_loaded_in_process_prints_notified_events(
    tmp_path: Path, arcade_project: PluginProject, capfd: pytest.CaptureFixture[str]
) -> None:
    from arcade_core import PluginHost

    event = _event()
    with PluginHost(tmp_path / "home") as host:
        host.install([arcade_project.wheel])
        host.load("arcade-notify-stdout", config={"prefix": "event "}, isolation="inline")
        assert host.hook.notify(event=event) == []  # pluggy leaves out None results
        status = host.status("arcade-notify-stdout")
        assert (status.calls, status.errors) == (1, 0)
    lines = [line for line in capfd.readouterr().out.splitlines() if line.startswith("event ")]
    assert [json.loads(line.removeprefix("event ")) for line in lines] == [event.to_dict()]


def test_loaded_in_a_child_process_notify_succeeds_without_touching_our_stdout(
    tmp_path: Path,
    arcade_project: PluginProject,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from arcade_core import PluginHost

    caplog.set_level(logging.DEBUG)
    event = _event()
    with PluginHost(tmp_path / "home") as host:
        host.install([arcade_project.wheel])
        status = host.load("arcade-notify-stdout", config={"prefix": "event "}, isolation="process")
        assert status.pid is not None
        outcome = host.call("notify", event=event)
        assert outcome.errors == {}
        assert list(outcome.results) == ["arcade-notify-stdout"]
        assert host.status("arcade-notify-stdout").calls == 1
        # The child's stdout is the protocol channel: the plugin's line goes to its stderr
        # and from there to the host's log (or this process's stderr), never to our stdout.
        seen = ""

        def heard() -> bool:
            nonlocal seen
            seen += capfd.readouterr().err
            seen += "".join(r.getMessage() for r in caplog.records)
            return "event {" in seen

        until_sync(heard, what="the plugin's line on stderr or in the log")
    assert "event {" not in capfd.readouterr().out
    assert '"kind":"job.finished"' in seen
