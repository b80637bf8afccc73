"""The README documents every option of ``arcade quickstart`` (and ``scripts/quickstart``,
which passes them on), so a new user finds ``--http-port`` before port 8080 bites."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from arcade_server.quickstart import main

README = Path(__file__).resolve().parents[2] / "README.md"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "quickstart"


def test_the_readme_and_the_script_document_every_quickstart_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    options = set(re.findall(r"(--[a-z][a-z-]+)", capsys.readouterr().out)) - {"--help"}
    assert {"--http-port", "--grpc-port", "--seconds", "--home", "--interval"} <= options
    readme, script = README.read_text(encoding="utf-8"), SCRIPT.read_text(encoding="utf-8")
    assert [o for o in sorted(options) if o not in readme] == []
    assert [o for o in sorted(options) if o not in script] == []
