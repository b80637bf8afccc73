"""Plugin environments: built offline from real wheels, atomically, once per plugin version."""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from arcade_core import EntryPoint, InstallError, InvalidWheel, PluginNotFound, inspect_wheel
from arcade_core._environment import ENV_FILENAME, Environment, WheelRecord
from arcade_core._store import EnvironmentStore
from tests.wheelmaker import make_wheel

PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"

USES_SIX = """\
import six


class Plugin:
    def __init__(self, config):
        self.config = config

    def collect(self):
        return six.text_type("ok")
"""


@pytest.fixture
def store(tmp_path: Path) -> EnvironmentStore:
    return EnvironmentStore(tmp_path / "envs")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(store: EnvironmentStore) -> list[str]:
    return sorted(p.name for p in store.root.iterdir() if p.name.startswith("."))


def run_in_env(env: Environment, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with the environment's own interpreter and a clean process environment."""
    return subprocess.run(
        [str(env.python), "-c", code],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        cwd=env.path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# ---------------------------------------------------------------------------------------------
# Building


def test_tiny_plugin_env_has_only_the_files_it_needs(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path / "wheels", "Tiny_Plugin", "1.0.0", manifest={"interval": 3})
    env = store.install([wheel])
    digest = sha256(wheel)
    assert env.path == store.root / "tiny-plugin" / f"1.0.0-{digest[:8]}"
    assert (env.name, env.version, env.key, env.sha256) == (
        "tiny-plugin", "1.0.0", "tiny-plugin@1.0.0", digest
    )
    assert env.entry_point == EntryPoint("Tiny_Plugin", "tiny_plugin", "Plugin")
    assert env.manifest.interval == 3.0
    assert env.wheels == (WheelRecord(wheel.name, digest, wheel.stat().st_size),)
    assert env.site_packages == env.path / "lib" / PY / "site-packages"
    assert env.python == env.path / "bin" / "python"

    base = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    assert env.python.is_symlink() and Path(os.readlink(env.python)) == base
    cfg = (env.path / "pyvenv.cfg").read_text()
    assert f"home = {base.parent}\n" in cfg
    assert "include-system-site-packages = false\n" in cfg
    assert f"version = {'.'.join(map(str, sys.version_info[:3]))}\n" in cfg

    files = sorted(str(p.relative_to(env.path)) for p in env.path.rglob("*") if not p.is_dir())
    site = f"lib/{PY}/site-packages"
    assert files == sorted([
        ENV_FILENAME,
        "bin/python",
        "pyvenv.cfg",
        f"{site}/tiny_plugin/__init__.py",
        f"{site}/tiny_plugin/arcade-plugin.json",
        f"{site}/Tiny_Plugin-1.0.0.dist-info/METADATA",
        f"{site}/Tiny_Plugin-1.0.0.dist-info/RECORD",
        f"{site}/Tiny_Plugin-1.0.0.dist-info/WHEEL",
        f"{site}/Tiny_Plugin-1.0.0.dist-info/entry_points.txt",
    ])
    assert leftovers(store) == []


def test_env_record_is_written_and_read_back(store: EnvironmentStore, tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "default": 2}}}
    wheel = make_wheel(tmp_path, "recorded", manifest={"config_schema": schema,
                                                       "isolation": "process"})
    env = store.install([wheel])
    data = json.loads((env.path / ENV_FILENAME).read_text())
    assert data["name"] == "recorded" and data["version"] == "1.0.0"
    assert data["entry_point"] == {"name": "recorded", "module": "recorded", "attr": "Plugin"}
    assert data["manifest"]["isolation"] == "process"
    assert data["wheels"] == [{"filename": wheel.name, "sha256": env.sha256,
                               "size": wheel.stat().st_size}]
    again = store.get("recorded")
    assert again == env
    assert again.manifest == inspect_wheel(wheel).manifest
    assert again.manifest.validate_config({}) == {"n": 2}


