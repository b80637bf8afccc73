"""A wheel made from a distribution installed beside the agent: the dependency wheels of the
agent's local plugins when nobody gave them.

A local plugin (:mod:`arcade_agent.local`) is installed like any plugin: into its own
environment, from its wheel and its dependency wheels. The built-ins ``cpu`` and ``memory``
need ``psutil``; a standalone agent has no server to fetch its wheel from, and may have no
network. But the ``agent`` extra installs ``psutil`` into the agent's own interpreter, so
its files are here: :func:`wheel_from_installed` packs an installed distribution back into
a wheel (its files as its ``RECORD`` lists them, its ``WHEEL`` tags, a fresh ``RECORD`` with
each file's sha256, written by :func:`arcade_core.building.write_wheel_file`). The zip is
deterministic (sorted members, fixed timestamps), so the same
installed files give the same bytes and an agent restart finds the environment it built
before. Only a distribution installed from a wheel (it has a ``WHEEL`` file) can be packed;
files outside its ``site-packages`` (scripts) are left out: a plugin imports its
dependencies, it does not run their commands.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

from arcade_core.building import write_wheel_file

from .errors import AgentError

__all__ = ["RewheelError", "wheel_from_installed"]

_SKIP = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


class RewheelError(AgentError):
    """An installed distribution cannot be packed into a wheel (not installed, not from a
    wheel, or a file of it is gone)."""


def wheel_from_installed(name: str, out_dir: Path) -> Path:
    """Pack the distribution ``name`` installed in this interpreter into a wheel in
    ``out_dir``; return its path (written atomically). Raises :class:`RewheelError`."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise RewheelError(f"{name} is not installed beside the agent") from None
    wheel_meta = dist.read_text("WHEEL")
    files = dist.files
    if wheel_meta is None or files is None:
        raise RewheelError(f"{name} {dist.version} was not installed from a wheel (no WHEEL "
                           "or RECORD in its metadata)")
    tags = [line.split(":", 1)[1].strip() for line in wheel_meta.splitlines()
            if line.startswith("Tag:")]
    if not tags:
        raise RewheelError(f"{name} {dist.version}: its WHEEL file names no tag")
    dist_name = str(canonicalize_name(dist.metadata["Name"])).replace("-", "_")
    filename = f"{dist_name}-{dist.version}-{_compressed(tags)}.whl"
    files_in: list[tuple[str, Path]] = []
    record_name = ""
    for item in files:
        posix = item.as_posix()
        if posix.startswith("../") or "/__pycache__/" in f"/{posix}" or posix.endswith(".pyc"):
            continue
        if ".dist-info/" in posix and posix.rsplit("/", 1)[-1] in _SKIP:
            if posix.endswith("/RECORD"):
                record_name = posix
            continue
        files_in.append((posix, Path(str(item.locate()))))
    if not record_name:
        raise RewheelError(f"{name} {dist.version}: no RECORD among its files")
    members: list[tuple[str, bytes, int]] = []
    for arcname, path in sorted(files_in):
        try:
            members.append((arcname, path.read_bytes(), 0o644))
        except OSError as exc:
            raise RewheelError(f"{name} {dist.version}: cannot read {path}: "
                               f"{exc.strerror}") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_wheel_file(out_dir / filename, members, record_name=record_name)


def _compressed(tags: list[str]) -> str:
    """``cp36-abi3-manylinux_2_17_x86_64`` and friends → the wheel filename's tag part."""
    parts = [tag.split("-") for tag in tags if tag.count("-") == 2]
    if not parts:
        raise RewheelError(f"malformed wheel tags {tags!r}")
    return "-".join(".".join(sorted(dict.fromkeys(p[i] for p in parts))) for i in range(3))
