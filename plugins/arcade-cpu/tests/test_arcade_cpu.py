"""arcade-cpu: the plugin class on real psutil readings, its manifest, and its built wheel
installed and loaded by a real PluginHost, in-process and in a child process."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from types import ModuleType

import psutil
import pytest

from arcade_core import InvalidConfig, Manifest, Metric
from arcade_core.testing import PluginProject

DIST = Path(__file__).resolve().parent.parent
MANIFEST = DIST / "arcade_cpu" / "arcade-plugin.json"


def _spin(seconds: float) -> None:
    """Keep one CPU busy in this thread for ``seconds``."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _percent_by_cpu(metrics: list[Metric]) -> dict[str, float]:
    return {m.labels["cpu"]: m.value for m in metrics if m.name == "cpu.percent"}


def test_collect_reports_total_and_every_cpu_within_0_and_100(arcade_module: ModuleType) -> None:
    cpu = arcade_module.Cpu({"percpu": True})
    _spin(0.05)
    metrics = cpu.collect()
    by_cpu = _percent_by_cpu(metrics)
    n = psutil.cpu_count()
    assert n is not None
    assert set(by_cpu) == {"total", *map(str, range(n))}
    assert all(0.0 <= value <= 100.0 for value in by_cpu.values())
    assert {m.unit for m in metrics if m.name == "cpu.percent"} == {"percent"}
    # The total is the busy share of all CPUs together: between the least and the most busy.
    per_cpu = [v for k, v in by_cpu.items() if k != "total"]
    assert min(per_cpu) - 0.1 <= by_cpu["total"] <= max(per_cpu) + 0.1


def test_busy_time_since_the_previous_collect_shows_in_the_total(
    arcade_module: ModuleType,
) -> None:
    cpu = arcade_module.Cpu({})
    _spin(0.2)
    by_cpu = _percent_by_cpu(cpu.collect())
    assert by_cpu["total"] > 0.0
    assert max(v for k, v in by_cpu.items() if k != "total") > 0.0


def test_each_instance_measures_from_its_own_baseline(arcade_module: ModuleType) -> None:
    first = arcade_module.Cpu({"percpu": False})
    second = arcade_module.Cpu({"percpu": False})
    _spin(0.2)
    first_total = _percent_by_cpu(first.collect())["total"]
    # A shared baseline (psutil.cpu_percent's) would leave the second instance an interval of
    # microseconds after the first one's call, and a reading of 0.0.
    second_total = _percent_by_cpu(second.collect())["total"]
    assert first_total > 0.0
    assert second_total > 0.0


def test_percpu_false_reports_only_the_total(arcade_module: ModuleType) -> None:
    metrics = arcade_module.Cpu({"percpu": False}).collect()
    assert [m.labels for m in metrics if m.name == "cpu.percent"] == [{"cpu": "total"}]


def test_load_averages_match_the_operating_system(arcade_module: ModuleType) -> None:
    metrics = {m.name: m.value for m in arcade_module.Cpu({}).collect()}
    expected = os.getloadavg()
    for name, value in zip(("cpu.load1", "cpu.load5", "cpu.load15"), expected, strict=True):
        assert metrics[name] >= 0.0
        # The kernel updates the averages every 5 s; allow for an update between the reads.
        assert math.isclose(metrics[name], value, abs_tol=1.0)


def test_load_average_false_leaves_the_load_metrics_out(arcade_module: ModuleType) -> None:
    names = {m.name for m in arcade_module.Cpu({"load_average": False}).collect()}
    assert names == {"cpu.percent"}


def test_metrics_of_one_collect_share_one_timestamp(arcade_module: ModuleType) -> None:
    before = time.time()
    metrics = arcade_module.Cpu({}).collect()
    assert len({m.timestamp for m in metrics}) == 1
    assert before <= metrics[0].timestamp <= time.time()


def test_manifest_parses_and_its_defaults_validate() -> None:
    manifest = Manifest.from_json(MANIFEST.read_text())
    assert manifest.type == "collector"
    assert manifest.isolation == "inline"
    assert manifest.interval is not None and manifest.interval > 0
    assert manifest.description
    assert manifest.validate_config({}) == {"percpu": True, "load_average": True}
    assert manifest.validate_config({"percpu": False})["percpu"] is False


def test_manifest_refuses_a_config_of_the_wrong_shape() -> None:
    manifest = Manifest.from_json(MANIFEST.read_text())
    with pytest.raises(InvalidConfig, match=r"config\.percpu"):
        manifest.validate_config({"percpu": "yes"})
    with pytest.raises(InvalidConfig, match="per_cpu"):
        manifest.validate_config({"per_cpu": True})


def test_built_wheel_declares_entry_point_manifest_and_psutil(
    arcade_project: PluginProject,
) -> None:
    from arcade_core import inspect_wheel

    info = inspect_wheel(arcade_project.wheel)
    assert (info.name, info.version) == ("arcade-cpu", "1.0.0")
    assert info.entry_point is not None
    assert info.entry_point.value == "arcade_cpu:Cpu"
    assert info.manifest == Manifest.from_json(MANIFEST.read_text())
    assert [r.split(">")[0].split("=")[0].strip() for r in info.requires_dist] == ["psutil"]


def test_the_harness_checks_the_wheel_like_publishing_does(
    arcade_project: PluginProject,
) -> None:
    assert arcade_project.check({"percpu": False}) == {"percpu": False, "load_average": True}
    assert [w.name.split("-")[0] for w in arcade_project.dependency_wheels] == ["psutil"]
    with pytest.raises(InvalidConfig, match=r"config\.percpu"):
        arcade_project.check({"percpu": "yes"})


def test_built_wheel_collects_through_plugin_host(
    arcade_project: PluginProject, arcade_isolation: str
) -> None:
    with arcade_project.loaded({"percpu": False}, isolation=arcade_isolation) as plugin:
        status = plugin.status
        assert (status.name, status.version, status.isolation) == (
            "arcade-cpu", "1.0.0", arcade_isolation,
        )
        assert status.state == "running"
        assert status.config == {"percpu": False, "load_average": True}
        _spin(0.05)
        metrics = plugin.collect()
    assert {m.name for m in metrics} == {"cpu.percent", "cpu.load1", "cpu.load5", "cpu.load15"}
    [total] = [m for m in metrics if m.name == "cpu.percent"]
    assert total.labels == {"cpu": "total"}
    assert 0.0 <= total.value <= 100.0
