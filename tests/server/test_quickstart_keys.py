"""The quick start's signing key (made once in its home, then reused) and the agent config
that trusts it (``[[trust.keys]] file = ...``, the agent's TOML format)."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from arcade_core import signing
from arcade_server._quickstart_keys import (
    QuickstartKeyError,
    agent_config,
    sign_wheels,
    signing_key,
)
from tests.server.helpers import plugin_wheel, unique


def test_the_key_is_made_once_and_signs_what_the_quickstart_publishes(tmp_path: Path) -> None:
    keys = tmp_path / "home 'q\"" / "keys"
    _, key_id = signing_key(keys)
    assert stat.S_IMODE((keys / "quickstart.key").stat().st_mode) == 0o600
    again, same_id = signing_key(keys)
    assert same_id == key_id
    name = unique()
    wheel = plugin_wheel(tmp_path, name)
    paths, fields = sign_wheels(again, [wheel])
    assert paths == [wheel]
    raw = signing.parse_public_key(fields["public_key"])
    assert signing.key_id(raw) == key_id
    config = tomllib.loads(agent_config(2.0, keys / "quickstart.pub"))
    assert config["trust"]["keys"] == [{"file": str(keys / "quickstart.pub")}]
    assert config["jobs"] == {"enabled": True}
    assert config["collect_interval"] == 2.0


def test_an_unusable_key_says_how_to_start_afresh(tmp_path: Path) -> None:
    (tmp_path / "quickstart.key").write_text("not a key\n")
    (tmp_path / "quickstart.pub").write_text("AAAA\n")
    with pytest.raises(QuickstartKeyError, match=r"remove .* to make a new one"):
        signing_key(tmp_path)
