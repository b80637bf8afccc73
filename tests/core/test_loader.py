"""In-process import and real unload of plugin environments."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from arcade_core import EntryPoint, PluginLoadError, _loader
from arcade_core._environment import Environment
from arcade_core._store import EnvironmentStore
from tests.core.hostkit import metric_plugin, plugin_wheel

HELPER = "VALUE = {value}\n"


@pytest.fixture
def store(tmp_path: Path) -> EnvironmentStore:
    return EnvironmentStore(tmp_path / "envs")


@pytest.fixture
def imports() -> Iterator[list[_loader.ImportedPlugin]]:
    """Every ImportedPlugin a test takes is released afterwards, whatever happens."""
    taken: list[_loader.ImportedPlugin] = []
    yield taken
    for imported in reversed(taken):
        _loader.release(imported)


def install(store: EnvironmentStore, tmp_path: Path, name: str, version: str,
            value: float, **kwargs: object) -> Environment:
    module = name.replace("-", "_")
    source = metric_plugin(value, extra=f"    from {module}.helper import VALUE as helper\n")
    wheel = plugin_wheel(tmp_path / "wheels", name, version, source,
                         extra_files={f"{module}/helper.py": HELPER.format(value=value)},
                         **kwargs)  # type: ignore[arg-type]
    return store.install([wheel])


def test_release_purges_modules_path_and_importer_cache(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    env = install(store, tmp_path, "loader-purge", "1.0.0", 1.0)
    path = str(env.site_packages)

    imported = _loader.import_plugin(env)
    plugin = _loader.instantiate(imported.target, {"k": "v"})
    assert plugin.collect()[0].value == 1.0 and plugin.config == {"k": "v"}
    assert path in sys.path and "loader_purge.helper" in sys.modules
    assert _loader.imported_paths()[path] == 1

    _loader.release(imported)

    assert path not in sys.path
    assert not any(key.startswith(path) for key in sys.path_importer_cache)
    assert not [name for name in sys.modules if name.startswith("loader_purge")]
    assert path not in _loader.imported_paths()


def test_shared_environment_stays_until_the_last_reference_goes(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    env = install(store, tmp_path, "loader-shared", "1.0.0", 1.0)
    first = _loader.import_plugin(env)
    second = _loader.import_plugin(env)
    assert first.target is second.target

    _loader.release(first)
    _loader.release(first)  # a second release of the same reference is a no-op
    assert "loader_shared" in sys.modules

    _loader.release(second)
    assert "loader_shared" not in sys.modules


def test_second_version_is_refused_while_the_first_is_imported(
    store: EnvironmentStore, tmp_path: Path, imports: list[_loader.ImportedPlugin]
) -> None:
    v1 = install(store, tmp_path, "loader-two", "1.0.0", 1.0)
    v2 = install(store, tmp_path, "loader-two", "2.0.0", 2.0)
    imports.append(_loader.import_plugin(v1))

    with pytest.raises(PluginLoadError, match=r"module 'loader_two' is already imported .* "
                                              r"isolation='process'"):
        _loader.import_plugin(v2)


def test_replacing_moves_v1_aside_and_abort_puts_it_back(
    store: EnvironmentStore, tmp_path: Path, imports: list[_loader.ImportedPlugin]
) -> None:
    v1 = install(store, tmp_path, "loader-swap", "1.0.0", 1.0)
    v2 = install(store, tmp_path, "loader-swap", "2.0.0", 2.0)
    old = _loader.import_plugin(v1)
    imports.append(old)
    old_plugin = _loader.instantiate(old.target, {})

    new = _loader.import_plugin(v2, replacing=v1)
    assert _loader.instantiate(new.target, {}).collect()[0].value == 2.0
    assert sys.modules["loader_swap.helper"].VALUE == 2.0
    assert str(v1.site_packages) not in sys.path

    _loader.abort(new)

    assert sys.modules["loader_swap.helper"].VALUE == 1.0
    assert str(v1.site_packages) in sys.path and str(v2.site_packages) not in sys.path
    assert old_plugin.collect()[0].value == 1.0


def test_committed_replacement_leaves_only_v2(
    store: EnvironmentStore, tmp_path: Path, imports: list[_loader.ImportedPlugin]
) -> None:
    v1 = install(store, tmp_path, "loader-commit", "1.0.0", 1.0)
    v2 = install(store, tmp_path, "loader-commit", "2.0.0", 2.0)
    old = _loader.import_plugin(v1)
    new = _loader.import_plugin(v2, replacing=v1)
    imports.append(new)

    _loader.commit(new)
    _loader.release(old)

    assert sys.modules["loader_commit.helper"].VALUE == 2.0
    assert str(v1.site_packages) not in _loader.imported_paths()
    assert str(v2.site_packages) in sys.path


def test_failed_import_leaves_nothing_behind(store: EnvironmentStore, tmp_path: Path) -> None:
    source = "import loader_broken.helper\nraise ImportError('missing native library')\n"
    wheel = plugin_wheel(tmp_path / "wheels", "loader-broken", "1.0.0", source,
                         extra_files={"loader_broken/helper.py": "X = 1\n"})
    env = store.install([wheel])

    with pytest.raises(PluginLoadError, match=r"failed to import: ImportError: missing native "
                                              r"library \(at .*__init__.py:2\)"):
        _loader.import_plugin(env)

    assert str(env.site_packages) not in sys.path
    assert not [name for name in sys.modules if name.startswith("loader_broken")]


def test_plugin_module_named_like_a_host_module_is_refused(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    import textwrap  # noqa: F401 - make sure the host has it imported

    wheel = plugin_wheel(tmp_path / "wheels", "loader-clash", "1.0.0",
                         extra_files={"textwrap/__init__.py": metric_plugin(1.0)})
    env = store.install([wheel])
    clash = dataclasses.replace(env, entry_point=EntryPoint("loader-clash", "textwrap", "Plugin"))

    with pytest.raises(PluginLoadError, match="clashes with a module the host already "
                                              "imported"):
        _loader.import_plugin(clash)
    assert str(env.site_packages) not in sys.path


def test_instantiate_passes_config_only_to_classes_that_take_it() -> None:
    class NoInit:
        pass

    class WithInit:
        def __init__(self, config: dict[str, int]) -> None:
            self.config = config

    module = sys.modules[__name__]
    assert isinstance(_loader.instantiate(NoInit, {"a": 1}), NoInit)
    assert _loader.instantiate(WithInit, {"a": 1}).config == {"a": 1}
    assert _loader.instantiate(module, {"a": 1}) is module
