"""Every hook in ``arcade_core.hookspecs`` is documented, in its docstring and in
``docs/plugin-authoring.md``, and exercised by a test (after datasette's test_docs.py)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from arcade_core import PROJECT_NAME, hookspecs

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "plugin-authoring.md"

HOOKS = sorted(
    name
    for name, obj in vars(hookspecs).items()
    if inspect.isfunction(obj) and hasattr(obj, f"{PROJECT_NAME}_spec")
)


def _sections() -> dict[str, str]:
    """Hook name → text of its "### `name`" section of the plugin authoring guide."""
    sections: dict[str, str] = {}
    current: str | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            match = re.fullmatch(r"###\s+`(\w+)`\s*", line)
            current = match.group(1) if match else None
            if current is not None:
                sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def _test_sources() -> str:
    """Every test module of the suite and of the built-in plugins, except this one."""
    paths = [*(REPO / "tests").rglob("test_*.py"), *(REPO / "plugins").glob("*/tests/test_*.py")]
    return "\n".join(
        p.read_text(encoding="utf-8") for p in paths if p.resolve() != Path(__file__).resolve()
    )


def test_the_hook_list_matches_the_hook_specifications() -> None:
    assert sorted(hookspecs.HOOK_NAMES) == HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_docstring_saying_when_it_fires_and_what_it_returns(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert "When:" in doc, f"hookspecs.{hook} docstring must say when it fires"
    assert "Returns:" in doc, f"hookspecs.{hook} docstring must say what it returns"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_section_in_the_plugin_authoring_guide(hook: str) -> None:
    sections = _sections()
    assert hook in sections, f"docs/plugin-authoring.md needs a section titled ### `{hook}`"
    text = sections[hook]
    for argument in inspect.signature(getattr(hookspecs, hook)).parameters:
        assert f"`{argument}`" in text, f"section `{hook}` must describe argument `{argument}`"
    assert "**Returns**" in text, f"section `{hook}` must say what the hook returns"
    assert "**When**" in text, f"section `{hook}` must say when the hook fires"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook: str) -> None:
    pattern = re.compile(
        rf"""\.hook\.{hook}\(|\bcall\(\s*["']{hook}["']|subset_hook_caller\(\s*["']{hook}["']"""
    )
    exercised = pattern.search(_test_sources()) is not None
    assert exercised, (
        f"no test calls the {hook!r} hook (host.hook.{hook}(...) or host.call({hook!r}, ...))"
    )
