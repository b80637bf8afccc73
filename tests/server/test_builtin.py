"""Building plugin source trees into wheels (PEP 517, offline) and gathering the dependency
wheels their Requires-Dist names: arcade_core.builtin."""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

import pytest

from arcade_core.builtin import (
    BUILTIN_PLUGINS_DIR,
    PluginBuildError,
    build_plugin_wheel,
    builtin_dependency_wheels,
    builtin_plugin_sources,
)
from tests.wheelmaker import make_wheel

FLIT = '[build-system]\nrequires = ["flit_core>=3.12,<5"]\nbuild-backend = "flit_core.buildapi"\n'


def _project(root: Path, name: str = "arcade-demo", build_system: str = FLIT) -> Path:
    module = name.replace("-", "_")
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text('"""Demo."""\n')
    (root / module / "arcade-plugin.json").write_text('{"type": "collector"}')
    (root / "pyproject.toml").write_text(
        build_system
        + f'[project]\nname = "{name}"\nversion = "2.0.0"\ndescription = "d"\n'
        + 'requires-python = ">=3.11"\n'
        + 'dependencies = ["psutil>=5.9"]\n'
        + f'[project.entry-points."arcade.plugins"]\ndemo = "{module}"\n'
    )
    return root


def test_builtin_plugin_sources_are_the_plugins_directory_of_this_checkout() -> None:
    sources = builtin_plugin_sources()
    assert {"arcade-cpu", "arcade-memory", "arcade-notify-stdout"} <= set(sources)
    assert all(path.parent == BUILTIN_PLUGINS_DIR for path in sources.values())


def test_builtin_plugin_sources_outside_a_source_checkout_say_so(tmp_path: Path) -> None:
    with pytest.raises(PluginBuildError, match="only with a source checkout"):
        builtin_plugin_sources(tmp_path / "site-packages" / "plugins")


def test_built_wheels_hold_the_builtin_plugins_and_their_manifests(
    builtin_wheels: dict[str, Path],
) -> None:
    assert set(builtin_wheels) == set(builtin_plugin_sources())
    for name, wheel in builtin_wheels.items():
        module = name.replace("-", "_")
        assert wheel.name == f"{module}-1.0.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel) as archive:
            members = set(archive.namelist())
        assert {f"{module}/__init__.py", f"{module}/arcade-plugin.json"} <= members
        assert not any("/tests/" in m or m.startswith("tests/") for m in members)


def test_flit_build_runs_in_process_and_leaves_process_state_as_it_was(tmp_path: Path) -> None:
    source = _project(tmp_path / "src")
    out = tmp_path / "out"
    cwd, argv, path = os.getcwd(), list(sys.argv), list(sys.path)
    wheel = build_plugin_wheel(source, out)
    assert (os.getcwd(), sys.argv, sys.path) == (cwd, argv, path)
    assert "_PYPROJECT_HOOKS_BUILD_BACKEND" not in os.environ
    assert wheel == out.resolve() / "arcade_demo-2.0.0-py3-none-any.whl"
    assert sorted(p.name for p in out.iterdir()) == [wheel.name]  # no staging dir left
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read("arcade_demo-2.0.0.dist-info/METADATA").decode()
    assert "Requires-Dist: psutil>=5.9" in metadata


def test_other_backends_run_in_a_subprocess(tmp_path: Path) -> None:
    # An in-tree backend (not known to be side-effect free) that records the pid it ran in.
    source = _project(
        tmp_path / "src",
        build_system=(
            '[build-system]\nrequires = ["flit_core>=3.12,<5"]\n'
            'build-backend = "pidbackend"\nbackend-path = ["."]\n'
        ),
    )
    (source / "pidbackend.py").write_text(
        "import os\n"
        "from flit_core import buildapi\n"
        "get_requires_for_build_wheel = buildapi.get_requires_for_build_wheel\n"
        "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n"
        "    with open('built-by.pid', 'w') as f:\n"
        "        f.write(str(os.getpid()))\n"
        "    return buildapi.build_wheel(wheel_directory, config_settings, metadata_directory)\n"
    )
    wheel = build_plugin_wheel(source, tmp_path / "out")
    assert wheel.is_file()
    assert int((source / "built-by.pid").read_text()) != os.getpid()


