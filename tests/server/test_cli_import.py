"""``arcade publish --from-index`` and ``arcade updates`` against a real server importing from
a real local index (PEP 503 pages served from tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.server.conftest import Arcade
from tests.server.helpers import plugin_wheel, unique
from tests.server.package_index import LocalIndex


def test_publish_from_index_then_updates(arcade: Arcade, tmp_path: Path) -> None:
    name = unique("arcade-cli")
    with LocalIndex(tmp_path / "index") as index:
        index.add(plugin_wheel(tmp_path, name, "1.0"))
        code, out, err = arcade("publish", "--from-index", f"{name}==1.0",
                                "--index-url", index.url)
        assert code == 0, err
        assert f"published: {name}@1.0 from {index.url}" in out
        assert "resolved for: linux" in out and "note: no agent has registered" in out
        code, out, err = arcade("updates", name, "--check")
        assert code == 0, err
        assert f"{name} 1.0 is up to date with {index.url}" in out
        index.add(plugin_wheel(tmp_path, name, "1.1"))
        code, out, _ = arcade("updates", name, "--check")
        assert code == 1
        assert "newer on" in out and "1.1" in out
        assert f"arcade publish --from-index '{name}==1.1' --index-url {index.url}" in out
        code, out, _ = arcade("updates", name, "--json")
        assert code == 0 and json.loads(out)["newer"] == ["1.1"]
        code, out, err = arcade("publish", "--from-index", f"{name}==1.0",
                                "--index-url", index.url)
        assert code == 0 and "already published (identical)" in out


def test_publish_from_index_errors(arcade: Arcade, tmp_path: Path) -> None:
    code, _, err = arcade("publish", "--from-index", "foo", "--index-url", "file:///srv/")
    assert code == 1 and "http:// or https://" in err
    code, _, err = arcade("publish", "--from-index", "foo", "x.whl")
    assert code == 2 and "give no wheel files" in err
    code, _, err = arcade("publish", "x.whl", "--index-url", "http://127.0.0.1/simple/")
    assert code == 2 and "--index-url goes with --from-index" in err
    wheel = plugin_wheel(tmp_path, unique(), "1.0")
    code, _, _ = arcade("publish", str(wheel))
    assert code == 0
    name = wheel.name.split("-1.0-")[0].replace("_", "-")
    code, _, err = arcade("updates", name)
    # The hint names the CLI flag where REST callers read ?index_url=.
    assert code == 1 and "--index-url" in err and "never imported" in err
