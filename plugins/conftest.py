"""Fixtures for the built-in plugins' own tests (``plugins/<dist>/tests/``).

The suite-wide session fixtures live in ``tests/conftest.py``; they are re-exported here
because a conftest only serves the directory below it. ``plugin_module`` imports the
plugin package of the test's distribution straight from its source tree.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.conftest import builtin_wheels, dependency_wheelhouse, psutil_wheel

__all__ = ["builtin_wheels", "dependency_wheelhouse", "plugin_module", "psutil_wheel"]


@pytest.fixture
def plugin_module(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The package of ``plugins/<dist>/`` (``<dist>`` with ``_`` for ``-``), from source.

    Afterwards the source tree leaves ``sys.path`` and the package leaves ``sys.modules``,
    so that a ``PluginHost`` loading the wheel built from the same source in a later test
    imports the wheel's copy, not a stale one.
    """
    dist_dir = request.path.parent.parent
    name = dist_dir.name.replace("-", "_")
    sys.path.insert(0, str(dist_dir))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(dist_dir))
        sys.path_importer_cache.pop(str(dist_dir), None)
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]
        importlib.invalidate_caches()
