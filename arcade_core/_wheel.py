"""What a wheel is, as Arcade sees it: :class:`WheelInfo`, its :class:`EntryPoint`, and the
:class:`WheelLimits` a wheel is read under.

These are the value types of wheel inspection; the reading and the checks live in
:mod:`arcade_core._inspection` (:func:`~arcade_core.inspect_wheel`) and
:mod:`arcade_core._rules`, requirement resolution in :mod:`arcade_core.requirements`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ._exceptions import InvalidWheel
from ._manifest import Manifest

__all__ = ["DEFAULT_LIMITS", "PLUGIN_GROUP", "EntryPoint", "WheelInfo", "WheelLimits"]

#: The entry-point group a plugin wheel declares its plugin in (exactly one entry).
PLUGIN_GROUP = "arcade.plugins"

_MiB = 1024 * 1024
_ENTRY_VALUE = re.compile(
    r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*"
    r"(?::\s*(?P<attr>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*))?\s*"
    r"(?:\[[^\]]*\])?\s*$"
)


@dataclass(frozen=True)
class EntryPoint:
    """An entry point such as ``cpu = arcade_cpu:Cpu`` (``attr`` is ``None`` for a module)."""

    name: str
    module: str
    attr: str | None

    @property
    def value(self) -> str:
        """The entry point as written after ``=``: ``module:attr`` or ``module``."""
        return f"{self.module}:{self.attr}" if self.attr else self.module

    @classmethod
    def parse(cls, name: str, value: str) -> EntryPoint:
        """Parse ``module``, ``module:attr`` or ``module:attr [extras]``.

        Raises :class:`InvalidWheel` (a ``ValueError``) saying what the form should be."""
        match = _ENTRY_VALUE.match(value.strip())
        if not name.strip() or match is None:
            raise InvalidWheel(
                f"entry point {name.strip()} = {value.strip()!r} is not of the form "
                "'name = package.module:Class' (or 'name = package.module')"
            )
        return cls(name.strip(), match["module"], match["attr"])

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"


@dataclass(frozen=True)
class WheelLimits:
    """Zip-bomb and abuse limits applied before and while a wheel is read.

    The defaults fit any real wheel (numpy, torch-sized wheels need larger ``max_wheel_bytes``
    and ``max_uncompressed_bytes``); tighten them for untrusted uploads or loosen them per call.
    ``max_ratio`` applies to every member of at least ``ratio_min_bytes`` uncompressed bytes
    (tiny files compress erratically) and to the archive as a whole.
    """

    max_wheel_bytes: int = 512 * _MiB
    max_files: int = 20_000
    max_uncompressed_bytes: int = 2048 * _MiB
    max_ratio: float = 200.0
    max_member_bytes: int = 512 * _MiB
    max_metadata_bytes: int = 8 * _MiB
    ratio_min_bytes: int = 1 * _MiB


DEFAULT_LIMITS = WheelLimits()


@dataclass(frozen=True)
class WheelInfo:
    """What :func:`~arcade_core.inspect_wheel` learnt about one wheel. ``name`` is PEP 503
    normalized, ``version`` PEP 440 normalized, ``tags`` like ``{"py3-none-any"}``;
    ``entry_point`` and ``manifest`` are set for a plugin wheel (``manifest`` is ``None``
    when it ships none)."""

    path: Path
    filename: str
    name: str
    version: str
    summary: str
    requires_dist: tuple[str, ...]
    requires_python: str | None
    tags: frozenset[str]
    entry_point: EntryPoint | None
    manifest: Manifest | None
    sha256: str
    size: int

    @property
    def is_plugin(self) -> bool:
        """True when the wheel declares exactly one ``arcade.plugins`` entry point."""
        return self.entry_point is not None

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"
