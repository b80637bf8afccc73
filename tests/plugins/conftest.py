"""Fixtures for the tests of plugins written in other languages.

``gcc`` is the C compiler. Where it is missing the C plugin's tests are skipped, except when
``$CI`` or ``$ARCADE_REQUIRE_GCC`` is set (``.ci/run`` sets it, after installing gcc if the
machine has none), where they fail: a CI run must never pass by silently skipping them (the
same rule as ``$ARCADE_REQUIRE_POSTGRES`` in tests/pg.py).
"""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["find_gcc", "gcc"]


def find_gcc() -> str:
    """The path of ``gcc``; skips the test when it is missing, fails it when it is required."""
    path = shutil.which("gcc")
    if path is not None:
        return path
    if os.environ.get("CI") or os.environ.get("ARCADE_REQUIRE_GCC"):
        pytest.fail("gcc is required here ($CI or $ARCADE_REQUIRE_GCC is set) but is not on "
                    "PATH: apt-get install -y gcc (.ci/run does)", pytrace=False)
    pytest.skip("gcc is not installed (set ARCADE_REQUIRE_GCC=1 to make this a failure)")


@pytest.fixture(scope="session")
def gcc() -> str:
    """The C compiler's path (see the module docstring)."""
    return find_gcc()