def test_backend_failure_names_the_source_and_leaves_no_partial_wheel(tmp_path: Path) -> None:
    source = _project(tmp_path / "src")
    (source / "pyproject.toml").write_text(
        (source / "pyproject.toml").read_text().replace('name = "arcade-demo"', 'name = "nomod"')
    )
    out = tmp_path / "out"
    with pytest.raises(PluginBuildError, match=r"cannot build a wheel from .*src: ") as info:
        build_plugin_wheel(source, out)
    assert "nomod" in str(info.value)
    assert list(out.iterdir()) == []


def test_missing_build_requirement_is_named_with_how_to_install_it(tmp_path: Path) -> None:
    source = _project(
        tmp_path / "src",
        build_system=(
            '[build-system]\nrequires = ["arcade-no-such-backend>=1"]\n'
            'build-backend = "flit_core.buildapi"\n'
        ),
    )
    with pytest.raises(
        PluginBuildError, match=r"arcade-no-such-backend.* not installed.*pip install"
    ):
        build_plugin_wheel(source, tmp_path / "out")


def test_a_directory_without_pyproject_is_not_a_plugin_source_tree(tmp_path: Path) -> None:
    with pytest.raises(PluginBuildError, match=r"has no pyproject\.toml"):
        build_plugin_wheel(tmp_path, tmp_path / "out")


def test_dependency_wheels_follow_requires_dist_without_host_provided_or_inapplicable_ones(
    tmp_path: Path, dependency_wheelhouse: Path
) -> None:
    plugin = make_wheel(
        tmp_path,
        "arcade-deps",
        requires=[
            "six>=1.10",
            "pluggy>=1.5,<2",
            "arcade>=0.1",
            "colorama; sys_platform == 'win32' and python_version < '3'",
            "rich; extra == 'fancy'",
        ],
    )
    wheels = builtin_dependency_wheels({"arcade-deps": plugin}, dependency_wheelhouse)
    assert [w.name.split("-")[0] for w in wheels] == ["six"]
    assert wheels[0].parent == dependency_wheelhouse


def test_dependency_wheels_include_the_dependencies_of_dependencies(
    tmp_path: Path, dependency_wheelhouse: Path
) -> None:
    plugin = make_wheel(tmp_path, "arcade-pretty", requires=["rich"])
    # A wheelhouse of its own for rich's tree (filled once, reused offline afterwards).
    wheels = builtin_dependency_wheels([plugin], dependency_wheelhouse / "rich")
    names = [w.name.split("-")[0].lower() for w in wheels]
    assert names[0] == "rich"
    assert {"markdown_it_py", "mdurl", "pygments"} <= set(names)
    assert len(names) == len(set(names))


def test_dependency_wheels_of_the_builtin_plugins_are_psutil(
    builtin_wheels: dict[str, Path], dependency_wheelhouse: Path, psutil_wheel: Path
) -> None:
    assert builtin_dependency_wheels(builtin_wheels, dependency_wheelhouse) == [psutil_wheel]


def test_failure_in_a_subprocess_backend_reports_the_backend_output(tmp_path: Path) -> None:
    source = _project(
        tmp_path / "src",
        build_system=(
            '[build-system]\nrequires = []\nbuild-backend = "brokenbackend"\nbackend-path = ["."]\n'
        ),
    )
    (source / "brokenbackend.py").write_text(
        "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n"
        "    raise RuntimeError('the frobnicator is missing')\n"
    )
    with pytest.raises(PluginBuildError, match="the frobnicator is missing"):
        build_plugin_wheel(source, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
