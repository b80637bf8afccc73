"""The drift checks on real environments built by a real PluginHost, the drift watch's
schedule, and the ``[drift]`` settings."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from arcade_agent.drift import MAX_PATHS, take_baseline
from arcade_agent.drift_settings import DriftPolicy, DriftSettings
from arcade_agent.drift_watch import DriftWatch
from arcade_agent.errors import AgentConfigError
from arcade_agent.settings import AgentSettings
from arcade_core import Environment, PluginHost
from tests.waiting import until
from tests.wheelmaker import make_wheel

SCRIPT = "#!python\nprint('tool')\n"


@pytest.fixture
def host(tmp_path: Path) -> Iterator[PluginHost]:
    with PluginHost(tmp_path / "home") as h:
        yield h


@pytest.fixture
def env(host: PluginHost, tmp_path: Path) -> Environment:
    dep = make_wheel(tmp_path / "w", "helper-lib", "2.0", entry_points=[],
                     files={"helper_lib/__init__.py": "X = 1\n"})
    plugin = make_wheel(tmp_path / "w", "drifty", "1.0.0", requires=["helper-lib"], files={
        "drifty/__init__.py": "from arcade_core import hookimpl\n\nclass Plugin:\n"
                              "    def __init__(self, config):\n        pass\n",
        "drifty/data.txt": "payload\n",
        "drifty-1.0.0.data/scripts/drifty-tool": SCRIPT,
    })
    return host.install([plugin, dep])


def _site(env: Environment) -> str:
    return os.path.relpath(env.site_packages, env.path)


def test_a_fresh_environment_has_no_drift_and_every_installed_file_is_expected(
    env: Environment,
) -> None:
    baseline, drift = take_baseline(env)
    assert drift == []
    site = _site(env)
    assert f"{site}/drifty/__init__.py" in baseline.files
    assert f"{site}/helper_lib/__init__.py" in baseline.files
    assert "bin/drifty-tool" in baseline.files       # a script, after its shebang rewrite
    assert f"{site}/drifty-1.0.0.dist-info/RECORD" in baseline.files
    assert {"arcade-env.json", "pyvenv.cfg"} <= set(baseline.files)
    assert baseline.links == {"bin/python": os.readlink(env.path / "bin" / "python")}
    assert baseline.quick() == [] and baseline.full() == []


def test_changed_added_and_missing_files_are_found_by_both_passes(env: Environment) -> None:
    baseline, _ = take_baseline(env)
    site = env.site_packages
    (site / "drifty" / "data.txt").write_text("payload, edited\n")
    (site / "drifty" / "__pycache__").mkdir()
    (site / "drifty" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (site / "helper_lib" / "__init__.py").unlink()
    rel = _site(env)
    wanted = {f"{rel}/drifty/data.txt (changed)",
              f"{rel}/drifty/__pycache__/x.cpython-311.pyc (added)",
              f"{rel}/helper_lib/__init__.py (missing)"}
    assert set(baseline.quick()) == wanted
    assert set(baseline.full()) == wanted


def test_same_size_same_mtime_edit_escapes_the_stat_pass_only_if_ctime_is_forged(
    env: Environment,
) -> None:
    """An edit that keeps size and mtime (utime put back) still changes ctime: the stat pass
    hashes the file and finds it; the full pass always does."""
    baseline, _ = take_baseline(env)
    target = env.site_packages / "drifty" / "data.txt"
    before = target.stat()
    target.write_text("PAYLOAD\n")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert baseline.quick() == [f"{_site(env)}/drifty/data.txt (changed)"]
    assert baseline.full() == [f"{_site(env)}/drifty/data.txt (changed)"]


def test_a_touched_but_identical_file_is_not_drift(env: Environment) -> None:
    baseline, _ = take_baseline(env)
    target = env.site_packages / "drifty" / "data.txt"
    target.write_bytes(target.read_bytes())          # new mtime/ctime, same bytes
    assert baseline.quick() == []
    assert baseline.quick() == []                    # its new stat was remembered


def test_record_edits_symlinks_and_planted_dist_infos_are_drift(env: Environment) -> None:
    baseline, _ = take_baseline(env)
    rel = _site(env)
    record = env.site_packages / "drifty-1.0.0.dist-info" / "RECORD"
    record.write_text(record.read_text() + "evil.py,sha256=abc,3\n")
    planted = env.site_packages / "evil-1.0.dist-info"
    planted.mkdir()
    (planted / "RECORD").write_text("evil.py,,\n")
    (env.path / "bin" / "python").unlink()
    (env.path / "bin" / "python").symlink_to("/bin/sh")
    assert set(baseline.full()) == {f"{rel}/drifty-1.0.0.dist-info/RECORD (changed)",
                                    f"{rel}/evil-1.0.dist-info/RECORD (added)",
                                    "bin/python (changed)"}
    # A planted dist-info cannot vouch for itself in a new baseline either.
    _, drift = take_baseline(env)
    assert f"{rel}/evil-1.0.dist-info/RECORD (added)" in drift


def test_the_list_of_paths_is_bounded(env: Environment) -> None:
    baseline, _ = take_baseline(env)
    for i in range(MAX_PATHS + 5):
        (env.path / f"junk-{i:02d}").write_text("x")
    drift = baseline.quick()
    assert len(drift) == MAX_PATHS + 1
    assert drift[-1] == "… and 5 more"


async def test_the_watch_checks_at_start_then_spreads_quick_and_full_passes(
    env: Environment, host: PluginHost, tmp_path: Path,
) -> None:
    other = host.install(make_wheel(tmp_path / "w", "steady", "1.0.0"))
    found: list[tuple[str, list[str]]] = []

    async def watched() -> dict[str, Environment]:
        return {"drifty": env, "steady": other}

    async def on_drift(name: str, _env: Environment, paths: list[str]) -> None:
        found.append((name, paths))

    watch = DriftWatch(DriftSettings(check_interval=0.05, hash_interval=0.2), watched,
                       on_drift)
    await watch.check_all()
    assert (watch.full_checks, found) == (2, [])
    task = asyncio.create_task(watch.run(check_first=False))
    try:
        (env.site_packages / "drifty" / "data.txt").write_text("edited")
        await until(lambda: found, what="the drift to be found")
        assert found == [("drifty", [f"{_site(env)}/drifty/data.txt (changed)"])]
        # Left drifted: not reported again while the environment stays the same; the other
        # plugin keeps being checked, in full too once its hash_interval passed.
        quick, full = watch.quick_checks, watch.full_checks
        await until(lambda: watch.quick_checks > quick + 5 and watch.full_checks > full + 1,
                    what="more check rounds")
        assert len(found) == 1
        assert watch.cpu_seconds > 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_drift_settings_parse_from_a_config_file_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[drift]\ncheck_interval = 30\nhash-interval = 600\npolicy = "report"\n')
    settings = AgentSettings.load(config, env={})
    assert settings.drift == DriftSettings(30.0, 600.0, DriftPolicy.REPORT)
    from_env = AgentSettings.load(env={"ARCADE_AGENT_DRIFT": '{"policy": "repair"}'})
    assert from_env.drift == DriftSettings()
    assert AgentSettings().drift.policy is DriftPolicy.REPAIR


@pytest.mark.parametrize(("text", "message"), [
    ('[drift]\npolicy = "fix"\n', "'drift.policy' = 'fix'; expected \"repair\" or \"report\""),
    ("[drift]\ncheck_interval = -1\n", "'drift.check_interval'"),
    ('[drift]\nhash_interval = "soon"\n', "'drift.hash_interval' = 'soon'"),
    ("[drift]\nevery = 3\n", "unknown setting 'drift.every'"),
    ("drift = 3\n", "[drift] must be a table"),
])
def test_bad_drift_settings_say_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(text)
    with pytest.raises(AgentConfigError) as caught:
        AgentSettings.load(config, env={})
    assert message in str(caught.value)
    assert str(config) in str(caught.value)
