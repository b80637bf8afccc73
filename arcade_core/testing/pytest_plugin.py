"""Arcade's pytest plugin: fixtures for testing an Arcade plugin project.

Registered through the ``pytest11`` entry point ``arcade``, so it is active in every pytest
session where ``arcade-fleet`` is installed; importing it imports nothing but this module
(the harness is imported when a fixture is first used). Disable it with ``-p no:arcade``.

Fixtures (for the plugin project that contains the test file: the nearest directory
upwards whose ``pyproject.toml`` declares an ``arcade.plugins`` entry point):

* ``arcade_project`` — its :class:`~arcade_core.testing.PluginProject`; the wheel is built
  once per session and project, under the session's temporary directory.
* ``arcade_isolation`` — ``"inline"`` and ``"process"``: a test using it runs once each.
* ``arcade_module`` — the entry point's module imported from the sources, removed from
  ``sys.modules`` after the test (so two projects with a package of the same name, tested in
  one session, never see each other's).

Dependency wheels come from the wheelhouse: ``--arcade-wheelhouse DIR``, else
``$ARCADE_WHEELHOUSE`` (a machine's cache), else the ini option ``arcade_wheelhouse``
(relative to the rootdir), else ``~/.cache/arcade/wheelhouse``; what it lacks is fetched
once with ``pip download``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from arcade_core.testing import PluginProject

__all__ = [
    "arcade_isolation",
    "arcade_module",
    "arcade_project",
    "pytest_addoption",
]

_projects = pytest.StashKey[dict[Path, "PluginProject"]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--arcade-wheelhouse`` and the ini option ``arcade_wheelhouse``."""
    group = parser.getgroup("arcade", "Arcade plugin harness")
    group.addoption(
        "--arcade-wheelhouse", metavar="DIR", default=None,
        help="directory of dependency wheels for Arcade plugin projects under test "
             "(fetched into it with pip download when missing)",
    )
    parser.addini(
        "arcade_wheelhouse", default="",
        help="directory of dependency wheels for Arcade plugin projects (rootdir-relative)",
    )


def _wheelhouse(config: pytest.Config) -> Path | None:
    option = config.getoption("arcade_wheelhouse")
    if option:
        return Path(option).resolve()
    if os.environ.get("ARCADE_WHEELHOUSE"):
        return Path(os.environ["ARCADE_WHEELHOUSE"]).resolve()
    ini = str(config.getini("arcade_wheelhouse") or "")
    if ini:
        return (config.rootpath / ini).resolve()
    return None  # the harness's default: ~/.cache/arcade/wheelhouse


@pytest.fixture
def arcade_project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> PluginProject:
    """The :class:`~arcade_core.testing.PluginProject` that contains this test file."""
    from arcade_core.testing import PluginProject

    projects = request.config.stash.setdefault(_projects, {})
    found = PluginProject.find(request.path, tmp_path_factory.getbasetemp())
    if found.root not in projects:
        workdir = tmp_path_factory.mktemp(f"arcade-{found.name}")
        projects[found.root] = PluginProject(
            found.root, workdir, wheelhouse=_wheelhouse(request.config)
        )
    return projects[found.root]


@pytest.fixture(params=["inline", "process"])
def arcade_isolation(request: pytest.FixtureRequest) -> str:
    """Each isolation mode in turn: the test runs once in-process and once in a child."""
    mode: str = request.param
    return mode


@pytest.fixture
def arcade_module(arcade_project: PluginProject) -> Iterator[ModuleType]:
    """The plugin's entry point module, imported from the project's sources for this test."""
    with arcade_project.source_module() as module:
        yield module
