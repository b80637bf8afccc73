"""The wheelhouse: dependency wheels fetched once with pip, then reused."""

from __future__ import annotations

from pathlib import Path

import pytest

from arcade_core.wheelhouse import (
    WheelhouseError,
    dependency_wheels,
    download_wheels,
    requirements_of,
)
from tests.wheelmaker import make_wheel


def test_requirements_of_skips_host_provided_extras_only_and_foreign_markers(
    tmp_path: Path,
) -> None:
    wheel = make_wheel(
        tmp_path, "needy", requires=[
            "six>=1.10", "pluggy>=1", "arcade>=0.1", "arcade-fleet>=0.1",
            'rich; extra == "pretty"',
            'colorama; sys_platform == "win32"',
        ],
    )
    assert requirements_of(wheel) == ["six>=1.10"]


def test_requirements_of_a_file_that_is_not_a_wheel_says_so(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus-1.0-py3-none-any.whl"
    bogus.write_bytes(b"not a zip")
    with pytest.raises(WheelhouseError, match="cannot read wheel"):
        requirements_of(bogus)


def test_cached_wheels_are_reused_without_running_pip(
    tmp_path: Path, dependency_wheelhouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    six = download_wheels(["six"], dependency_wheelhouse)[0]
    house = tmp_path / "house"
    house.mkdir()
    (house / six.name).write_bytes(six.read_bytes())

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip was run although the wheel is in the wheelhouse")

    monkeypatch.setattr("arcade_core.wheelhouse.subprocess.run", no_pip)
    assert download_wheels(["six>=1"], house) == [house / six.name]


def test_dependency_wheels_follow_requirements_transitively(
    tmp_path: Path, dependency_wheelhouse: Path
) -> None:
    plugin = make_wheel(tmp_path, "pretty", requires=["rich"])
    wheels = dependency_wheels([plugin], dependency_wheelhouse)
    names = {p.name.split("-")[0].lower() for p in wheels}
    assert {"rich", "markdown_it_py", "mdurl", "pygments"} <= names
