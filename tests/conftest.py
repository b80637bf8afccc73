"""Session fixtures shared by the suite under ``tests/``. (The built-in plugins' own tests,
``plugins/*/tests/``, use the public harness's fixtures instead: :mod:`arcade_core.testing`.)

* ``builtin_wheels`` — the built-in plugins built into real wheels, once per session.
* ``dependency_wheelhouse`` — where dependency wheels are cached (``$ARCADE_WHEELHOUSE`` or
  ``<repo>/.cache/wheelhouse``), so only the first run on a machine needs the network.
* ``psutil_wheel`` — the wheel of the psutil version installed here (the built-in
  collectors' one dependency).
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from arcade_core.builtin import build_builtin_wheels
from arcade_core.wheelhouse import download_wheels

REPO = Path(__file__).resolve().parent.parent

@pytest.fixture(scope="session")
def builtin_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Normalized plugin name → wheel built from ``plugins/<name>/`` for this session."""
    return build_builtin_wheels(tmp_path_factory.mktemp("builtin-wheels"))


@pytest.fixture(scope="session")
def dependency_wheelhouse() -> Path:
    """The dependency wheel cache: ``$ARCADE_WHEELHOUSE`` or ``<repo>/.cache/wheelhouse``."""
    return Path(os.environ.get("ARCADE_WHEELHOUSE") or REPO / ".cache" / "wheelhouse")


@pytest.fixture(scope="session")
def psutil_wheel(dependency_wheelhouse: Path) -> Path:
    """A wheel of the installed psutil version, from (or fetched into) the wheelhouse."""
    return download_wheels([f"psutil=={psutil.__version__}"], dependency_wheelhouse)[0]
