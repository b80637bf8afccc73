"""An installed plugin version, :class:`Environment`, and its record ``arcade-env.json``.

An environment lives at ``<root>/<name>/<version>-<sha8>/`` (``sha8`` = the first 8 hex
digits of the plugin wheel's sha256, so a re-published wheel with the same version gets its
own directory) and is laid out by hand, because ``python -m venv`` costs 55-80 ms of
interpreter start and ensurepip seconds::

    pyvenv.cfg                        home / include-system-site-packages = false / version
    bin/python -> <base interpreter>  (a symlink; the env's interpreter for process isolation)
    lib/python3.X/site-packages/      the plugin wheel and its dependency wheels, unpacked
    arcade-env.json                   what is installed here; written last

This module is the one place that knows that record: :func:`write_record` writes it when
:mod:`arcade_core._builder` builds an environment, :func:`read_environment` reads it back
whenever :mod:`arcade_core._store` looks for an environment (a missing or garbled record
means no environment). The loader, the process supervisor and the host use
:class:`Environment` as a plain value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from ._exceptions import InstallError
from ._manifest import Manifest
from ._unpacker import PY as _PY
from ._wheel import EntryPoint, WheelInfo
from .states import Isolation

__all__ = ["ENV_FILENAME", "Environment", "WheelRecord", "read_environment", "write_record"]

ENV_FILENAME = "arcade-env.json"
_FORMAT = 1


@dataclass(frozen=True)
class WheelRecord:
    """One wheel installed into an environment."""

    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Environment:
    """An installed plugin version: where it is and what it was built from.

    ``site_packages`` goes on ``sys.path`` for in-process loading; ``python`` runs the
    plugin in a child process. ``sha256`` is the plugin wheel's; ``wheels`` lists the
    plugin wheel first, then the dependency wheels installed with it.
    """

    name: str
    version: str
    path: Path
    site_packages: Path
    python: Path
    entry_point: EntryPoint
    manifest: Manifest
    sha256: str
    wheels: tuple[WheelRecord, ...]
    created_at: float

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"


def write_record(
    env_dir: Path,
    plugin: WheelInfo,
    manifest: Manifest,
    wheels: Sequence[WheelInfo],
    created_at: float,
) -> None:
    """Write ``arcade-env.json`` into the new environment ``env_dir`` (still in its temp
    dir): the plugin wheel ``plugin`` with its ``manifest``, and ``wheels``, the plugin
    wheel first. Refused when a wheel installed a file of that name."""
    assert plugin.entry_point is not None
    record = {
        "format": _FORMAT,
        "name": plugin.name,
        "version": plugin.version,
        "entry_point": {
            "name": plugin.entry_point.name,
            "module": plugin.entry_point.module,
            "attr": plugin.entry_point.attr,
        },
        "manifest": manifest.to_dict(),
        "sha256": plugin.sha256,
        "wheels": [{"filename": w.filename, "sha256": w.sha256, "size": w.size} for w in wheels],
        "python": _PY,
        "created_at": created_at,
    }
    try:
        with open(env_dir / ENV_FILENAME, "x", encoding="utf-8") as fh:
            json.dump(record, fh, indent=1)
    except FileExistsError:
        raise InstallError(
            f"a wheel installs a file named {ENV_FILENAME!r}, which is reserved"
        ) from None


def read_environment(env_dir: Path) -> Environment | None:
    """The environment in ``env_dir``, or None if it is missing or broken."""
    try:
        data = json.loads((env_dir / ENV_FILENAME).read_bytes())
        wheels = tuple(
            WheelRecord(str(w["filename"]), str(w["sha256"]), int(w["size"]))
            for w in data["wheels"]
        )
        python_dir = str(data.get("python", _PY))
        version = str(Version(str(data["version"])))  # a garbled version = broken dir
        return Environment(
            name=str(data["name"]),
            version=version,
            path=env_dir,
            site_packages=env_dir / "lib" / python_dir / "site-packages",
            python=env_dir / "bin" / "python",
            entry_point=_entry_point_from(data["entry_point"]),
            manifest=_manifest_from(data["manifest"]),
            sha256=str(data["sha256"]),
            wheels=wheels,
            created_at=float(data["created_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _entry_point_from(data: Any) -> EntryPoint:
    if not isinstance(data, dict):
        raise ValueError("entry_point")
    name, module, attr = data["name"], data["module"], data.get("attr")
    if not isinstance(name, str) or not isinstance(module, str):
        raise ValueError("entry_point")
    if attr is not None and not isinstance(attr, str):
        raise ValueError("entry_point")
    return EntryPoint(name, module, attr)


def _manifest_from(data: Any) -> Manifest:
    """Rebuild a manifest that was checked when the environment was installed."""
    if not isinstance(data, dict):
        raise ValueError("manifest")
    manifest = Manifest(
        description=str(data.get("description", "")),
        type=str(data.get("type", "collector")),
        config_schema=data.get("config_schema"),
        default_config=dict(data.get("default_config") or {}),
        isolation=Isolation(data.get("isolation", Isolation.INLINE)),
        interval=None if data.get("interval") is None else float(data["interval"]),
        resources=dict(data.get("resources") or {}),
        exec=data.get("exec"),
    )
    if not isinstance(manifest.exec, (str, type(None))):
        raise ValueError("manifest")
    if not isinstance(manifest.config_schema, (dict, type(None))):
        raise ValueError("manifest")
    return manifest
