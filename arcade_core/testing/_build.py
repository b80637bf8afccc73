"""Build a plugin project into a wheel for the test harness: PEP 517 through ``build``.

The build runs without an isolated build environment (so offline): the project's build
backend (``flit_core``, ``hatchling``, ``setuptools``, ...) must be installed beside the tests,
which the ``testing`` extra does for ``flit_core``, the backend of the built-in plugins and of
``arcade plugin new``'s template. Hooks run in a subprocess, so a backend cannot change the
test session's interpreter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .._exceptions import ArcadeError

__all__ = ["HarnessError", "build_wheel"]


class HarnessError(ArcadeError):
    """The harness could not do what a test asked: the project does not build, is not a
    plugin project, or its wheel does not install; the message says what to fix."""


def build_wheel(project: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Build the project in ``project`` (a directory with ``pyproject.toml``) into a wheel in
    ``out_dir`` and return its path.

    The wheel is built in a temporary directory inside ``out_dir`` and renamed into place, so
    ``out_dir`` never holds a partial wheel. Raises :class:`HarnessError` with the backend's
    last lines of output, or the build requirements that are not installed.
    """
    try:
        from build import BuildBackendException, BuildException, ProjectBuilder
    except ImportError:
        raise HarnessError(
            "building a plugin wheel needs the 'build' package: pip install "
            "'arcade-fleet[testing]'"
        ) from None
    source = Path(project).resolve()
    if not (source / "pyproject.toml").is_file():
        raise HarnessError(f"{source} has no pyproject.toml: it is not a plugin project")
    target = Path(out_dir).resolve()
    target.mkdir(parents=True, exist_ok=True)
    from pyproject_hooks import quiet_subprocess_runner

    try:
        builder = ProjectBuilder(
            source, python_executable=sys.executable, runner=quiet_subprocess_runner
        )
        missing = builder.check_dependencies("wheel")
    except (BuildException, BuildBackendException) as exc:
        raise HarnessError(f"cannot build a wheel from {source}: {_reason(exc)}") from None
    if missing:
        names = sorted({chain[0] for chain in missing})
        raise HarnessError(
            f"cannot build a wheel from {source}: its build requirements {', '.join(names)} "
            f"are not installed beside the tests ({sys.prefix}); pip install "
            + " ".join(repr(n) for n in names)
        )
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target))
    try:
        try:
            built = Path(builder.build("wheel", staging))
        except (BuildException, BuildBackendException) as exc:
            raise HarnessError(f"cannot build a wheel from {source}: {_reason(exc)}") from None
        final = target / built.name
        os.replace(built, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _reason(exc: Exception) -> str:
    """What went wrong: the backend's exception, or the tail of its hook process's output."""
    cause = getattr(exc, "exception", exc)
    output = getattr(cause, "output", None)
    if isinstance(cause, subprocess.CalledProcessError) and output:
        text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
        return " | ".join([line for line in text.strip().splitlines() if line.strip()][-3:])
    return str(cause)
