"""Numbers for people: metric values in their units, ages, and the ``--since`` argument.

A metric's ``unit`` decides how its value is shown: bytes as B/KiB/MiB/GiB/TiB, a percent
with one decimal and ``%``, seconds as ms/s/m/h, anything else with four significant digits
and the unit after it. ``--json`` never goes through here: scripts get the raw values.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

__all__ = ["NO_ENTRIES", "duration", "human_value", "parse_since", "short"]

#: Text printed in an empty cell.
NO_ENTRIES = "-"

_BYTES = {"b", "byte", "bytes"}
_PERCENT = {"%", "percent", "pct"}
_SECONDS = {"s", "sec", "secs", "second", "seconds"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def _bytes(value: float) -> str:
    sign, value = ("-" if value < 0 else ""), abs(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{sign}{value:.0f} B" if unit == "B" else f"{sign}{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float) -> str:
    """``0.25`` → ``250 ms``, ``90`` → ``1.5 m``, ``7200`` → ``2.0 h``."""
    s = abs(seconds)
    if s < 1:
        return f"{seconds * 1000:.0f} ms"
    if s < 60:
        return f"{seconds:.2f} s".replace(".00 s", " s")
    if s < 3600:
        return f"{seconds / 60:.1f} m"
    if s < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def human_value(value: float, unit: str) -> str:
    """A metric value in its unit, for people."""
    key = unit.strip().lower()
    if key in _BYTES:
        return _bytes(value)
    if key in _PERCENT:
        return f"{value:.1f}%"
    if key in _SECONDS:
        return duration(value)
    text = f"{value:.4g}"
    return f"{text} {unit}" if unit else text


def short(text: str, limit: int = 60) -> str:
    """The first line of ``text``, cut to ``limit`` characters with an ellipsis."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[:limit - 1] + "…"


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: a duration back from now (``90``, ``10m``, ``2h``, ``7d``), a Unix time,
    or an ISO 8601 timestamp (``2026-12-03T10:00``, local time unless it names a zone).
    Raises :class:`ValueError` with a message saying what is accepted."""
    now = time.time() if now is None else now
    match = _DURATION.match(text)
    if match:
        number = float(match.group(1))
        if match.group(2) is None and number > 10**9:  # a Unix time, not a duration
            return number
        return now - number * _FACTORS[match.group(2) or "s"]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give a duration such as 30s, 10m, 2h or 7d, a Unix time, "
            "or a timestamp such as 2026-12-03T10:00") from None