def test_plugin_with_real_dependency_is_installed_offline_and_importable(
    store: EnvironmentStore,
    tmp_path: Path,
    third_party_wheels: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    six = third_party_wheels["six"]
    plugin = make_wheel(tmp_path, "uses-six", requires=["six>=1.16", "pluggy>=1"],
                        files={"uses_six/__init__.py": USES_SIX})
    unused = make_wheel(tmp_path, "unused-dep", entry_points=[])

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("installing must not touch the network or start processes")

    with monkeypatch.context() as patch:
        patch.setattr(socket.socket, "connect", forbidden)
        patch.setattr(socket, "getaddrinfo", forbidden)
        patch.setattr(subprocess.Popen, "__init__", forbidden)
        env = store.install([six, unused, plugin])

    assert [w.filename for w in env.wheels] == [plugin.name, six.name]
    assert not (env.site_packages / "unused_dep").exists()
    dists = {d.metadata["Name"]: d.version
             for d in importlib.metadata.distributions(path=[str(env.site_packages)])}
    assert dists == {"uses-six": "1.0.0", "six": "1.17.0"}

    proc = run_in_env(
        env,
        "import sys, six, uses_six\n"
        "print(sys.prefix)\n"
        "print(six.__file__)\n"
        "print(uses_six.Plugin({}).collect())\n"
        "try:\n    import pluggy\nexcept ImportError:\n    print('no pluggy')\n",
    )
    assert proc.returncode == 0, proc.stderr
    prefix, six_file, collected, pluggy_line = proc.stdout.splitlines()
    assert Path(prefix) == env.path
    assert Path(six_file) == env.site_packages / "six.py"
    assert collected == "ok"
    assert pluggy_line == "no pluggy"  # host-provided: never in the env, no system leak


def test_no_bytecode_is_compiled(store: EnvironmentStore, tmp_path: Path,
                                 third_party_wheels: dict[str, Path]) -> None:
    plugin = make_wheel(tmp_path, "nobyte", requires=["six"])
    env = store.install([plugin, third_party_wheels["six"]])
    assert not [p for p in env.path.rglob("*") if p.suffix == ".pyc" or p.name == "__pycache__"]


def test_host_provided_requirements_are_never_installed(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    pluggy_version = importlib.metadata.version("pluggy")
    fake_pluggy = make_wheel(tmp_path, "pluggy", pluggy_version, entry_points=[],
                             files={"pluggy/__init__.py": "raise SystemExit('shadowed!')\n"})
    fake_arcade = make_wheel(tmp_path, "arcade", "0.1.0", entry_points=[],
                             files={"arcade_core/__init__.py": "raise SystemExit('shadowed!')\n"})
    plugin = make_wheel(tmp_path, "hosted", requires=["pluggy>=1.5", "arcade"])
    env = store.install([plugin, fake_pluggy, fake_arcade])
    assert [w.filename for w in env.wheels] == [plugin.name]
    assert not (env.site_packages / "pluggy").exists()
    assert not (env.site_packages / "arcade_core").exists()


def test_scripts_point_at_the_final_env_interpreter(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    tool = make_wheel(
        tmp_path,
        "tooly",
        entry_points=["[console_scripts]", "tooly = tooly:main"],
        files={
            "tooly/__init__.py": "import sys\ndef main():\n    print('tool in', sys.prefix)\n",
            "tooly-1.0.0.data/scripts/tooly-raw": "#!python\nprint('raw')\n",
        },
    )
    plugin = make_wheel(tmp_path, "scripted", requires=["tooly"])
    env = store.install([plugin, tool])
    launcher = env.path / "bin" / "tooly"
    raw = env.path / "bin" / "tooly-raw"
    assert launcher.read_text().startswith(f"#!{env.python}\n")
    assert raw.read_text() == f"#!{env.python}\nprint('raw')\n"
    proc = subprocess.run([str(launcher)], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", "")}, check=False)
    assert proc.stdout.strip() == f"tool in {env.path}", proc.stderr


def test_plugin_depending_on_another_plugin_wheel_is_the_one_installed(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    base = make_wheel(tmp_path, "base-plugin")
    top = make_wheel(tmp_path, "top-plugin", requires=["base-plugin"])
    env = store.install([base, top])
    assert env.name == "top-plugin"
    assert [w.filename for w in env.wheels] == [top.name, base.name]


# ---------------------------------------------------------------------------------------------
# Idempotence and concurrency


def test_installing_twice_is_a_no_op(store: EnvironmentStore, tmp_path: Path,
                                     third_party_wheels: dict[str, Path]) -> None:
    six = third_party_wheels["six"]
    plugin = make_wheel(tmp_path, "again", requires=["six"])
    first = store.install([plugin, six])
    record = first.path / ENV_FILENAME
    stamp = record.stat().st_mtime_ns, record.stat().st_ino
    second = store.install([six, plugin])
    assert second == first
    assert (record.stat().st_mtime_ns, record.stat().st_ino) == stamp
    assert [e.path for e in store.list()] == [first.path]
    # Extra wheels the env was not built from take the full path, still to the same env.
    extra = make_wheel(tmp_path, "extra-dep", entry_points=[])
    assert store.install([plugin, six, extra]) == first


def test_the_same_wheel_given_twice_is_installed_once(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "doubled")
    assert [w.filename for w in store.install([wheel, wheel]).wheels] == [wheel.name]


def test_republished_wheel_with_same_version_gets_its_own_env(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    one = store.install([make_wheel(tmp_path / "a", "same", summary="first build")])
    two = store.install([make_wheel(tmp_path / "b", "same", summary="second build")])
    assert one.path != two.path and one.version == two.version
    assert store.get("same", "1.0.0") == max((one, two), key=lambda e: e.created_at)


def test_concurrent_installs_of_one_plugin_build_one_env(
    store: EnvironmentStore, tmp_path: Path, third_party_wheels: dict[str, Path]
) -> None:
    plugin = make_wheel(tmp_path, "racy", requires=["six"])
    wheels = [plugin, third_party_wheels["six"]]
    barrier = threading.Barrier(4)

    def install() -> Environment:
        barrier.wait()
        return store.install(wheels)

    with ThreadPoolExecutor(4) as pool:
        envs = list(pool.map(lambda _: install(), range(4)))
    assert len({e.path for e in envs}) == 1
    assert len(store.list()) == 1
    assert leftovers(store) == []


# ---------------------------------------------------------------------------------------------
# Refusals: nothing is left behind


def test_missing_dependency_is_refused_naming_it(store: EnvironmentStore, tmp_path: Path) -> None:
    plugin = make_wheel(tmp_path, "lonely", requires=["six>=1.16"])
    with pytest.raises(InstallError) as excinfo:
        store.install([plugin])
    assert str(excinfo.value) == (
        "plugin 'lonely' requires six>=1.16, but no wheel for 'six' was given; publish its "
        "wheel together with the plugin"
    )
    assert store.list() == [] and leftovers(store) == []


def test_incompatible_host_requirement_is_refused(store: EnvironmentStore, tmp_path: Path) -> None:
    plugin = make_wheel(tmp_path, "oldpluggy", requires=["pluggy<1"])
    with pytest.raises(InstallError, match=r"^plugin 'oldpluggy' requires pluggy<1, but the host "
                                           r"provides pluggy \d"):
        store.install([plugin])
    assert store.list() == []


def test_dependency_with_tampered_file_is_refused_while_unpacking(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    dep = make_wheel(tmp_path, "tampered-dep", entry_points=[],
                     bad_record_for="tampered_dep/__init__.py")
    plugin = make_wheel(tmp_path, "victim", requires=["tampered-dep"])
    with pytest.raises(InvalidWheel) as excinfo:
        store.install([plugin, dep])
    assert str(excinfo.value) == (
        f"{dep.name}: 'tampered_dep/__init__.py' does not match its RECORD hash (the file was "
        "changed after the wheel was built)"
    )
    assert store.list() == [] and leftovers(store) == []
    assert not (store.root / "victim").exists()


def test_hostile_dependency_wheel_is_refused(store: EnvironmentStore, tmp_path: Path) -> None:
    dep = make_wheel(tmp_path, "slippery", entry_points=[],
                     extra_members={"../../outside.py": b"x"})
    plugin = make_wheel(tmp_path, "trusting", requires=["slippery"])
    with pytest.raises(InvalidWheel, match=r"contains '\.\.' \(path traversal"):
        store.install([plugin, dep])
    assert not (tmp_path / "outside.py").exists() and store.list() == []


def test_expected_sha256_mismatch_is_refused_naming_both(
    store: EnvironmentStore, tmp_path: Path, third_party_wheels: dict[str, Path]
) -> None:
    six = third_party_wheels["six"]
    plugin = make_wheel(tmp_path, "checked", requires=["six"])
    wrong = "ab" * 32
    with pytest.raises(InvalidWheel) as excinfo:
        store.install([plugin, six], expected_sha256={six.name: wrong,
                                                      plugin.name: sha256(plugin)})
    assert str(excinfo.value) == (
        f"{six.name}: sha256 mismatch: expected {wrong}, got {sha256(six)}"
    )
    env = store.install([plugin, six], expected_sha256={six.name: sha256(six)})
    # The no-op path checks expectations too.
    with pytest.raises(InvalidWheel, match=r"sha256 mismatch: expected abab"):
        store.install([plugin, six], expected_sha256={six.name: wrong})
    with pytest.raises(InvalidWheel, match=rf"{plugin.name}: sha256 mismatch"):
        store.install([plugin, six], expected_sha256={plugin.name: wrong})
    assert store.list() == [env]


def test_no_plugin_among_the_wheels_is_refused(store: EnvironmentStore, tmp_path: Path) -> None:
    dep = make_wheel(tmp_path, "justalib", entry_points=[])
    with pytest.raises(InstallError, match=r"none of the given wheels \(justalib-1\.0\.0-py3-none"
                                           r"-any\.whl\) declares an entry point in group"):
        store.install([dep])
    with pytest.raises(InstallError, match=r"^no wheels given"):
        store.install([])


def test_several_unrelated_plugins_are_refused(store: EnvironmentStore, tmp_path: Path) -> None:
    with pytest.raises(InstallError, match=r"several given wheels declare an 'arcade\.plugins' "
                                           r"entry point"):
        store.install([make_wheel(tmp_path, "one"), make_wheel(tmp_path, "two")])


def test_plugin_with_several_entry_points_is_refused(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "hydra", entry_points=["a = hydra:Plugin", "b = hydra:Plugin"])
    with pytest.raises(InvalidWheel, match=r"declares 2 entry points in group 'arcade\.plugins' "
                                           r"\(a, b\); a plugin needs exactly one"):
        store.install([wheel])


def test_host_package_cannot_be_installed_as_a_plugin(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "pluggy", "1.0.0")
    with pytest.raises(InstallError, match=r"'pluggy' is provided by the host"):
        store.install([wheel])


def test_two_wheels_writing_the_same_file_are_refused(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    first = make_wheel(tmp_path, "first-lib", entry_points=[], files={"shared/x.py": "a = 1\n"})
    second = make_wheel(tmp_path, "second-lib", entry_points=[], files={"shared/x.py": "a = 2\n"})
    plugin = make_wheel(tmp_path, "clash", requires=["first-lib", "second-lib"])
    with pytest.raises(InstallError) as excinfo:
        store.install([plugin, first, second])
    assert str(excinfo.value).startswith(
        f"{second.name} would overwrite 'lib/{PY}/site-packages/shared/x.py', already written"
    )
    assert store.list() == [] and leftovers(store) == []


def test_data_files_cannot_replace_the_env_layout(store: EnvironmentStore, tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "overreach",
        files={"overreach/__init__.py": "class Plugin: pass\n",
               "overreach-1.0.0.data/data/pyvenv.cfg": "home = /tmp/evil\n"},
    )
    with pytest.raises(InstallError, match=r"would overwrite 'pyvenv\.cfg'"):
        store.install([wheel])


# ---------------------------------------------------------------------------------------------
# Crashes mid-install


def test_failed_rename_leaves_nothing_installed(
    store: EnvironmentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = make_wheel(tmp_path, "unlucky")

    def failing_rename(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(InstallError, match=r"could not move the new environment for "
                                           r"unlucky@1\.0\.0 into place .*Input/output error"):
        store.install([wheel])
    monkeypatch.undo()
    assert store.list() == [] and leftovers(store) == []
    assert store.install([wheel]).key == "unlucky@1.0.0"


CRASHING_INSTALL = """\
import os, sys, time
from arcade_core._store import EnvironmentStore

def stall(src, dst):
    print("about to rename", flush=True)
    time.sleep(120)

os.rename = stall
EnvironmentStore(sys.argv[1]).install(sys.argv[2:])
"""


@pytest.fixture
def killed_install(store: EnvironmentStore, tmp_path: Path) -> Iterator[Path]:
    """A real process killed (SIGKILL) right before it moves a finished env into place."""
    wheel = make_wheel(tmp_path, "crashy")
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_INSTALL, str(store.root), str(wheel)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "about to rename"
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    yield wheel


def test_killed_install_is_never_listed_and_swept_on_next_start(
    store: EnvironmentStore, killed_install: Path
) -> None:
    (leftover,) = leftovers(store)
    assert leftover.startswith(".tmp-")
    assert (store.root / leftover / ENV_FILENAME).exists()  # complete, but never moved in
    assert store.list() == []
    with pytest.raises(PluginNotFound):
        store.get("crashy")
    fresh = EnvironmentStore(store.root)
    assert leftovers(fresh) == []
    assert fresh.install([killed_install]).key == "crashy@1.0.0"


def test_temp_dir_of_a_live_process_is_not_swept(store: EnvironmentStore) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = store.root / f".tmp-{sleeper.pid}-0000-0000"
        busy.mkdir()
        EnvironmentStore(store.root)
        assert busy.exists()
    finally:
        sleeper.kill()
        sleeper.wait(timeout=30)
    EnvironmentStore(store.root)
    assert not busy.exists()


# ---------------------------------------------------------------------------------------------
# Queries and removal


def test_get_returns_the_newest_version_or_the_one_asked_for(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    v1 = store.install([make_wheel(tmp_path, "Multi_Ver", "1.0")])
    v2 = store.install([make_wheel(tmp_path, "Multi_Ver", "2.0")])
    v10 = store.install([make_wheel(tmp_path, "Multi_Ver", "1.10")])
    assert store.get("multi-ver") == v2
    assert store.get("Multi_Ver", "1.0") == v1
    assert store.get("multi.ver", "1.10.0") == v10
    assert [e.version for e in store.list()] == ["1.0", "1.10", "2.0"]


def test_get_of_unknown_plugin_or_version_raises_plugin_not_found(
    store: EnvironmentStore, tmp_path: Path
) -> None:
    store.install([make_wheel(tmp_path, "known", "1.0")])
    with pytest.raises(PluginNotFound, match=r"no plugin environment installed for 'unknown'"):
        store.get("unknown")
    with pytest.raises(PluginNotFound, match=r"no plugin environment installed for known@9\.9"):
        store.get("known", "9.9")
    with pytest.raises(PluginNotFound, match=r"'latest' is not a PEP 440 version"):
        store.get("known", "latest")


def test_list_skips_broken_directories(store: EnvironmentStore, tmp_path: Path) -> None:
    good = store.install([make_wheel(tmp_path, "good")])
    (store.root / "good" / "2.0-deadbeef").mkdir()  # no arcade-env.json
    garbled = store.root / "bad" / "1.0-deadbeef"
    garbled.mkdir(parents=True)
    (garbled / ENV_FILENAME).write_text("{not json")
    (store.root / "stray-file").write_text("")
    assert store.list() == [good]


def test_remove_deletes_the_env_and_is_idempotent(store: EnvironmentStore, tmp_path: Path) -> None:
    keep = store.install([make_wheel(tmp_path, "gone", "1.0")])
    env = store.install([make_wheel(tmp_path, "gone", "2.0")])
    store.remove(env)
    assert not env.path.exists() and store.list() == [keep]
    store.remove(env)
    store.remove(keep)
    assert store.list() == [] and not (store.root / "gone").exists()
    assert leftovers(store) == []


def test_remove_refuses_paths_outside_the_store(store: EnvironmentStore, tmp_path: Path) -> None:
    env = store.install([make_wheel(tmp_path, "anchored")])
    outside = tmp_path / "precious"
    outside.mkdir()
    forged = Environment(**{**env.__dict__, "path": outside})
    with pytest.raises(InstallError, match=r"is not an environment of the store"):
        store.remove(forged)
    assert outside.exists()


def test_get_with_an_impossible_name_raises_plugin_not_found(store: EnvironmentStore) -> None:
    with pytest.raises(PluginNotFound, match=r"no plugin environment installed for '\.\./etc'"):
        store.get("../etc")
