"""The public plugin test harness (arcade_core.testing and its pytest plugin), on real plugin
projects built into real wheels: two projects whose packages share one name, tested in one
pytest session in shuffled orders; and the harness's answers to projects that are wrong."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from arcade_core import InvalidConfig, PluginCallError
from arcade_core.testing import HarnessError, PluginProject

# The same package name in both projects: `sameplug`. Each reports its own mark, so a test
# that saw the other project's module (from sys.modules, or its wheel) would fail.
_PLUGIN = '''
from arcade_core import Metric, hookimpl

MARK = "{mark}"


class Plugin:
    def __init__(self, config):
        self.value = config["value"]

    @hookimpl
    def collect(self):
        if self.value < 0:
            raise RuntimeError("value is negative")
        return [Metric(MARK + ".value", self.value)]
'''

_MANIFEST = '''{{
  "description": "{mark} test plugin",
  "config_schema": {{
    "type": "object",
    "properties": {{"value": {{"type": "integer", "default": {default}}}}},
    "additionalProperties": false
  }}
}}
'''

_PYPROJECT = '''[build-system]
requires = ["flit_core>=3.9,<5"]
build-backend = "flit_core.buildapi"

[project]
name = "{mark}-plugin"
version = "1.0.0"
description = "{mark} test plugin"
requires-python = ">=3.11"
dependencies = [{dependencies}]

[tool.flit.module]
name = "sameplug"

[project.entry-points."arcade.plugins"]
{mark} = "sameplug:Plugin"
'''

# The same test file name in both projects, too (pytest needs --import-mode=importlib then).
_TEST = '''
import pytest

from arcade_core import PluginCallError


def test_source_module_is_this_projects(arcade_module):
    assert arcade_module.MARK == "{mark}"
    assert arcade_module.Plugin({{"value": 2}}).collect()[0].value == 2


def test_wheel_manifest_and_config_check(arcade_project):
    assert arcade_project.name == "{mark}-plugin"
    assert arcade_project.manifest.description == "{mark} test plugin"
    assert arcade_project.check() == {{"value": {default}}}


def test_collect_through_a_host(arcade_project, arcade_isolation):
    with arcade_project.loaded({{"value": 5}}, isolation=arcade_isolation) as plugin:
        assert plugin.status.isolation == arcade_isolation
        [metric] = plugin.collect()
    assert (metric.name, metric.value) == ("{mark}.value", 5)


def test_a_failing_hook_raises_its_error(arcade_project, arcade_isolation):
    with arcade_project.loaded({{"value": -1}}, isolation=arcade_isolation) as plugin:
        with pytest.raises(PluginCallError, match="value is negative"):
            plugin.collect()
'''

# Shuffles the collected tests with the seed in $SHUFFLE_SEED: the order is random, and
# reproducible from the seed printed in the test's failure.
_SHUFFLE = '''
import os
import random


def pytest_collection_modifyitems(session, config, items):
    random.Random(int(os.environ["SHUFFLE_SEED"])).shuffle(items)
'''


def _project(root: Path, mark: str, default: int, dependencies: str = "") -> Path:
    (root / "sameplug").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text(
        _PYPROJECT.format(mark=mark, dependencies=dependencies))
    (root / "sameplug" / "__init__.py").write_text(_PLUGIN.format(mark=mark))
    (root / "sameplug" / "arcade-plugin.json").write_text(
        _MANIFEST.format(mark=mark, default=default))
    (root / "tests" / "test_sameplug.py").write_text(
        textwrap.dedent(_TEST.format(mark=mark, default=default)))
    return root


@pytest.mark.parametrize("seed", [1, 2])
def test_two_projects_with_one_package_name_pass_in_one_session_in_any_order(
    tmp_path: Path, seed: int
) -> None:
    alpha = _project(tmp_path / "alpha", "alpha", 1, dependencies='"six>=1.10"')
    beta = _project(tmp_path / "beta", "beta", 2)
    (tmp_path / "shuffle_order.py").write_text(_SHUFFLE)
    order = [alpha, beta] if seed % 2 else [beta, alpha]
    env = {**os.environ, "SHUFFLE_SEED": str(seed), "PYTHONPATH": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "shuffle_order", "-p", "no:cacheprovider",
         "-p", "no:asyncio",
         "-W", "error", "--import-mode=importlib", "--rootdir", str(tmp_path),
         *map(str, order)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert run.returncode == 0, f"seed {seed}:\n{run.stdout}\n{run.stderr}"
    assert re.search(r"\b12 passed\b", run.stdout), run.stdout


def test_check_refuses_a_config_the_schema_refuses(tmp_path: Path) -> None:
    project = PluginProject(_project(tmp_path / "p", "gamma", 3), tmp_path / "work")
    with pytest.raises(InvalidConfig, match=r"config\.value"):
        project.check({"value": "three"})
    with pytest.raises(InvalidConfig, match="colour"):
        project.check({"colour": "red"})


def test_loaded_plugins_leave_nothing_imported(tmp_path: Path) -> None:
    project = PluginProject(_project(tmp_path / "p", "delta", 3), tmp_path / "work")
    with project.loaded() as plugin:
        assert plugin.collect()[0].value == 3
        assert "sameplug" in sys.modules
    assert "sameplug" not in sys.modules
    with project.source_module() as module:
        assert module.MARK == "delta"
    assert "sameplug" not in sys.modules


def test_a_failed_call_names_the_plugin_and_hook(tmp_path: Path) -> None:
    project = PluginProject(_project(tmp_path / "p", "eps", 3), tmp_path / "work")
    with project.loaded({"value": -1}) as plugin, pytest.raises(PluginCallError) as caught:
        plugin.collect()
    assert (caught.value.plugin, caught.value.hook) == ("eps-plugin", "collect")


def test_find_outside_a_plugin_project_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "not-a-plugin"\n')
    with pytest.raises(HarnessError, match=r"no plugin project above .*arcade\.plugins"):
        PluginProject.find(tmp_path / "tests" / "test_x.py", tmp_path / "work")


def test_a_project_that_does_not_build_says_why(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "zeta", 3)
    shutil.rmtree(root / "sameplug")  # flit needs the module it is told to package
    with pytest.raises(HarnessError, match="cannot build a wheel from"):
        _ = PluginProject(root, tmp_path / "work").wheel


def test_a_project_with_two_entry_points_is_refused(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "eta", 3)
    text = (root / "pyproject.toml").read_text() + 'other = "sameplug:Plugin"\n'
    (root / "pyproject.toml").write_text(text)
    with pytest.raises(HarnessError, match="exactly one entry point"):
        PluginProject(root, tmp_path / "work")


_PUSHING = '''
from arcade_core import Metric, hookimpl


class Plugin:
    def __init__(self, config, metrics):
        metrics.push([Metric("pushed.interval", metrics.interval), {"name": "pushed.n",
                                                                     "value": 2}])

    @hookimpl
    def collect(self):
        return []
'''


@pytest.mark.parametrize("isolation", ["inline", "process"])
def test_the_harness_keeps_what_a_plugin_pushes(tmp_path: Path, isolation: str) -> None:
    root = _project(tmp_path / "p", "push", 1)
    (root / "sameplug" / "__init__.py").write_text(_PUSHING)
    project = PluginProject(root, tmp_path / "work")
    with project.loaded(isolation=isolation, interval=7) as plugin:
        pushed = plugin.wait_pushed(2, timeout=60)
        assert [(m.name, m.value) for m in pushed] == [("pushed.interval", 7.0),
                                                       ("pushed.n", 2.0)]
        assert plugin.pushed() == pushed
        with pytest.raises(TimeoutError, match=r"pushed 2 metrics within 0\.01s, not 3"):
            plugin.wait_pushed(3, timeout=0.01)
