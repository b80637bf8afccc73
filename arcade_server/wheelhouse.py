"""The server's name for :mod:`arcade_core.wheelhouse` (dependency wheels fetched into a local
wheelhouse), which moved to ``arcade_core`` so that the public plugin test harness
(:mod:`arcade_core.testing`) can fetch a plugin's dependency wheels without the server."""

from __future__ import annotations

from arcade_core.wheelhouse import (
    WheelhouseError,
    default_wheelhouse,
    dependency_wheels,
    download_wheels,
    requirements_of,
)

__all__ = [
    "WheelhouseError",
    "default_wheelhouse",
    "dependency_wheels",
    "download_wheels",
    "requirements_of",
]
