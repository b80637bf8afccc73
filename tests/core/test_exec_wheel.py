"""arcade_core.building.build_exec_wheel and the exec_backend PEP 517 backend: a real exec
plugin wheel that inspection accepts and PluginHost.install unpacks with its executable in
the environment's bin/, mode and bytes intact."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from arcade_core import Isolation, PluginHost, inspect_wheel
from arcade_core.building import BuildError, build_exec_wheel, build_wheel

SCRIPT = b'#!/bin/sh\necho \'{"type":"hello","protocol":1,"hooks":[]}\'\n'
MANIFEST = {"description": "d", "exec": "demo-exec", "interval": 5}


def _script(tmp_path: Path, data: bytes = SCRIPT) -> Path:
    path = tmp_path / "demo-exec"
    path.write_bytes(data)
    return path


def test_the_wheel_is_complete_and_passes_inspection(tmp_path: Path) -> None:
    wheel = build_exec_wheel(name="demo-exec", version="1.2.0", executable=_script(tmp_path),
                             manifest=MANIFEST, out_dir=tmp_path / "out", summary="A demo")
    assert wheel == tmp_path / "out" / "demo_exec-1.2.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        script = zf.getinfo("demo_exec-1.2.0.data/scripts/demo-exec")
        assert stat.S_IMODE(script.external_attr >> 16) == 0o755
        assert stat.S_ISREG(script.external_attr >> 16)
        assert zf.read(script) == SCRIPT
        assert json.loads(zf.read("demo_exec/arcade-plugin.json")) == MANIFEST
        assert zf.read("demo_exec-1.2.0.dist-info/entry_points.txt").decode() == (
            "[arcade.plugins]\ndemo_exec = demo_exec\n")
        assert "Tag: py3-none-any" in zf.read("demo_exec-1.2.0.dist-info/WHEEL").decode()
    assert sorted(names) == sorted([
        "demo_exec/__init__.py", "demo_exec/arcade-plugin.json",
        "demo_exec-1.2.0.data/scripts/demo-exec", "demo_exec-1.2.0.dist-info/METADATA",
        "demo_exec-1.2.0.dist-info/WHEEL", "demo_exec-1.2.0.dist-info/entry_points.txt",
        "demo_exec-1.2.0.dist-info/RECORD"])
    info = inspect_wheel(wheel)  # RECORD hashes verified, manifest checked
    assert (info.name, info.version, info.summary) == ("demo-exec", "1.2.0", "A demo")
    assert info.manifest is not None and info.manifest.exec == "demo-exec"
    assert info.manifest.isolation is Isolation.EXEC
    assert [p.name for p in (tmp_path / "out").iterdir()] == [wheel.name]  # no temp file


def test_the_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    first = build_exec_wheel(name="demo-exec", version="1.0", executable=_script(tmp_path),
                             manifest=MANIFEST, out_dir=tmp_path / "a").read_bytes()
    second = build_exec_wheel(name="demo-exec", version="1.0", executable=_script(tmp_path),
                              manifest=MANIFEST, out_dir=tmp_path / "b").read_bytes()
    assert first == second


def test_installing_puts_the_executable_in_bin_untouched_and_executable(
    tmp_path: Path,
) -> None:
    wheel = build_exec_wheel(name="demo-exec", version="1.0", executable=_script(tmp_path),
                             manifest=MANIFEST, out_dir=tmp_path / "out")
    with PluginHost(tmp_path / "home") as host:
        env = host.install(wheel)
    program = env.path / "bin" / "demo-exec"
    assert program.read_bytes() == SCRIPT  # a #!/bin/sh shebang is not rewritten
    assert os.access(program, os.X_OK)
    out = subprocess.run([str(program)], capture_output=True, check=True, timeout=30)
    assert json.loads(out.stdout) == {"type": "hello", "protocol": 1, "hooks": []}


def test_a_platform_tag_names_the_wheel_and_this_machine_accepts_its_own(
    tmp_path: Path,
) -> None:
    import sysconfig

    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    wheel = build_exec_wheel(name="demo-exec", version="1.0", executable=_script(tmp_path),
                             manifest=MANIFEST, out_dir=tmp_path, platform_tag=platform)
    assert wheel.name == f"demo_exec-1.0-py3-none-{platform}.whl"
    with zipfile.ZipFile(wheel) as zf:
        assert "Root-Is-Purelib: false" in zf.read("demo_exec-1.0.dist-info/WHEEL").decode()
    assert inspect_wheel(wheel).tags == frozenset({f"py3-none-{platform}"})


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"manifest": {"description": "no exec"}}, "must name the executable"),
    ({"manifest": {"exec": "../evil"}}, "must name the executable"),
    ({"name": "bad name"}, "is not a valid distribution name"),
    ({"platform_tag": "Linux x86"}, "is not a platform tag"),
    ({"executable": "missing"}, "cannot read the executable"),
    ({"module": "not-a-module"}, "is not a valid module name"),
])
def test_bad_input_is_refused_before_anything_is_written(
    tmp_path: Path, kwargs: dict[str, object], reason: str
) -> None:
    arguments: dict[str, object] = {
        "name": "demo-exec", "version": "1.0", "executable": _script(tmp_path),
        "manifest": MANIFEST, "out_dir": tmp_path / "out", **kwargs}
    if arguments["executable"] == "missing":
        arguments["executable"] = tmp_path / "missing"
    with pytest.raises(BuildError, match=reason):
        build_exec_wheel(**arguments)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def _project(root: Path) -> Path:
    (root / "demo_exec").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "demo_exec" / "arcade-plugin.json").write_text(json.dumps(MANIFEST))
    _script(root / "bin")
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["arcade-fleet"]\n'
        'build-backend = "arcade_core.exec_backend"\n'
        '[project]\nname = "demo-exec"\nversion = "3.0"\ndescription = "via the backend"\n'
        '[project.entry-points."arcade.plugins"]\ndemo = "demo_exec"\n')
    return root


@pytest.mark.parametrize("in_process", [True, False])
def test_the_pep517_backend_builds_a_project(tmp_path: Path, in_process: bool) -> None:
    wheel = build_wheel(_project(tmp_path / "p"), tmp_path / "out", in_process=in_process)
    info = inspect_wheel(wheel)
    assert (wheel.name, info.summary) == ("demo_exec-3.0-py3-none-any.whl", "via the backend")
    assert info.entry_point is not None and str(info.entry_point) == "demo = demo_exec"


def test_python_m_build_builds_a_project(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation"], cwd=project,
                   check=True, capture_output=True, timeout=120)
    [wheel] = (project / "dist").glob("*.whl")
    assert inspect_wheel(wheel).manifest is not None


def test_the_backend_says_what_a_project_lacks(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(text.replace('demo = "demo_exec"', 'demo = "a:B"'))
    with pytest.raises(BuildError, match="must name a package"):
        build_wheel(project, tmp_path / "out", in_process=True)
    (project / "pyproject.toml").write_text(text.replace(
        '[project.entry-points."arcade.plugins"]\ndemo = "demo_exec"\n', ""))
    with pytest.raises(BuildError, match="exactly one entry point"):
        build_wheel(project, tmp_path / "out", in_process=True)
