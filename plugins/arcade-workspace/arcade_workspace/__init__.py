"""Arcade built-in plugin ``arcade-workspace``: a clean working directory per job.

``before(job)`` creates ``<root>/<job id>`` — empty: whatever an earlier run of the same job
left there is removed first — and returns it as the job's ``workdir`` and as
``$ARCADE_WORKSPACE`` in the commands' environment. ``after(job, result)`` removes it again,
unless the config says to keep it (always, or when the job did not succeed, to look at what
a failed build left behind).

The directory is derived from the root and the job id alone, not remembered by the instance:
a job lists the plugin once as a ``before`` entry and once as an ``after`` (or
``on_success``/``on_failure``) entry, and every entry is its own instance. Give both entries
the same ``root`` (the default does).

A job id that is not a single path component (``..``, ``a/b``, an absolute path, NUL) is
refused, so no job can create or remove anything outside the root. The default root,
``arcade-workspaces`` in the system's temporary directory, is shared ground: it is created
private (``0700``) and refused if it is a symlink or belongs to another user.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from arcade_core import JobContext, JobResult, hookimpl

__all__ = ["DEFAULT_ROOT_NAME", "ENV_VAR", "Workspace", "WorkspaceError"]
__version__ = "1.0.0"

#: The environment variable that carries the workspace's path to the job's commands.
ENV_VAR = "ARCADE_WORKSPACE"
#: The default root's name inside the system's temporary directory.
DEFAULT_ROOT_NAME = "arcade-workspaces"
# File names longer than this many bytes are refused (most file systems stop at 255).
_MAX_NAME_BYTES = 200


class WorkspaceError(RuntimeError):
    """A workspace cannot be created or removed (bad job id, unsafe root, file system error)."""


def _job_id(job: JobContext | Mapping[str, Any]) -> str:
    job_id = job.get("job_id") if isinstance(job, Mapping) else job.job_id
    if not isinstance(job_id, str):
        raise WorkspaceError(f"the job has no usable job_id ({job_id!r}); it must be a string")
    return job_id


def _succeeded(result: JobResult | Mapping[str, Any]) -> bool:
    if isinstance(result, Mapping):
        return result.get("status") == "succeeded"
    return result.succeeded


def _make_writable(top: Path) -> None:
    """Give the owner full access to ``top`` and every directory below it.

    Jobs leave read-only directories behind (Go's module cache, ``chmod -R a-w``), which
    ``rmtree`` cannot empty. Symlinks are neither changed nor followed.
    """
    if top.is_symlink():
        return
    os.chmod(top, stat.S_IRWXU)
    for dirpath, dirnames, _ in os.walk(top):  # top-down: fixed before it is entered
        for name in dirnames:
            child = os.path.join(dirpath, name)
            if not os.path.islink(child):
                os.chmod(child, stat.S_IRWXU)


def _remove(path: Path) -> None:
    """Remove ``path`` (a directory tree, a file or a symlink, which is not followed)."""
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return
    try:
        shutil.rmtree(path)
    except PermissionError:
        _make_writable(path)
        shutil.rmtree(path)


class Workspace:
    """Creates ``<root>/<job id>`` in ``before`` and removes it in ``after``.

    Config (validated and defaulted by the host against ``arcade-plugin.json``):
    ``root`` — absolute directory the workspaces are made in (``~`` is expanded; default
    ``arcade-workspaces`` in the system's temporary directory); ``keep`` — never remove the
    workspace (default false); ``keep_on_failure`` — keep it when the job did not succeed
    (default false).
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        root = config.get("root")
        if root is None or root == "":
            self.root = Path(tempfile.gettempdir()) / DEFAULT_ROOT_NAME
            self.default_root = True
        elif isinstance(root, str):
            path = Path(root).expanduser()
            if not path.is_absolute():
                raise ValueError(f"root must be an absolute path, not {root!r}")
            self.root = path
            self.default_root = False
        else:
            raise ValueError(f"root must be a string (an absolute path), not {root!r}")
        self.keep = bool(config.get("keep", False))
        self.keep_on_failure = bool(config.get("keep_on_failure", False))

    def path_for(self, job_id: str) -> Path:
        """The workspace of ``job_id``; raise :class:`WorkspaceError` for an id that is not
        exactly one file name inside the root (so cannot reach outside it)."""
        if not job_id:
            raise WorkspaceError("the job id is empty: a workspace needs a job id to be named")
        if (
            job_id in (".", "..")
            or "/" in job_id
            or "\\" in job_id
            or "\0" in job_id
            or (os.altsep is not None and os.altsep in job_id)
            or Path(job_id).anchor
        ):
            raise WorkspaceError(
                f"job id {job_id!r} would escape the workspace root {self.root}: a job id "
                "used as a directory name must not be '.' or '..' nor contain '/', '\\' or NUL"
            )
        if len(job_id.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES:
            raise WorkspaceError(
                f"job id {job_id[:40]!r}... is longer than {_MAX_NAME_BYTES} bytes: too long "
                "for a directory name"
            )
        path = self.root / job_id
        if path.parent != self.root:  # belt and braces: one component below the root
            raise WorkspaceError(f"job id {job_id!r} would escape the workspace root {self.root}")
        return path

    def _ensure_root(self) -> None:
        """Create the root if needed; check that the default root is ours alone."""
        try:
            if not self.default_root:
                self.root.mkdir(parents=True, exist_ok=True)
                return
            self.root.mkdir(mode=stat.S_IRWXU, exist_ok=True)
            info = self.root.lstat()
        except OSError as exc:
            raise WorkspaceError(
                f"cannot create the workspace root {self.root}: {exc.strerror or exc}; "
                "set root to a directory this agent may write"
            ) from None
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise WorkspaceError(
                f"the default workspace root {self.root} is not a plain directory (a symlink "
                "or a file): someone else may control it; remove it or set root in the config"
            )
        getuid = getattr(os, "getuid", None)
        if getuid is not None and info.st_uid != getuid():
            raise WorkspaceError(
                f"the default workspace root {self.root} belongs to uid {info.st_uid}, not to "
                f"this agent's user (uid {getuid()}); remove it or set root in the config"
            )
        if stat.S_IMODE(info.st_mode) != stat.S_IRWXU:
            os.chmod(self.root, stat.S_IRWXU)

    @hookimpl
    def before(self, job: JobContext | Mapping[str, Any]) -> dict[str, Any]:
        """Create the job's empty workspace; return it as ``workdir`` and ``$ARCADE_WORKSPACE``.

        Anything at that path already (left by an earlier run of the same job) is removed
        first. Raises :class:`WorkspaceError` (which aborts the job) for an unusable job id
        or root.
        """
        path = self.path_for(_job_id(job))
        self._ensure_root()
        try:
            if os.path.lexists(path):
                _remove(path)
            path.mkdir()
        except OSError as exc:
            raise WorkspaceError(
                f"cannot create the workspace {path}: {type(exc).__name__}: {exc}"
            ) from None
        where = str(path)
        return {"workdir": where, "env": {ENV_VAR: where}, "outputs": {"workspace": where}}

    @hookimpl
    def after(
        self, job: JobContext | Mapping[str, Any], result: JobResult | Mapping[str, Any]
    ) -> dict[str, Any]:
        """Remove the job's workspace unless configured to keep it.

        Returns ``{"removed": bool, "path": str}``, and when nothing was removed the
        ``reason``: ``keep``, ``keep_on_failure`` or ``missing`` (there was no workspace).
        Raises :class:`WorkspaceError` when it cannot be removed.
        """
        path = self.path_for(_job_id(job))
        where = str(path)
        if self.keep:
            return {"removed": False, "path": where, "reason": "keep"}
        if self.keep_on_failure and not _succeeded(result):
            return {"removed": False, "path": where, "reason": "keep_on_failure"}
        if not os.path.lexists(path):
            return {"removed": False, "path": where, "reason": "missing"}
        try:
            _remove(path)
        except OSError as exc:
            raise WorkspaceError(
                f"cannot remove the workspace {path}: {type(exc).__name__}: {exc}"
            ) from None
        return {"removed": True, "path": where}
