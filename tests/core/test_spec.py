"""Plugin specs as operators type them: ``name``, ``name@1.2.0``, ``name@>=1.2,<2``."""

from __future__ import annotations

import pytest
from packaging.version import Version

from arcade_core import InvalidSpec
from arcade_core._spec import PluginSpec, normalize_name, parse_spec


def test_bare_name_has_no_version_constraint() -> None:
    spec = parse_spec("cpu")
    assert spec.name == "cpu"
    assert str(spec.specifier) == ""
    assert spec.pinned is None
    assert spec.matches("0.0.1") and spec.matches("99.0")
    assert str(spec) == "cpu"


def test_name_is_normalized_per_pep_503() -> None:
    assert parse_spec("Arcade_CPU").name == "arcade-cpu"
    assert parse_spec("arcade.notify__stdout@1.0").name == "arcade-notify-stdout"
    assert normalize_name("My.Plugin_Name") == "my-plugin-name"


def test_bare_version_pins_exactly_that_version() -> None:
    spec = parse_spec("Arcade_CPU@1.2.0")
    assert spec.pinned == Version("1.2.0")
    assert spec.matches("1.2.0") and spec.matches("1.2")  # PEP 440: 1.2 == 1.2.0
    assert not spec.matches("1.2.1")
    assert str(spec) == "arcade-cpu@1.2.0"


def test_surrounding_whitespace_is_ignored() -> None:
    spec = parse_spec("  cpu @ 1.0 ")
    assert spec == PluginSpec("cpu", spec.specifier)
    assert spec.pinned == Version("1.0")


def test_range_selects_highest_matching_version() -> None:
    spec = parse_spec("cpu@>=1.2,<2")
    assert spec.pinned is None
    assert spec.matches("1.2") and spec.matches("1.9.9")
    assert not spec.matches("2.0") and not spec.matches("1.1")
    assert spec.select(["1.0", "1.2", "1.5", "2.0"]) == Version("1.5")
    assert spec.select(["0.9", "2.1"]) is None
    assert str(spec) == "cpu@<2,>=1.2"


def test_compatible_release_operator_is_accepted() -> None:
    spec = parse_spec("cpu@~=1.4")
    assert spec.matches("1.9") and not spec.matches("2.0")


def test_prereleases_only_chosen_when_nothing_final_matches_or_pinned() -> None:
    assert parse_spec("cpu@>=1").select(["1.0", "2.0rc1"]) == Version("1.0")
    assert parse_spec("cpu@>=1.5").select(["1.0", "2.0rc1"]) == Version("2.0rc1")
    assert parse_spec("cpu@2.0rc1").matches("2.0rc1")
    assert not parse_spec("cpu@>=1").matches("2.0rc1")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("bad name@1.0", "invalid plugin name 'bad name'"),
        ("-cpu", "starting and ending with a letter or digit"),
        ("@1.0", "invalid plugin name ''"),
        ("cpu@", "nothing after '@'"),
        ("cpu@  ", "nothing after '@'"),
        ("cpu@1.2.x", "'1.2.x' is not a PEP 440 version"),
        ("cpu@>>1", "'>>1' is not a PEP 440 version or range"),
        ("cpu@latest", "'latest' is not a PEP 440 version or range"),
    ],
)
def test_invalid_spec_error_quotes_the_spec_and_says_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidSpec) as excinfo:
        parse_spec(text)
    message = str(excinfo.value)
    assert f"invalid plugin spec {text!r}" in message
    assert reason in message


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_spec_is_refused_with_the_expected_forms(text: str) -> None:
    with pytest.raises(InvalidSpec, match=r"empty plugin spec: expected 'name', 'name@1.2.0'"):
        parse_spec(text)


def test_invalid_spec_is_a_value_error_for_generic_callers() -> None:
    with pytest.raises(ValueError):
        parse_spec("cpu@")


def test_normalize_name_refuses_characters_outside_pep_508() -> None:
    with pytest.raises(InvalidSpec, match=r"invalid plugin name 'a/b'"):
        normalize_name("a/b")


def test_spec_naming_a_prerelease_accepts_prereleases() -> None:
    spec = parse_spec("cpu@>=2.0rc1")
    assert spec.matches("2.0rc2")
    assert spec.select(["1.0", "2.0rc2"]) == Version("2.0rc2")


def test_bare_name_prefers_final_releases() -> None:
    spec = parse_spec("cpu")
    assert not spec.matches("3.0a1")
    assert spec.select(["1.0", "3.0a1"]) == Version("1.0")
    assert spec.select(["3.0a1"]) == Version("3.0a1")


@pytest.mark.parametrize("text, reason", [
    ("p@" + "1" * 5000, "at most 500"),
    ("p@" + "1" * 101, "at most 100"),
    ("p@>=" + "1" * 101, "at most 100"),
    ("p@>=1,<" + "9" * 150, "at most 100"),
    ("a" * 201, "at most 200"),
])
def test_long_names_versions_and_specs_are_refused_before_parsing(text: str, reason: str
                                                                   ) -> None:
    # A 5,000-digit version used to escape as ValueError (Python's integer-string limit).
    with pytest.raises(InvalidSpec, match=reason):
        parse_spec(text)


def test_a_version_of_exactly_the_limit_is_fine() -> None:
    assert parse_spec("p@" + "1" * 100).pinned == Version("1" * 100)
    assert normalize_name("a" * 200) == "a" * 200
