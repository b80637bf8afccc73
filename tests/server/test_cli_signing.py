"""The signing commands against a real server: ``arcade keys generate|claims|transfer``,
``arcade publish --sign``, ``arcade sign``, and ``arcade plugins NAME`` showing signers."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from arcade_core import signing
from arcade_core.commands import main
from arcade_server.runner import ServerThread
from tests.server.helpers import dependency_wheel, plugin_wheel, unique

Arcade = Callable[..., tuple[int, str, str]]


@pytest.fixture
def arcade(capsys: pytest.CaptureFixture[str], server: ServerThread,
           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Arcade:
    """``arcade ARGS...`` in this process, against the test server with its admin token."""
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("ARCADE_TOKEN", server.admin_token)
    monkeypatch.setenv("ARCADE_API", server.http_url)
    monkeypatch.delenv("ARCADE_CA_FILE", raising=False)

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def _generate(arcade: Arcade, directory: Path, name: str, *extra: str) -> str:
    code, out, err = arcade("keys", "generate", name, "--dir", str(directory), *extra,
                            "--json")
    assert code == 0, err
    key_id: str = json.loads(out)["key_id"]
    return key_id


def test_keys_generate_writes_a_private_key_0600_and_a_public_key_line(
    arcade: Arcade, tmp_path: Path
) -> None:
    code, out, err = arcade("keys", "generate", "release", "--dir", str(tmp_path),
                            "--no-passphrase")
    assert code == 0, err
    private, public = tmp_path / "release.key", tmp_path / "release.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    raw = signing.parse_public_key(public.read_text(), source=str(public))
    assert f"key id {signing.key_id(raw)}" in out
    before = private.read_bytes()
    code, _, err = arcade("keys", "generate", "release", "--dir", str(tmp_path),
                          "--no-passphrase")
    assert code == 2 and "refusing to overwrite" in err
    assert private.read_bytes() == before
    code, _, err = arcade("keys", "generate", "../x", "--dir", str(tmp_path))
    assert code == 2 and "not a key name" in err


def test_a_passphrase_protected_key_signs_with_its_passphrase_file(
    arcade: Arcade, tmp_path: Path
) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse\n")
    key_id = _generate(arcade, tmp_path, "locked", "--passphrase-file", str(secret))
    assert b"ENCRYPTED" in (tmp_path / "locked.key").read_bytes()
    name = unique()
    wheel = plugin_wheel(tmp_path, name)
    code, _, err = arcade("publish", str(wheel), "--sign", str(tmp_path / "locked.key"))
    assert code == 2 and "passphrase-protected" in err and "--passphrase-file" in err
    wrong = tmp_path / "wrong"
    wrong.write_text("battery staple\n")
    code, _, err = arcade("publish", str(wheel), "--sign", str(tmp_path / "locked.key"),
                          "--passphrase-file", str(wrong))
    assert code == 2 and "wrong passphrase" in err
    code, out, err = arcade("publish", str(wheel), "--sign", str(tmp_path / "locked.key"),
                            "--passphrase-file", str(secret))
    assert code == 0, err
    assert f"signed by: {key_id}" in out


def test_signed_publish_cosign_claims_and_transfer(arcade: Arcade, tmp_path: Path) -> None:
    author = _generate(arcade, tmp_path, "author", "--no-passphrase")
    team = _generate(arcade, tmp_path, "team", "--no-passphrase")
    name, dep = unique(), unique("dep")
    plugin = plugin_wheel(tmp_path / "1", name, "1.0.0", requires=[dep])
    dependency = dependency_wheel(tmp_path, dep)
    unneeded = dependency_wheel(tmp_path, unique("extra"))
    code, out, err = arcade("publish", str(plugin), str(dependency), str(unneeded),
                            "--sign", str(tmp_path / "author.key"))
    assert code == 0, err
    assert f"published: {name}@1.0.0" in out and f"signed by: {author}" in out
    assert unneeded.name in err  # left out of the upload and of the statement

    code, out, err = arcade("sign", f"{name}@1.0.0", "--key", str(tmp_path / "team.key"),
                            "--wheels", str(plugin), str(dependency))
    assert code == 0, err
    assert f"with key {team}" in out
    code, out, _ = arcade("plugins", name)
    assert code == 0 and author in out and team in out

    code, out, _ = arcade("keys", "claims", name)
    assert code == 0 and author in out and team not in out

    v2 = plugin_wheel(tmp_path / "2", name, "2.0.0", requires=[dep])
    code, _, err = arcade("publish", str(v2), str(dependency))
    assert code == 1 and "is claimed" in err and author in err
    assert "arcade publish WHEEL... --sign KEY.key" in err  # the CLI form of the hint
    code, _, err = arcade("publish", str(v2), str(dependency), "--sign",
                          str(tmp_path / "team.key"))
    assert code == 1 and f"signed by {team}" in err

    code, out, err = arcade("keys", "transfer", name, "--add", str(tmp_path / "team.pub"),
                            "--remove", author, "--json")
    assert code == 0, err
    assert [k["key_id"] for k in json.loads(out)["keys"]] == [team]
    code, out, err = arcade("publish", str(v2), str(dependency), "--sign",
                            str(tmp_path / "team.key"))
    assert code == 0, err
    code, _, err = arcade("keys", "transfer", name, "--remove", "0123456789abcdef")
    assert code == 2 and "not claimed by 0123456789abcdef" in err


def test_sign_refuses_when_the_registry_has_other_wheels(arcade: Arcade,
                                                         tmp_path: Path) -> None:
    _generate(arcade, tmp_path, "reviewer", "--no-passphrase")
    name = unique()
    published = plugin_wheel(tmp_path / "a", name, "1.0.0")
    reviewed = plugin_wheel(tmp_path / "b", name, "1.0.0", summary="what I reviewed")
    assert arcade("publish", str(published))[0] == 0
    code, _, err = arcade("sign", f"{name}@1.0.0", "--key", str(tmp_path / "reviewer.key"),
                          "--wheels", str(reviewed))
    assert code == 1 and "nothing signed" in err and published.name in err
    code, out, _ = arcade("plugins", name)
    assert "unsigned" in out
    code, _, err = arcade("sign", name, "--key", str(tmp_path / "reviewer.key"))
    assert code == 2 and "NAME@VERSION" in err
    code, _, err = arcade("sign", f"{name}@1.0.0", "--key", str(tmp_path / "missing.key"))
    assert code == 2 and "missing.key" in err
