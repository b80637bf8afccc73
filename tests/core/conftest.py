"""Fixtures for the core tests: real third-party wheels, fetched once per machine.

``third_party_wheels`` maps a normalized project name to a wheel from the dependency
wheelhouse (``$ARCADE_WHEELHOUSE`` or ``<repo>/.cache/wheelhouse``); ``download_wheels``
reuses files already there, so only the very first run needs the network.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from arcade_core.wheelhouse import download_wheels

WHEELHOUSE = Path(__file__).resolve().parents[2] / ".cache" / "wheelhouse"


@pytest.fixture(scope="session")
def third_party_wheels() -> dict[str, Path]:
    """``{"six": Path(".../six-1.17.0-py2.py3-none-any.whl")}``."""
    wheelhouse = Path(os.environ.get("ARCADE_WHEELHOUSE") or WHEELHOUSE)
    return {
        str(parse_wheel_filename(path.name)[0]): path
        for path in download_wheels(["six"], wheelhouse)
    }
