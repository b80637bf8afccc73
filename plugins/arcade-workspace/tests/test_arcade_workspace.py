"""arcade-workspace: per-job working directories made and removed by the plugin class in
tmp_path, its manifest, and its built wheel installed and loaded by a real PluginHost,
in-process and in a child process, around a real command run in the workspace."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

from arcade_core import InvalidConfig, JobContext, JobResult, Manifest
from arcade_core.testing import PluginProject

DIST = Path(__file__).resolve().parent.parent
MANIFEST = DIST / "arcade_workspace" / "arcade-plugin.json"


def _job(job_id: str = "job-42") -> JobContext:
    return JobContext(job_id, commands=["make test"], env={"CI": "1"}, stage="before")


def _result(status: str = "succeeded", job_id: str = "job-42") -> JobResult:
    return JobResult(job_id, status, exit_code=0 if status == "succeeded" else 1)


def test_before_creates_an_empty_job_directory_under_the_root(
    arcade_module: ModuleType, tmp_path: Path
) -> None:
    root = tmp_path / "workspaces"
    returned = arcade_module.Workspace({"root": str(root)}).before(_job())
    path = root / "job-42"
    assert path.is_dir()
    assert list(path.iterdir()) == []
    assert returned == {
        "workdir": str(path),
        "env": {"ARCADE_WORKSPACE": str(path)},
        "outputs": {"workspace": str(path)},
    }


def test_before_cleans_what_an_earlier_run_of_the_job_left(
    arcade_module: ModuleType, tmp_path: Path
) -> None:
    stale = tmp_path / "job-42"
    (stale / "build").mkdir(parents=True)
    (stale / "build" / "out.o").write_bytes(b"old")
    arcade_module.Workspace({"root": str(tmp_path)}).before(_job())
    assert stale.is_dir()
    assert list(stale.iterdir()) == []


def test_a_stale_symlink_is_replaced_without_touching_its_target(
    arcade_module: ModuleType, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    root = tmp_path / "root"
    root.mkdir()
    (root / "job-42").symlink_to(outside, target_is_directory=True)
    plugin = arcade_module.Workspace({"root": str(root)})
    plugin.before(_job())
    assert not (root / "job-42").is_symlink()
    assert (root / "job-42").is_dir()
    (root / "job-42").rmdir()
    (root / "job-42").symlink_to(outside, target_is_directory=True)
    assert plugin.after(_job(), _result()) == {"removed": True, "path": str(root / "job-42")}
    assert (outside / "precious").read_text() == "keep me"


def test_the_commands_run_in_the_workspace_with_its_path_in_the_environment(
    arcade_module: ModuleType, tmp_path: Path
) -> None:
    returned = arcade_module.Workspace({"root": str(tmp_path)}).before(_job())
    script = (
        "import os, pathlib; pathlib.Path('artifact.txt').write_text(os.getcwd()); "
        "print(os.environ['ARCADE_WORKSPACE'])"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=returned["workdir"],
        env={**os.environ, **returned["env"]}, capture_output=True, text=True, check=True,
    )
    assert run.stdout.strip() == str(tmp_path / "job-42")
    assert (tmp_path / "job-42" / "artifact.txt").read_text() == str(tmp_path / "job-42")


def test_after_removes_the_workspace_and_everything_in_it(
    arcade_module: ModuleType, tmp_path: Path
) -> None:
    plugin = arcade_module.Workspace({"root": str(tmp_path)})
    plugin.before(_job())
    path = tmp_path / "job-42"
    (path / "src" / "pkg").mkdir(parents=True)
    (path / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (path / "link").symlink_to(tmp_path / "elsewhere")
    assert plugin.after(_job(), _result()) == {"removed": True, "path": str(path)}
    assert not path.exists()
    assert tmp_path.is_dir()


def test_after_removes_directories_the_job_made_read_only(
    arcade_module: ModuleType, tmp_path: Path
) -> None:
    plugin = arcade_module.Workspace({"root": str(tmp_path)})
    plugin.before(_job())
    module_cache = tmp_path / "job-42" / "go" / "pkg" / "mod" / "example.com@v1"
    module_cache.mkdir(parents=True)
    (module_cache / "go.mod").write_text("module example.com\n")
    for directory in (module_cache, module_cache.parent, module_cache.parent.parent):
        directory.chmod(stat.S_IRUSR | stat.S_IXUSR)  # as Go leaves its module cache
    assert plugin.after(_job(), _result())["removed"] is True
    assert not (tmp_path / "job-42").exists()


@pytest.mark.parametrize("status", ["succeeded", "failed", "timed_out", "cancelled"])
def test_keep_leaves_the_workspace_whatever_the_outcome(
    arcade_module: ModuleType, tmp_path: Path, status: str
) -> None:
    plugin = arcade_module.Workspace({"root": str(tmp_path), "keep": True})
    plugin.before(_job())
    assert plugin.after(_job(), _result(status)) == {
        "removed": False, "path": str(tmp_path / "job-42"), "reason": "keep",
    }
    assert (tmp_path / "job-42").is_dir()


@pytest.mark.parametrize(
    ("status", "kept"),
    [("succeeded", False), ("failed", True), ("timed_out", True), ("cancelled", True)],
)
def test_keep_on_failure_keeps_only_what_did_not_succeed(
    arcade_module: ModuleType, tmp_path: Path, status: str, kept: bool
) -> None:
    plugin = arcade_module.Workspace({"root": str(tmp_path), "keep_on_failure": True})
    plugin.before(_job())
    outcome = plugin.after(_job(), _result(status))
    assert outcome["removed"] is not kept
    assert (tmp_path / "job-42").is_dir() is kept
    if kept:
        assert outcome["reason"] == "keep_on_failure"


def test_after_without_a_workspace_reports_it_missing(
    arcade_module: ModuleType, tmp_path: Path
) -> None:
    plugin = arcade_module.Workspace({"root": str(tmp_path)})
    assert plugin.after(_job(), _result()) == {
        "removed": False, "path": str(tmp_path / "job-42"), "reason": "missing",
    }


def test_before_and_after_entries_are_separate_instances_that_agree_on_the_path(
    arcade_module: ModuleType, tmp_path: Path
) -> None:
    before_entry = arcade_module.Workspace({"root": str(tmp_path)})
    after_entry = arcade_module.Workspace({"root": str(tmp_path), "keep_on_failure": True})
    workdir = Path(before_entry.before(_job("a"))["workdir"])
    before_entry.before(_job("b"))
    assert after_entry.after(_job("a"), _result("succeeded", "a"))["removed"] is True
    assert not workdir.exists()
    assert (tmp_path / "b").is_dir()  # another job's workspace is left alone


@pytest.mark.parametrize(
    "job_id",
    ["..", ".", "../escape", "a/../../escape", "/etc", "sub/dir", "..\\escape", "nul\0byte",
     ""],
)
def test_a_job_id_that_would_escape_the_root_is_refused(
    arcade_module: ModuleType, tmp_path: Path, job_id: str
) -> None:
    root = tmp_path / "root"
    plugin = arcade_module.Workspace({"root": str(root)})
    with pytest.raises(arcade_module.WorkspaceError, match=r"escape the workspace root|is empty"):
        plugin.before(_job(job_id))
    with pytest.raises(arcade_module.WorkspaceError, match=r"escape the workspace root|is empty"):
        plugin.after(_job(job_id), _result(job_id=job_id))
    assert not root.exists()  # refused before anything was created
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_overlong_job_id_is_refused(arcade_module: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(arcade_module.WorkspaceError, match="longer than 200 bytes"):
        arcade_module.Workspace({"root": str(tmp_path)}).before(_job("x" * 201))


def test_ordinary_job_ids_are_accepted(arcade_module: ModuleType, tmp_path: Path) -> None:
    plugin = arcade_module.Workspace({"root": str(tmp_path)})
    for job_id in ["7", "3f2c9a1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", "..hidden", "build #12 (ü)"]:
        assert Path(plugin.before(_job(job_id))["workdir"]).parent == tmp_path


def test_the_default_root_is_private_in_the_temp_dir(
    arcade_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    plugin = arcade_module.Workspace({})
    workdir = Path(plugin.before(_job())["workdir"])
    root = tmp_path / "arcade-workspaces"
    assert workdir == root / "job-42"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    root.chmod(0o777)  # made by someone else's umask or a careless chmod: tightened again
    plugin.before(_job("job-43"))
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_a_default_root_that_is_a_symlink_is_refused(
    arcade_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    planted = tmp_path / "planted"
    planted.mkdir()
    (tmp_path / "arcade-workspaces").symlink_to(planted, target_is_directory=True)
    with pytest.raises(arcade_module.WorkspaceError, match="not a plain directory"):
        arcade_module.Workspace({}).before(_job())
    assert list(planted.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="making a directory owned by another user needs root")
def test_a_default_root_owned_by_another_user_is_refused(
    arcade_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    root = tmp_path / "arcade-workspaces"
    root.mkdir(mode=0o700)
    os.chown(root, 65534, 65534)
    with pytest.raises(arcade_module.WorkspaceError, match="belongs to uid 65534"):
        arcade_module.Workspace({}).before(_job())
    assert list(root.iterdir()) == []


def test_a_configured_root_is_created_with_its_parents(
    arcade_module: ModuleType, tmp_path: Path
) -> None:
    root = tmp_path / "a" / "b" / "workspaces"
    assert Path(arcade_module.Workspace({"root": str(root)}).before(_job())["workdir"]).is_dir()


def test_a_relative_root_is_refused(arcade_module: ModuleType) -> None:
    with pytest.raises(ValueError, match="root must be an absolute path, not 'ws'"):
        arcade_module.Workspace({"root": "ws"})


def test_an_unusable_root_is_a_clear_error(arcade_module: ModuleType, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(arcade_module.WorkspaceError, match=r"cannot create the workspace root"):
        arcade_module.Workspace({"root": str(blocker / "root")}).before(_job())


def test_manifest_parses_and_its_defaults_validate() -> None:
    manifest = Manifest.from_json(MANIFEST.read_text())
    assert manifest.type == "job"
    assert manifest.validate_config({}) == {"keep": False, "keep_on_failure": False}
    assert manifest.validate_config({"root": "/srv/ws", "keep": True})["root"] == "/srv/ws"
    with pytest.raises(InvalidConfig, match=r"config\.keep"):
        manifest.validate_config({"keep": "yes"})
    with pytest.raises(InvalidConfig, match=r"config\.root"):
        manifest.validate_config({"root": ""})


def test_built_wheel_has_no_dependencies(arcade_project: PluginProject) -> None:
    from arcade_core import inspect_wheel

    info = inspect_wheel(arcade_project.wheel)
    assert (info.name, info.version) == ("arcade-workspace", "1.0.0")
    assert info.entry_point is not None
    assert info.entry_point.value == "arcade_workspace:Workspace"
    assert info.requires_dist == ()
    assert info.manifest == Manifest.from_json(MANIFEST.read_text())


@pytest.mark.parametrize("isolation", ["inline", "process"])
def test_built_wheel_runs_both_stages_through_plugin_host(
    tmp_path: Path, arcade_project: PluginProject, isolation: str
) -> None:
    from arcade_core import PluginHost

    root = tmp_path / "workspaces"
    job = _job()
    with PluginHost(tmp_path / "home") as host:
        host.install([arcade_project.wheel])
        # One instance per job entry, as the agent does: a before entry and an after entry.
        host.load("arcade-workspace", config={"root": str(root)}, isolation=isolation,
                  key="job-42/before/0")
        host.load("arcade-workspace", config={"root": str(root)}, isolation=isolation,
                  key="job-42/after/0")
        before = host.call("before", keys=["job-42/before/0"], job=job)
        assert before.errors == {}
        returned = before.results["job-42/before/0"]
        workdir = root / "job-42"
        assert returned["workdir"] == str(workdir)
        assert returned["env"] == {"ARCADE_WORKSPACE": str(workdir)}
        subprocess.run(["sh", "-c", 'echo built > "$ARCADE_WORKSPACE/out.txt"'],
                       cwd=returned["workdir"], env={**os.environ, **returned["env"]},
                       check=True)
        assert (workdir / "out.txt").read_text() == "built\n"
        after = host.call("after", keys=["job-42/after/0"], job=job, result=_result())
        assert after.errors == {}
        assert after.results == {"job-42/after/0": {"removed": True, "path": str(workdir)}}
        assert not workdir.exists()


@pytest.mark.parametrize("isolation", ["inline", "process"])
def test_built_wheel_refuses_a_traversing_job_id_through_plugin_host(
    tmp_path: Path, arcade_project: PluginProject, isolation: str
) -> None:
    from arcade_core import PluginHost

    root = tmp_path / "workspaces"
    with PluginHost(tmp_path / "home") as host:
        host.install([arcade_project.wheel])
        host.load("arcade-workspace", config={"root": str(root)}, isolation=isolation)
        outcome = host.call("before", keys=["arcade-workspace"], job=_job("../../etc"))
        assert "would escape the workspace root" in outcome.errors["arcade-workspace"]
        assert host.status("arcade-workspace").state == "running"
    assert not root.exists()


def test_keep_on_failure_through_plugin_host(
    tmp_path: Path, arcade_project: PluginProject
) -> None:
    from arcade_core import PluginHost

    with PluginHost(tmp_path / "home") as host:
        host.install([arcade_project.wheel])
        status = host.load("arcade-workspace",
                           config={"root": str(tmp_path / "ws"), "keep_on_failure": True})
        assert status.config == {"root": str(tmp_path / "ws"), "keep": False,
                                 "keep_on_failure": True}
        host.call("before", keys=["arcade-workspace"], job=_job())
        after = host.call("after", keys=["arcade-workspace"], job=_job(),
                          result=_result("failed"))
    assert after.results["arcade-workspace"]["reason"] == "keep_on_failure"
    assert (tmp_path / "ws" / "job-42").is_dir()
