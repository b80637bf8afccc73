"""Build a plugin project into a wheel for the test harness (:mod:`arcade_core.building`).

The build runs without an isolated build environment (so offline): the project's build
backend (``flit_core``, ``hatchling``, ``setuptools``, ...) must be installed beside the tests,
which the ``testing`` extra does for ``flit_core``, the backend of the built-in plugins and of
``arcade plugin new``'s template. Hooks run in a subprocess, so a backend cannot change the
test session's interpreter.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import building
from .._exceptions import ArcadeError

__all__ = ["HarnessError", "build_wheel"]


class HarnessError(ArcadeError):
    """The harness could not do what a test asked: the project does not build, is not a
    plugin project, or its wheel does not install; the message says what to fix."""


def build_wheel(project: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Build the project in ``project`` (a directory with ``pyproject.toml``) into a wheel in
    ``out_dir`` and return its path (:func:`arcade_core.building.build_wheel`, hooks in a
    subprocess: an author's backend cannot change the test session). Raises
    :class:`HarnessError` saying what to fix."""
    try:
        return building.build_wheel(project, out_dir)
    except building.BuildError as exc:
        raise HarnessError(str(exc)) from None
