"""``arcade plugin new``: the files it writes, and its answers to bad names and places.
(tests/e2e/test_plugin_template.py takes the project through test, publish and install.)"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

from arcade_core import Manifest
from arcade_core.commands import main
from arcade_server.cli._template import render


def _arcade(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_new_writes_a_plugin_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _arcade(capsys, "plugin", "new", "Disk.Entries", "--dir",
                             str(tmp_path / "p"))
    assert code == 0, err
    assert "created" in out and "disk-entries" in out
    assert "pytest" in err and "arcade publish" in err
    root = tmp_path / "p"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "README.md", "disk_entries/__init__.py", "disk_entries/arcade-plugin.json",
        "pyproject.toml", "tests/test_disk_entries.py",
    ]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["name"] == "disk-entries"
    assert project["entry-points"]["arcade.plugins"] == {
        "disk_entries": "disk_entries:DiskEntries"}
    manifest = Manifest.from_json((root / "disk_entries" / "arcade-plugin.json").read_text())
    assert manifest.validate_config({}) == {"directory": "."}
    umask = os.umask(0)
    os.umask(umask)
    assert root.stat().st_mode & 0o777 == 0o755 & ~umask  # not the temp dir's private 0700


def test_every_rendered_python_file_compiles() -> None:
    for path, text in render("hello-arcade").items():
        if path.endswith(".py"):
            compile(text, path, "exec")
        elif path.endswith(".json"):
            json.loads(text)


@pytest.mark.parametrize("name", ["1plugin", "my plugin", "a--b", "x_", "x/y", ""])
def test_a_bad_name_is_refused_with_what_a_name_looks_like(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, _, err = _arcade(capsys, "plugin", "new", name, "--dir", str(tmp_path / "p"))
    assert code == 2
    assert "is not a plugin name: use letters, digits" in err
    assert not (tmp_path / "p").exists()


def test_an_existing_non_empty_directory_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "keep.txt").write_text("mine")
    code, _, err = _arcade(capsys, "plugin", "new", "x", "--dir", str(tmp_path / "p"))
    assert code == 2
    assert "exists and is not an empty directory: choose another --dir" in err
    assert [p.name for p in (tmp_path / "p").iterdir()] == ["keep.txt"]


def test_an_empty_directory_is_filled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p").mkdir()
    code, _, err = _arcade(capsys, "plugin", "new", "x", "--dir", str(tmp_path / "p"))
    assert code == 0, err
    assert (tmp_path / "p" / "x" / "__init__.py").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no staging directory left


def test_new_exec_writes_an_exec_plugin_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _arcade(capsys, "plugin", "new", "up-time", "--exec", "--dir",
                             str(tmp_path / "p"))
    assert code == 0, err
    assert "created" in out and "bin/up-time" in out
    assert "pip install 'arcade-fleet[testing]' && pytest" in err and "arcade publish" in err
    root = tmp_path / "p"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "README.md", "bin/up-time", "pyproject.toml", "tests/test_up_time.py",
        "up_time/__init__.py", "up_time/arcade-plugin.json",
    ]
    assert os.access(root / "bin" / "up-time", os.X_OK)
    assert not os.access(root / "pyproject.toml", os.X_OK)
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["build-system"]["build-backend"] == "arcade_core.exec_backend"
    assert pyproject["project"]["entry-points"]["arcade.plugins"] == {"up_time": "up_time"}
    manifest = Manifest.from_json((root / "up_time" / "arcade-plugin.json").read_text())
    assert (manifest.exec, manifest.isolation) == ("up-time", "exec")


def test_the_exec_project_builds_and_its_script_speaks_the_protocol(tmp_path: Path) -> None:
    from arcade_core import inspect_wheel
    from arcade_core.building import build_wheel
    from arcade_core.testing import ExecProcess

    root = tmp_path / "p"
    for relative, text in render("up-time", exec_plugin=True).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
        if relative.endswith(".py"):
            compile(text, relative, "exec")
    info = inspect_wheel(build_wheel(root, tmp_path / "dist", in_process=True))
    assert info.filename == "up_time-0.1.0-py3-none-any.whl"
    assert info.manifest is not None and info.manifest.exec == "up-time"
    with ExecProcess(["sh", root / "bin" / "up-time"]) as plugin:
        assert plugin.receive()["type"] == "hello"
        plugin.send({"type": "config", "data": {"interval": 0.05}})
        first = plugin.receive_until("metric")["data"]
        second = plugin.receive_until("metric")["data"]
        assert first["name"] == "up_time.uptime" and second["value"] >= first["value"] > 0
        plugin.send_line(b'{"type":"config","data":{}}\n')
        assert plugin.receive_until("log")["level"] == "warning"
        assert plugin.shutdown() == 0
