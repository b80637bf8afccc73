"""Build a plugin project into a wheel: PEP 517 through ``build``, offline.

One builder for everything Arcade builds from sources: the test harness
(:mod:`arcade_core.testing`), ``arcade publish --builtin`` from a checkout and the quickstart
(:mod:`arcade_core.builtin`). The build runs without an isolated build environment, so
nothing is downloaded: the project's build backend (``flit_core``, ``hatchling``,
``setuptools``, ...) must be installed beside Arcade; a missing one is named with the ``pip
install`` that fixes it.

Hooks run in a subprocess (``build``'s quiet runner), so a backend cannot change the caller's
interpreter; with ``in_process=True``, backends known to have no global side effects
(``flit_core``) run in this interpreter instead, which saves two interpreter starts per wheel
(the server's built-ins; never the harness, which builds an author's arbitrary backend).

An exec plugin (an executable in any language) needs no backend: :func:`build_exec_wheel`
writes its wheel directly (checked inputs, a platform tag, reproducible bytes; the one behind
:mod:`arcade_core.exec_backend`, the PEP 517 backend of exec plugin projects, and of the
tests' exec plugins).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

from ._exceptions import ArcadeError

__all__ = ["BuildError", "build_exec_wheel", "build_wheel", "write_wheel_file"]

# Build backends whose hooks may run in this interpreter: importing them changes nothing
# global, and their hooks only read the source tree and write the output directory.
_IN_PROCESS_BACKENDS: Final = frozenset({"flit_core.buildapi", "arcade_core.exec_backend"})

# PEP 517 hooks run with the source tree as the working directory; the working directory
# (and os.environ, sys.argv) is process-wide, so in-process hook runs take turns.
_in_process_lock = threading.Lock()


class BuildError(ArcadeError):
    """A project could not be built into a wheel; the message says what to fix."""


class _Runner(Protocol):
    """pyproject_hooks' hook runner: runs ``cmd`` in ``cwd`` with ``extra_environ`` added."""

    def __call__(
        self,
        cmd: Sequence[str],
        cwd: str | None = None,
        extra_environ: Mapping[str, str] | None = None,
    ) -> None: ...


