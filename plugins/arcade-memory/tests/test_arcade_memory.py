"""arcade-memory: the plugin class on real psutil readings, its manifest, and its built wheel
installed and loaded by a real PluginHost, in-process and in a child process."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import psutil
import pytest

from arcade_core import InvalidConfig, Manifest, Metric
from arcade_core.testing import PluginProject

DIST = Path(__file__).resolve().parent.parent
MANIFEST = DIST / "arcade_memory" / "arcade-plugin.json"
UNITS = {
    "memory.used": "bytes",
    "memory.available": "bytes",
    "memory.percent": "percent",
    "swap.used": "bytes",
    "swap.percent": "percent",
}


def _check_sane(metrics: list[Metric]) -> None:
    """Every reading within what this machine's memory and swap sizes allow."""
    by_name = {m.name: m for m in metrics}
    total = psutil.virtual_memory().total
    assert 0 < by_name["memory.used"].value <= total
    assert 0 < by_name["memory.available"].value <= total
    assert 0.0 < by_name["memory.percent"].value <= 100.0
    if "swap.used" in by_name:
        assert 0 <= by_name["swap.used"].value <= psutil.swap_memory().total
        assert 0.0 <= by_name["swap.percent"].value <= 100.0
    for metric in metrics:
        assert metric.unit == UNITS[metric.name]
        assert metric.labels == {}


def test_collect_reports_memory_and_swap_in_bytes_and_percent(arcade_module: ModuleType) -> None:
    metrics = arcade_module.Memory({"include_swap": True}).collect()
    assert [m.name for m in metrics] == list(UNITS)
    _check_sane(metrics)


def test_readings_follow_psutil(arcade_module: ModuleType) -> None:
    by_name = {m.name: m.value for m in arcade_module.Memory({}).collect()}
    now = psutil.virtual_memory()
    # Memory moves between two reads; a tenth of the total is far more than it moves here.
    slack = now.total / 10
    assert abs(by_name["memory.used"] - now.used) < slack
    assert abs(by_name["memory.available"] - now.available) < slack
    assert abs(by_name["memory.percent"] - now.percent) < 10.0


def test_include_swap_false_leaves_swap_out(arcade_module: ModuleType) -> None:
    metrics = arcade_module.Memory({"include_swap": False}).collect()
    assert [m.name for m in metrics] == ["memory.used", "memory.available", "memory.percent"]
    _check_sane(metrics)


def test_manifest_parses_and_its_defaults_validate() -> None:
    manifest = Manifest.from_json(MANIFEST.read_text())
    assert manifest.type == "collector"
    assert manifest.isolation == "inline"
    assert manifest.interval is not None and manifest.interval > 0
    assert manifest.validate_config({}) == {"include_swap": True}
    with pytest.raises(InvalidConfig, match=r"config\.include_swap"):
        manifest.validate_config({"include_swap": 1})


def test_built_wheel_declares_entry_point_manifest_and_psutil(
    arcade_project: PluginProject,
) -> None:
    from arcade_core import inspect_wheel

    info = inspect_wheel(arcade_project.wheel)
    assert (info.name, info.version) == ("arcade-memory", "1.0.0")
    assert info.entry_point is not None
    assert info.entry_point.value == "arcade_memory:Memory"
    assert info.manifest == Manifest.from_json(MANIFEST.read_text())
    assert [r.split(">")[0].split("=")[0].strip() for r in info.requires_dist] == ["psutil"]


@pytest.mark.parametrize("isolation", ["inline", "process"])
def test_built_wheel_collects_through_plugin_host(
    tmp_path: Path, arcade_project: PluginProject, isolation: str
) -> None:
    from arcade_core import PluginHost

    with PluginHost(tmp_path / "home") as host:
        host.install([arcade_project.wheel, *arcade_project.dependency_wheels])
        status = host.load("arcade-memory", config={"include_swap": False}, isolation=isolation)
        assert (status.isolation, status.state) == (isolation, "running")
        [metrics] = host.hook.collect()
    assert [m.name for m in metrics] == ["memory.used", "memory.available", "memory.percent"]
    _check_sane(metrics)
