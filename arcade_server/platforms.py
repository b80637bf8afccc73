"""The platforms an import resolves wheels for: what agents report about themselves.

An agent registers ``os`` (``platform.system().lower()``), ``arch`` (``platform.machine()``)
and ``python_version``; :class:`Platform` turns those three facts into the arguments
``pip download`` needs to pick wheels for a machine it is not running on (``--platform``,
``--python-version``, ``--implementation cp``) and into the PEP 508 marker environment that
decides which ``Requires-Dist`` apply there. Agents do not report their C library, so Linux
is taken as glibc with manylinux wheels up to ``manylinux_2_28`` (RHEL 8, Debian 10 and
newer) plus plain ``linux_<arch>`` ones; musl (Alpine) agents are not targeted.
"""

from __future__ import annotations

import platform as _platform
import re
from dataclasses import dataclass

__all__ = ["MANYLINUX_MAX", "Platform", "server_platform"]

#: The newest glibc a Linux agent is assumed to have (manylinux_2_<MAX>).
MANYLINUX_MAX = 28
_LEGACY_MANYLINUX = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
_WINDOWS_ARCH = {"amd64": "win_amd64", "x86_64": "win_amd64", "arm64": "win_arm64",
                 "x86": "win32", "i386": "win32", "i686": "win32"}
_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?")
_SYS_PLATFORM = {"linux": "linux", "darwin": "darwin", "windows": "win32"}


@dataclass(frozen=True, order=True)
class Platform:
    """One (os, arch, Python) an agent runs on, e.g. ``linux``, ``x86_64``, ``3.11.4``."""

    os: str
    arch: str
    python_version: str

    @classmethod
    def of(cls, os: str, arch: str, python_version: str) -> Platform | None:
        """The platform of an agent's facts, or None when they are incomplete or unknown
        (an agent that never registered them, or an OS without wheels of its own)."""
        os, arch = os.strip().lower(), arch.strip()
        match = _VERSION.match(python_version.strip())
        if os not in _SYS_PLATFORM or not arch or match is None:
            return None
        return cls(os, arch, match.group(0))

    @property
    def label(self) -> str:
        """How messages name it: ``linux x86_64, Python 3.11``."""
        return f"{self.os} {self.arch}, Python {self.python_version}"

    @property
    def pip_platforms(self) -> list[str]:
        """The ``--platform`` values of ``pip download`` (several: any of them fits)."""
        arch = self.arch.lower()
        if self.os == "windows":
            return [_WINDOWS_ARCH.get(arch, f"win_{arch}")]
        if self.os == "darwin":
            # pip expands a macosx tag to every older macOS version and to universal2.
            return [f"macosx_14_0_{'arm64' if arch in ('arm64', 'aarch64') else arch}"]
        tags = [f"manylinux_2_{minor}_{arch}" for minor in range(MANYLINUX_MAX, 4, -1)]
        tags += [f"{legacy}_{arch}" for legacy in _LEGACY_MANYLINUX]
        return [*tags, f"linux_{arch}"]

    @property
    def markers(self) -> dict[str, str]:
        """The PEP 508 marker environment of this platform (``extra`` empty)."""
        major_minor = ".".join(self.python_version.split(".")[:2])
        full = self.python_version if self.python_version.count(".") == 2 else \
            f"{major_minor}.0"
        system = {"linux": "Linux", "darwin": "Darwin", "windows": "Windows"}[self.os]
        return {
            "os_name": "nt" if self.os == "windows" else "posix",
            "sys_platform": _SYS_PLATFORM[self.os],
            "platform_system": system,
            "platform_machine": self.arch,
            "platform_release": "",
            "platform_version": "",
            "python_version": major_minor,
            "python_full_version": full,
            "implementation_name": "cpython",
            "implementation_version": full,
            "platform_python_implementation": "CPython",
            "extra": "",
        }


def server_platform() -> Platform:
    """The platform of this server process (the import target while no agent is known)."""
    found = Platform.of(_platform.system(), _platform.machine(), _platform.python_version())
    if found is None:  # pragma: no cover - a server on an OS without wheels of its own
        return Platform("linux", _platform.machine() or "x86_64", _platform.python_version())
    return found
