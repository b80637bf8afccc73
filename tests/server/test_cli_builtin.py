"""``arcade publish --builtin``: the built-in plugins with their dependency wheels, in one
command, against a real server (from this checkout: built from ``plugins/``; the installed
distribution's shipped wheels are tested in tests/test_install_profiles.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcade_core.builtin import PluginBuildError, builtin_wheels, shipped_builtin_wheels
from arcade_core.commands import main
from arcade_server.cli._keys import generate_key
from arcade_server.client import ArcadeClient
from arcade_server.runner import ServerThread
from tests.wheelmaker import make_wheel


def _arcade(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_publish_builtin_publishes_them_all_with_psutil_then_says_already(
    server: ServerThread, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, dependency_wheelhouse: Path, psutil_wheel: Path,
) -> None:
    monkeypatch.setenv("ARCADE_TOKEN", server.admin_token)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("ARCADE_WHEELHOUSE", str(dependency_wheelhouse))
    api = ("--api", server.http_url)
    code, out, err = _arcade(capsys, "publish", "--builtin", *api)
    assert code == 0, err
    for name in ("arcade-cpu", "arcade-memory", "arcade-workspace", "arcade-notify-stdout",
                 "arcade-loadavg"):  # the exec plugin (sh script) is published the same way
        assert f"published: {name}@1.0.0" in out
    assert "published: arcade-cpu@1.0.0  2 wheel(s)" in out   # with psutil
    assert "next: arcade install " in out
    code, out, _ = _arcade(capsys, "publish", "--builtin", "arcade-memory", "--json", *api)
    (result,) = json.loads(out)
    assert code == 0 and result["status"] == 200 and result["name"] == "arcade-memory"
    with ArcadeClient(server.http_url, token=server.admin_token) as client:
        wheels = client.version("arcade-workspace", "1.0.0")["wheels"]
    assert [w["filename"] for w in wheels] == ["arcade_workspace-1.0.0-py3-none-any.whl"]
    # Signed: a re-publish of identical wheels adds the signature, over both of cpu's wheels.
    key_id = generate_key("release", tmp_path / "keys")
    code, out, err = _arcade(capsys, "publish", "--builtin", "arcade-cpu", "--sign",
                             str(tmp_path / "keys" / "release.key"), "--json", *api)
    (result,) = json.loads(out)
    assert code == 0, err
    assert result["status"] == 200 and [s["key_id"] for s in result["signers"]] == [key_id]
    assert len(result["wheels"]) == 2
    code, _, err = _arcade(capsys, "publish", "--builtin", "arcade-nope", *api)
    assert code == 1 and "no built-in plugin named arcade-nope; the built-ins are " in err
    code, _, err = _arcade(capsys, "publish", *api)
    assert code == 2 and "or --builtin" in err


def test_shipped_wheels_are_found_by_name(tmp_path: Path) -> None:
    shipped = tmp_path / "builtin_wheels"
    wheel = make_wheel(shipped, "arcade-demo", "1.0.0")
    assert shipped_builtin_wheels(shipped) == {"arcade-demo": wheel}
    assert shipped_builtin_wheels(tmp_path / "nowhere") == {}


def test_an_unknown_builtin_name_lists_the_real_ones(tmp_path: Path) -> None:
    with pytest.raises(PluginBuildError, match=r"no built-in plugin named x-y; the built-ins "
                       r"are arcade-cpu, arcade-loadavg, arcade-memory"):
        builtin_wheels(tmp_path, ["X_Y"])
