"""Fixtures for the tests of plugins written in other languages: ``gcc``, the C compiler
(skipped where missing, failed where required: :func:`tests.plugins.cplugin.find_gcc`)."""

from __future__ import annotations

import pytest

from .cplugin import find_gcc

__all__ = ["gcc"]


@pytest.fixture(scope="session")
def gcc() -> str:
    """The C compiler's path."""
    return find_gcc()
