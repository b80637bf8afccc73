"""Helpers for the PluginHost tests: plugin wheels from source snippets, hosts, children.

``plugin_wheel`` writes a real wheel (via :func:`tests.wheelmaker.make_wheel`) whose
package's ``__init__.py`` is the given source, written as is. ``host`` is a fixture with
tiny backoffs so supervision tests stay fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest

from arcade_core import Event, PluginHost
from tests.waiting import DEADLINE, until_sync
from tests.wheelmaker import make_wheel

HEADER = "from arcade_core import hookimpl, Metric, Event, JobContext, JobResult\n"


def metric_plugin(value: float, name: str = "value", *, extra: str = "") -> str:
    """Source of a class ``Plugin`` whose collect() returns one metric ``<name>``."""
    return HEADER + f'''
class Plugin:
    def __init__(self, config):
        self.config = config
{extra}
    @hookimpl
    def collect(self):
        labels = {{"k": str(self.config.get("k", ""))}}
        return [Metric(name={name!r}, value={value!r}, labels=labels)]
'''


def plugin_wheel(
    directory: Path,
    name: str,
    version: str = "1.0.0",
    source: str | None = None,
    *,
    manifest: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, str] | None = None,
    attr: str = "Plugin",
    requires: Iterable[str] = (),
) -> Path:
    """A plugin wheel whose package ``<name with _>`` has ``source`` as ``__init__.py``."""
    module = name.replace("-", "_").lower()
    files = {f"{module}/__init__.py": source if source is not None else metric_plugin(1.0)}
    files.update(extra_files or {})
    return make_wheel(
        directory / f"{name}-{version}",
        name,
        version,
        files=files,
        entry_points=[f"{name} = {module}:{attr}"],
        manifest=manifest,
        requires=requires,
    )


def install(host: PluginHost, tmp_path: Path, name: str, version: str = "1.0.0",
            source: str | None = None, **kwargs: Any) -> None:
    """Build a plugin wheel and install it into ``host``."""
    host.install([plugin_wheel(tmp_path / "wheels", name, version, source, **kwargs)])


def make_host(tmp_path: Path, **kwargs: Any) -> PluginHost:
    options: dict[str, Any] = {
        "call_timeout": DEADLINE,
        "restart_backoff": 0.01,
        "healthy_period": 60.0,
        "start_timeout": DEADLINE,
        "allow": None,
    }
    options.update(kwargs)
    return PluginHost(tmp_path / "home", **options)


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginHost]:
    """A host under ``tmp_path/home`` with fast supervision; closed after the test."""
    monkeypatch.delenv("ARCADE_PLUGINS", raising=False)
    with make_host(tmp_path) as h:
        yield h


class Recorder:
    """A host event listener that keeps what it heard."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self, key: str | None = None) -> list[str]:
        return [e.kind for e in self.events if key is None or e.data.get("key") == key]


def wait_for(predicate: Callable[[], bool], timeout: float = DEADLINE, what: str = "") -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    until_sync(predicate, timeout=timeout, what=what or repr(predicate))


def child_pids() -> set[int]:
    """PIDs of this process's living descendants (zombies excluded)."""
    pids = set()
    for proc in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                pids.add(proc.pid)
        except psutil.NoSuchProcess:
            continue
    return pids


def pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
