"""Write the wheel of an exec plugin (an executable in any language) without a build backend.

Why: an exec plugin is a file (a shell script, a compiled program) plus a manifest; a build
backend would add nothing but a dependency. :func:`write_exec_wheel` writes what a PEP 517
backend would: ``<dist>.data/scripts/<exec>`` (installed into the environment's ``bin/``
with its executable mode), a tiny package holding only ``arcade-plugin.json`` (whose
``"exec"`` names the file), the one ``arcade.plugins`` entry point naming that package,
``METADATA``, ``WHEEL`` and a ``RECORD`` with sha256 digests. ``tag`` lets a native binary
say its platform (``py3-none-linux_x86_64``). Public as
:func:`arcade_core.building.write_exec_wheel` (tests, the plugin template, built-ins).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["write_exec_wheel"]

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


def _digest(data: bytes) -> str:
    raw = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={raw}"


def write_exec_wheel(
    out_dir: str | os.PathLike[str],
    name: str,
    version: str,
    executable: bytes | str | os.PathLike[str],
    *,
    exec_name: str | None = None,
    manifest: Mapping[str, Any] | None = None,
    tag: str = "py3-none-any",
    summary: str = "",
) -> Path:
    """Write ``<dist>-<version>-<tag>.whl`` into ``out_dir`` and return its path.

    ``executable`` is the program's bytes, or the path of the file to ship; it is installed
    as ``bin/<exec_name>`` (default: ``name``) with mode 0755. ``manifest`` adds keys to the
    manifest (``description``, ``config``, ``interval``, ``resources``...); its ``exec`` is
    set to ``exec_name``. :class:`ValueError` for a name or file name a wheel cannot hold.
    """
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a valid distribution name")
    command = exec_name or name
    if "/" in command or command in ("", ".", ".."):
        raise ValueError(f"exec_name must be a bare file name, not {command!r}")
    program = executable if isinstance(executable, bytes) else \
        Path(executable).read_bytes() if not isinstance(executable, str) else \
        executable.encode()
    dist = re.sub(r"[-.]+", "_", name)
    module = dist.lower()
    data_dir = f"{dist}-{version}.data"
    dist_info = f"{dist}-{version}.dist-info"
    meta = {"description": summary or f"{name}: an exec plugin", **(manifest or {}),
            "exec": command}
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if summary:
        metadata += f"Summary: {summary}\n"
    members: dict[str, tuple[bytes, int]] = {
        f"{module}/__init__.py": (b'"""Holds the manifest of an exec plugin."""\n', 0o644),
        f"{module}/arcade-plugin.json": (json.dumps(meta, indent=2).encode() + b"\n", 0o644),
        f"{data_dir}/scripts/{command}": (program, 0o755),
        f"{dist_info}/METADATA": (metadata.encode(), 0o644),
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: arcade-core\nRoot-Is-Purelib: true\n"
            f"Tag: {tag}\n".encode(), 0o644),
        f"{dist_info}/entry_points.txt": (
            f"[arcade.plugins]\n{name} = {module}\n".encode(), 0o644),
    }
    rows = [f"{path},{_digest(data)},{len(data)}" for path, (data, _) in members.items()]
    rows.append(f"{dist_info}/RECORD,,")
    members[f"{dist_info}/RECORD"] = (("\n".join(rows) + "\n").encode(), 0o644)
    target_dir = Path(out_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{dist}-{version}-{tag}.whl"
    fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=".exec-wheel-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            for path, (data, mode) in members.items():
                info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (0o100000 | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
