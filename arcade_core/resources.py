"""A plugin's resource limits: the manifest's ``resources`` and an operator's override.

Both are maps of ``memory``, ``cpu`` and ``disk`` to a quantity, written as Kubernetes writes
them: ``{"memory": "128Mi", "cpu": "100m", "disk": "1Gi"}``. Memory and disk are bytes
(a plain number, or with a suffix ``Ki Mi Gi Ti Pi`` (powers of 1024) or ``k K M G T P``
(powers of 1000)); cpu is cores (``0.5``, ``2``) or millicores (``100m``). An override may
say ``"none"`` to lift a limit the manifest declares. Unknown keys are refused with a
message, so ``"memory_mb"`` is caught when a plugin is published, not silently ignored.

Public because three parts read the same words: the manifest (:mod:`arcade_core._manifest`),
the server (which validates an assignment's override before storing it) and the host (which
enforces the limits, :mod:`arcade_core._limits`, and reports them as text).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RESOURCE_KEYS",
    "InvalidResources",
    "Resources",
    "format_bytes",
    "format_cpu",
    "parse_bytes",
    "parse_cpu",
    "parse_resources",
]

#: The keys a ``resources`` map may have.
RESOURCE_KEYS = ("memory", "cpu", "disk")

_BINARY = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50}
_DECIMAL = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*$")
_NONE = "none"


class InvalidResources(ValueError):
    """A ``resources`` map or one of its quantities is not understood (the message says
    what to write instead)."""


def _number(value: Any, what: str, example: str) -> tuple[float, str]:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidResources(f"{what} must be a quantity such as {example!r}, "
                               f"not {value!r}")
    if isinstance(value, (int, float)):
        number, suffix = float(value), ""
    else:
        match = _QUANTITY.match(value)
        if match is None:
            raise InvalidResources(f"{what} is {value!r}; write a quantity such as {example!r}")
        number, suffix = float(match.group(1)), match.group(2)
    if not math.isfinite(number) or number <= 0:
        raise InvalidResources(f"{what} is {value!r}; it must be more than zero")
    return number, suffix


def parse_bytes(value: Any, what: str = "memory") -> int:
    """A byte quantity (``128Mi``, ``1G``, ``65536``) as bytes."""
    number, suffix = _number(value, what, "128Mi")
    if suffix:
        scale = _BINARY.get(suffix) or _DECIMAL.get(suffix)
        if scale is None:
            raise InvalidResources(
                f"{what} is {value!r}: unknown unit {suffix!r}; use one of "
                f"{', '.join([*_BINARY, 'k', 'M', 'G', 'T', 'P'])} or a number of bytes")
        number *= scale
    result = int(number)
    if result < 1:
        raise InvalidResources(f"{what} is {value!r}; it must be at least one byte")
    return result


def parse_cpu(value: Any, what: str = "cpu") -> int:
    """A cpu quantity (``100m``, ``0.5``, ``2``) as millicores."""
    number, suffix = _number(value, what, "100m")
    if suffix == "m":
        result = int(number)
    elif suffix == "":
        result = round(number * 1000)
    else:
        raise InvalidResources(f"{what} is {value!r}: write cores (0.5) or millicores (500m)")
    if result < 1:
        raise InvalidResources(f"{what} is {value!r}; it must be at least 1m")
    return result


def format_bytes(value: int) -> str:
    """Bytes in the largest binary unit that divides them exactly, else rounded to one
    decimal place of the largest unit below them (``128Mi``, ``1.5Gi``, ``512``)."""
    for unit, scale in reversed(_BINARY.items()):
        if value >= scale:
            if value % scale == 0:
                return f"{value // scale}{unit}"
            return f"{value / scale:.1f}{unit}"
    return str(value)


def format_cpu(millicores: int) -> str:
    """Millicores as Kubernetes writes them: ``100m``, ``2``."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


@dataclass(frozen=True)
class Resources:
    """Limits in force: ``memory`` and ``disk`` in bytes, ``cpu`` in millicores; ``None``
    means no limit."""

    memory: int | None = None
    cpu: int | None = None
    disk: int | None = None

    def __bool__(self) -> bool:
        return any(value is not None for value in (self.memory, self.cpu, self.disk))

    def override(self, top: Mapping[str, Any] | None) -> Resources:
        """These limits with ``top`` (an operator's override, raw or parsed keys) on top:
        each key it names wins; ``"none"`` lifts that limit."""
        if not top:
            return self
        parsed = _parse(top, allow_none=True)
        values = {key: getattr(self, key) for key in RESOURCE_KEYS}
        for key in RESOURCE_KEYS:
            if key in top:
                values[key] = parsed.get(key)
        return Resources(**values)

    def to_dict(self) -> dict[str, str]:
        """The limits as the quantities a manifest or override would write."""
        out: dict[str, str] = {}
        if self.memory is not None:
            out["memory"] = format_bytes(self.memory)
        if self.cpu is not None:
            out["cpu"] = format_cpu(self.cpu)
        if self.disk is not None:
            out["disk"] = format_bytes(self.disk)
        return out

    def __str__(self) -> str:
        return ", ".join(f"{key} {value}" for key, value in self.to_dict().items()) or "none"


def _parse(data: Mapping[str, Any], *, allow_none: bool) -> dict[str, int | None]:
    if not isinstance(data, Mapping):
        raise InvalidResources(
            f"resources must be an object such as {{\"memory\": \"128Mi\"}}, not {data!r}")
    unknown = sorted(str(key) for key in data if key not in RESOURCE_KEYS)
    if unknown:
        raise InvalidResources(
            f"unknown resource {', '.join(map(repr, unknown))}; the keys are "
            f"{', '.join(RESOURCE_KEYS)} (e.g. {{\"memory\": \"128Mi\", \"cpu\": \"100m\"}})")
    out: dict[str, int | None] = {}
    for key, value in data.items():
        if allow_none and isinstance(value, str) and value.strip().lower() in (_NONE, ""):
            out[key] = None
        elif key == "cpu":
            out[key] = parse_cpu(value, "cpu")
        else:
            out[key] = parse_bytes(value, key)
    return out


def parse_resources(data: Mapping[str, Any] | None, *, override: bool = False) -> Resources:
    """A ``resources`` map as :class:`Resources`; raises :class:`InvalidResources`.

    ``override``: the map is an operator's override, where ``"none"`` lifts a limit.
    """
    if not data:
        return Resources()
    values = _parse(data, allow_none=override)
    return Resources(memory=values.get("memory"), cpu=values.get("cpu"),
                     disk=values.get("disk"))