def build_wheel(project: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                in_process: bool = False) -> Path:
    """Build the project in ``project`` (a directory with ``pyproject.toml``) into a wheel in
    ``out_dir`` and return its absolute path.

    The wheel is built in a temporary directory inside ``out_dir`` and renamed into place, so
    ``out_dir`` never holds a partial wheel; an existing wheel of the same name is replaced.
    Raises :class:`BuildError` with the backend's last lines of output, or the build
    requirements that are not installed.
    """
    try:
        from build import BuildBackendException, BuildException, ProjectBuilder
    except ImportError:
        raise BuildError("building a plugin wheel needs the 'build' package: pip install "
                         "'arcade-fleet[testing]'") from None
    source = Path(project).resolve()
    if not (source / "pyproject.toml").is_file():
        raise BuildError(f"{source} is not a plugin project: it has no pyproject.toml (a "
                         "plugin needs one, with [build-system] and [project] tables)")
    target = Path(out_dir).resolve()
    target.mkdir(parents=True, exist_ok=True)
    try:
        builder = ProjectBuilder(source, python_executable=sys.executable,
                                 runner=_hook_runner(source, in_process=in_process))
        missing = builder.check_dependencies("wheel")
    except (BuildException, BuildBackendException) as exc:
        raise BuildError(f"cannot build a wheel from {source}: {_reason(exc)}") from None
    if missing:
        names = sorted({chain[0] for chain in missing})
        raise BuildError(
            f"cannot build a wheel from {source} offline: its build requirements "
            f"{', '.join(names)} are not installed in this environment ({sys.prefix}); "
            f"pip install {' '.join(repr(n) for n in names)}")
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target))
    try:
        try:
            built = Path(builder.build("wheel", staging))
        except (BuildException, BuildBackendException) as exc:
            raise BuildError(f"cannot build a wheel from {source}: {_reason(exc)}") from None
        final = target / built.name
        os.replace(built, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


# Wheel timestamps: SOURCE_DATE_EPOCH when set (reproducible builds), else 1980-01-01.
_ZIP_EPOCH: Final = 315532800
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_TAG_RE: Final = re.compile(r"^[a-z0-9_.]+$")


def build_exec_wheel(
    *,
    name: str,
    version: str,
    executable: str | os.PathLike[str],
    manifest: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    platform_tag: str = "any",
    summary: str = "",
    module: str | None = None,
    entry_name: str | None = None,
    package_files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write the wheel of an exec plugin (docs/protocol.md) and return its absolute path.

    flit and most backends cannot ship a file in ``<dist>-<ver>.data/scripts/``, where an
    exec plugin's executable goes (``installer`` puts it in the environment's ``bin/``, with
    its mode, and leaves a shebang other than ``#!python`` alone), so this writes the wheel
    itself: ``executable`` under ``manifest["exec"]`` with mode 0755; the package ``module``
    (default: ``name`` with ``-``/``.`` as ``_``) holding ``arcade-plugin.json`` and an
    ``__init__.py`` (or ``package_files``: file name → bytes); the ``arcade.plugins`` entry
    point ``entry_name = module``; METADATA, WHEEL (tag ``py3-none-<platform_tag>``: a
    native binary needs its platform, e.g. ``linux_x86_64``) and RECORD with sha256 digests.
    Written to a temporary file in ``out_dir`` and renamed into place, so ``out_dir`` never
    holds a partial wheel. Raises :class:`BuildError` saying what to fix.
    """
    exec_name = manifest.get("exec")
    if not isinstance(exec_name, str) or not _NAME_RE.match(exec_name):
        raise BuildError(f"the manifest's 'exec' must name the executable (a bare file name "
                         f"such as 'arcade-loadavg'), not {exec_name!r}")
    if not _NAME_RE.match(name):
        raise BuildError(f"{name!r} is not a valid distribution name")
    if not _TAG_RE.match(platform_tag):
        raise BuildError(f"{platform_tag!r} is not a platform tag (e.g. any, linux_x86_64)")
    source = Path(executable)
    try:
        program = source.read_bytes()
    except OSError as exc:
        raise BuildError(f"cannot read the executable {source}: {exc.strerror or exc}") from None
    dist = re.sub(r"[-_.]+", "_", name)
    package = module or dist.lower()
    if not package.isidentifier():
        raise BuildError(f"{package!r} is not a valid module name for the plugin's package")
    entry = entry_name or package
    text = f"{json.dumps(dict(manifest), indent=2)}\n".encode()
    files = dict(package_files) if package_files is not None else {
        "__init__.py": f'"""{name}: an exec plugin; its manifest names {exec_name}."""\n'
        .encode()}
    files["arcade-plugin.json"] = text
    dist_info = f"{dist}-{version}.dist-info"
    tag = f"py3-none-{platform_tag}"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if summary:
        metadata += f"Summary: {' '.join(summary.split())}\n"
    members: list[tuple[str, bytes, int]] = [
        *((f"{package}/{leaf}", data, 0o644) for leaf, data in sorted(files.items())),
        (f"{dist}-{version}.data/scripts/{exec_name}", program, 0o755),
        (f"{dist_info}/METADATA", metadata.encode(), 0o644),
        (f"{dist_info}/WHEEL", (f"Wheel-Version: 1.0\nGenerator: arcade_core.building\n"
                                f"Root-Is-Purelib: {str(platform_tag == 'any').lower()}\n"
                                f"Tag: {tag}\n").encode(), 0o644),
        (f"{dist_info}/entry_points.txt",
         f"[arcade.plugins]\n{entry} = {package}\n".encode(), 0o644),
    ]
    target = Path(out_dir).resolve()
    target.mkdir(parents=True, exist_ok=True)
    return write_wheel_file(target / f"{dist}-{version}-{tag}.whl", members,
                            record_name=f"{dist_info}/RECORD")


def write_wheel_file(final: Path, members: Sequence[tuple[str, bytes, int]], *,
                     record_name: str) -> Path:
    """Write ``members`` (path in the wheel, bytes, file mode) in their order and a RECORD
    of their sha256 digests named ``record_name`` to ``final``, reproducibly (timestamps from
    ``SOURCE_DATE_EPOCH``, else 1980) and atomically (a temporary file beside it, renamed):
    the one wheel writer of :func:`build_exec_wheel` and the agent's repacking of an
    installed distribution (``arcade_agent._rewheel``)."""
    record = "".join(f"{path},sha256={_b64_sha256(data)},{len(data)}\n"
                     for path, data, _mode in members) + f"{record_name},,\n"
    stamp = _time_tuple(int(os.environ.get("SOURCE_DATE_EPOCH") or _ZIP_EPOCH))
    fd, temp = tempfile.mkstemp(prefix=".building-", suffix=".whl", dir=final.parent)
    try:
        os.fchmod(fd, 0o644)  # a wheel is not a secret: readable like any built one
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            for path, data, mode in [*members, (record_name, record.encode(), 0o644)]:
                info = zipfile.ZipInfo(path, date_time=stamp)
                info.external_attr = (0o100000 | mode) << 16  # a regular file and its mode
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return final


def _b64_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def _time_tuple(epoch: int) -> tuple[int, int, int, int, int, int]:
    """A zip member's date_time for ``epoch`` (UTC), no earlier than 1980 (zip's floor)."""
    t = time.gmtime(max(epoch, _ZIP_EPOCH))
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def _reason(exc: Exception) -> str:
    """What went wrong: the backend's exception, or the tail of its hook process's output."""
    cause = getattr(exc, "exception", exc)
    output = getattr(cause, "output", None)
    if isinstance(cause, subprocess.CalledProcessError) and output:
        text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
        return " | ".join([line for line in text.strip().splitlines() if line.strip()][-3:])
    return str(cause)


def _hook_runner(source: Path, *, in_process: bool) -> _Runner:
    """The PEP 517 hook runner for ``source``: in this interpreter when asked and its
    backend allows."""
    import pyproject_hooks

    runner: _Runner = pyproject_hooks.quiet_subprocess_runner
    if not in_process:
        return runner
    try:
        table = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))[
            "build-system"
        ]
        # An in-tree backend path would have to go onto sys.meta_path: not in this process.
        allowed = table["build-backend"] in _IN_PROCESS_BACKENDS and "backend-path" not in table
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError):
        allowed = False  # ProjectBuilder reports what is wrong with the file
    return _run_hook_in_process if allowed else runner


def _run_hook_in_process(
    cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
) -> None:
    """Run one hook the way a fresh ``python`` would, but in this interpreter.

    ``cmd`` is pyproject_hooks' ``[python, .../_in_process.py, hook_name, control_dir]``:
    the script reads its input from and writes its result to ``control_dir``. It runs here
    with the same working directory, environment and ``sys.argv`` a subprocess would get;
    they are process-wide, so they are restored afterwards and runs are serialised. (The
    script also drops its own directory from ``sys.path``; that directory is never on it.)
    """
    script, *args = cmd[1:]
    with _in_process_lock, _patched_process_state([script, *args], cwd, extra_environ or {}):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as exc:  # the script's own usage errors; a backend error propagates
            if exc.code not in (None, 0):
                raise BuildError(f"PEP 517 hook runner refused {args}: {exc.code}") from None


@contextlib.contextmanager
def _patched_process_state(
    argv: list[str], cwd: str | None, environ: Mapping[str, str]
) -> Iterator[None]:
    saved_argv = sys.argv
    saved_env = {key: os.environ.get(key) for key in environ}
    sys.argv = argv
    os.environ.update(environ)
    try:
        with contextlib.chdir(cwd or os.getcwd()):
            yield
    finally:
        sys.argv = saved_argv
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
