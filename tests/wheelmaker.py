"""Write real, spec-conformant wheels for tests, without a build backend.

``make_wheel`` produces what any PEP 517 backend would (``*.dist-info/METADATA``, ``WHEEL``,
``entry_points.txt``, ``RECORD`` with sha256 digests), and lets a test bend any part of it
to make a hostile or malformed wheel.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

DEFAULT_CLASS = '''\
from arcade_core import hookimpl, Metric


class Plugin:
    def __init__(self, config):
        self.config = config

    @hookimpl
    def collect(self):
        return [Metric(name="{name}.value", value={value})]
'''


def record_digest(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def make_wheel(
    directory: Path,
    name: str,
    version: str = "1.0.0",
    *,
    files: Mapping[str, str | bytes] | None = None,
    entry_points: Iterable[str] | None = None,
    manifest: Mapping[str, Any] | str | None = None,
    requires: Iterable[str] = (),
    requires_python: str | None = None,
    summary: str = "",
    tag: str = "py3-none-any",
    metadata: str | None = None,
    record: bool = True,
    bad_record_for: str | None = None,
    extra_members: Mapping[str, bytes] | None = None,
    symlinks: Mapping[str, str] | None = None,
) -> Path:
    """Write ``{name}-{version}-{tag}.whl`` into ``directory`` and return its path.

    ``files`` maps paths inside the wheel to contents; by default a package
    ``{module}/__init__.py`` holds a plugin class ``Plugin`` whose ``collect`` returns
    one metric, and the entry point is ``{name} = {module}:Plugin``. Pass
    ``entry_points=[]`` for a dependency wheel. ``manifest`` is written as
    ``{module}/arcade-plugin.json``. ``bad_record_for`` writes a wrong RECORD hash for
    that path; ``extra_members`` are added *without* RECORD entries (for hostile paths);
    ``symlinks`` adds zip members flagged as symlinks.
    """
    dist = name.replace("-", "_").replace(".", "_")
    module = dist.lower()
    if files is None:
        files = {f"{module}/__init__.py": DEFAULT_CLASS.format(name=module, value=1.0)}
    if entry_points is None:
        entry_points = [f"{name} = {module}:Plugin"]
    entry_points = list(entry_points)
    dist_info = f"{dist}-{version}.dist-info"
    members: dict[str, bytes] = {
        path: (content.encode() if isinstance(content, str) else content)
        for path, content in files.items()
    }
    if manifest is not None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        members[f"{module}/arcade-plugin.json"] = text.encode()
    if metadata is None:
        lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        if summary:
            lines.append(f"Summary: {summary}")
        if requires_python:
            lines.append(f"Requires-Python: {requires_python}")
        lines += [f"Requires-Dist: {req}" for req in requires]
        metadata = "\n".join(lines) + "\n"
    members[f"{dist_info}/METADATA"] = metadata.encode()
    members[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: arcade-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
    ).encode()
    if entry_points:
        members[f"{dist_info}/entry_points.txt"] = (
            "[arcade.plugins]\n" + "\n".join(entry_points) + "\n"
        ).encode()
    record_path = f"{dist_info}/RECORD"
    if record:
        rows = []
        for path, data in members.items():
            digest = record_digest(b"tampered" if path == bad_record_for else data)
            rows.append(f"{path},{digest},{len(data)}")
        rows.append(f"{record_path},,")
        members[record_path] = ("\n".join(rows) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    wheel_path = directory / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in {**members, **(extra_members or {})}.items():
            zf.writestr(member, data)
        for member, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(member)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, target)
    return wheel_path
