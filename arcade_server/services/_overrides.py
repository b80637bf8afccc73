"""Per-assignment overrides: the collect interval and the resource limits an operator sets on
one assignment, checked before anything is written, and what the agent is sent.

* ``interval``: seconds between collects (an exec plugin gets it in its ``config`` message's
  ``data``), a finite number from :data:`MIN_INTERVAL` to :data:`MAX_INTERVAL`. The agent is
  sent the assignment's, else the manifest's, else 0 (the agent's own default):
  :func:`effective_interval`.
* ``resources``: ``{"memory": "128Mi", "cpu": "100m", "disk": "1Gi"}``, each key optional;
  the agent is sent the manifest's ``resources`` with the override's keys replacing theirs
  (:func:`effective_resources`), as strings. Part "limits" enforces them on the agent.

:func:`parse_quantity` is this part's own strict parser of a quantity, TO BE REPLACED by
``arcade_core.resources.parse_quantity`` (same signature, written by part "limits") when the
two land together: only the import in :func:`check_resources` changes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from arcade_core import Manifest

from ..db.tables import AnyRow
from ..errors import Invalid
from . import registry

__all__ = [
    "MAX_INTERVAL",
    "MIN_INTERVAL",
    "RESOURCE_KINDS",
    "check_interval",
    "check_resources",
    "desired_entry",
    "effective_interval",
    "effective_resources",
    "parse_quantity",
]

MIN_INTERVAL = 0.1
MAX_INTERVAL = 86_400.0
#: The resource kinds an assignment may limit, and an example quantity of each.
RESOURCE_KINDS = {"memory": "128Mi", "cpu": "100m", "disk": "1Gi"}
_MAX_QUANTITY_CHARS = 40

_BYTE_SUFFIXES = {
    "": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
    "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([A-Za-z]{0,2})$")


def parse_quantity(text: str, kind: str) -> int:
    """``text`` as an amount of ``kind``: ``"memory"``/``"disk"`` → bytes (``128Mi``, ``1G``,
    ``512000``), ``"cpu"`` → millicores (``100m``, ``0.5``, ``2``); :class:`ValueError`
    saying what to write for anything else, zero included.

    To be replaced by ``arcade_core.resources.parse_quantity`` (part "limits")."""
    if kind not in RESOURCE_KINDS:
        raise ValueError(f"unknown resource {kind!r}; use one of {', '.join(RESOURCE_KINDS)}")
    example = RESOURCE_KINDS[kind]
    hint = ("a number of cores, or of millicores with an 'm' (100m = a tenth of a core)"
            if kind == "cpu" else "a number of bytes with an optional suffix: Ki Mi Gi Ti "
            "(powers of 1024) or k M G T (powers of 1000)")
    if not isinstance(text, str) or len(text) > _MAX_QUANTITY_CHARS:
        raise ValueError(f"{kind} must be a quantity such as {example!r}: {hint}")
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise ValueError(f"{kind} {text!r} is not a quantity; write it like {example!r}: {hint}")
    number, suffix = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        raise ValueError(f"{kind} {text!r} is not a quantity like {example!r}") from None
    if kind == "cpu":
        if suffix not in ("", "m"):
            raise ValueError(f"cpu {text!r}: the only suffix is 'm' (millicores), e.g. "
                             f"{example!r} or '0.5' cores")
        amount = value if suffix == "m" else value * 1000
    else:
        if suffix not in _BYTE_SUFFIXES:
            raise ValueError(f"{kind} {text!r}: unknown suffix {suffix!r}; {hint}")
        amount = value * _BYTE_SUFFIXES[suffix]
    if amount != amount.to_integral_value():
        unit = "millicore" if kind == "cpu" else "byte"
        raise ValueError(f"{kind} {text!r} is not a whole number of {unit}s")
    if amount <= 0:
        raise ValueError(f"{kind} {text!r} must be above zero (omit it for no limit)")
    return int(amount)


def check_interval(value: Any, where: str = "interval") -> float:
    """``value`` as a number of seconds; :class:`Invalid` unless it is a finite number (not a
    bool or a string) from :data:`MIN_INTERVAL` to :data:`MAX_INTERVAL`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise Invalid(f"{where} must be a number of seconds (such as 5 or 0.5), not "
                      f"{value!r}")
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise Invalid(f"{where} is {value:g} s; give from {MIN_INTERVAL:g} s to "
                      f"{MAX_INTERVAL:g} s (a day)")
    return float(value)


def check_resources(value: Any, where: str = "resources") -> dict[str, str]:
    """``value`` as resource limits (``{"memory": "128Mi", "cpu": "100m"}``: each known
    kind at most once, each a valid quantity; ``{}``: none), the strings stripped;
    :class:`Invalid` naming the key to fix."""
    if not isinstance(value, Mapping):
        raise Invalid(f"{where} must be a JSON object such as "
                      f'{{"memory": "128Mi", "cpu": "100m"}}')
    out: dict[str, str] = {}
    for kind, text in value.items():
        if kind not in RESOURCE_KINDS:
            raise Invalid(f"{where}: unknown resource {kind!r}; use "
                          f"{', '.join(RESOURCE_KINDS)}")
        if not isinstance(text, str):
            raise Invalid(f"{where}.{kind} must be a string such as "
                          f"{RESOURCE_KINDS[kind]!r}, not {text!r}")
        try:
            parse_quantity(text, kind)
        except ValueError as exc:
            raise Invalid(f"{where}.{kind}: {exc}") from None
        out[kind] = text.strip()
    return out


def effective_interval(own: float | None, manifest_interval: float | None) -> float:
    """The interval the agent is sent: the assignment's, else the manifest's, else 0 (the
    agent's default)."""
    if own is not None:
        return float(own)
    return float(manifest_interval or 0.0)


def effective_resources(manifest_resources: Mapping[str, Any] | None,
                        own: Mapping[str, str] | None) -> dict[str, str]:
    """The limits the agent is sent: the manifest's known kinds (numbers as strings), each
    replaced by the assignment's override of that kind."""
    out: dict[str, str] = {}
    for kind, value in (manifest_resources or {}).items():
        if kind in RESOURCE_KINDS and isinstance(value, (str, int, float)) \
                and not isinstance(value, bool):
            out[kind] = str(value)
    out.update(own or {})
    return dict(sorted(out.items()))


def desired_entry(version: AnyRow, config: dict[str, Any], isolation: str, revision: int,
                  now: float, interval: float | None = None,
                  resources: Mapping[str, str] | None = None, *,
                  manifest: Manifest | None = None) -> dict[str, Any]:
    """The desired entry as ``GET /agents/{id}/plugins`` shows it (``desired``): the
    assignment's own ``interval``/``resources`` (null/{}: not set) and what the agent is sent
    (``effective_*``: the manifest's where the assignment sets none). ``manifest``: the
    version's, when the caller has it already (the fleet view, once per version)."""
    manifest = manifest or registry.manifest_of(version)
    return {"version": version.version, "config": config, "isolation": isolation,
            "interval": interval,
            "effective_interval": effective_interval(interval, manifest.interval),
            "resources": dict(resources or {}),
            "effective_resources": effective_resources(manifest.resources, resources),
            "revision": revision, "updated_at": now}
