"""Reading setting values: durations (``30s``, ``5m``), sizes (``512KiB``), numbers, and the
TOML config file, each failing with a :class:`~arcade_server.errors.SettingsError` that names
the setting. Used by :class:`arcade_server.settings.Settings` only."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Any

from .errors import SettingsError

__all__ = ["KIB", "MIB", "default_home", "duration_value", "integer_value", "is_loopback",
           "number_value", "read_config",
           "size_value"]

KIB = 1024
MIB = 1024 * KIB

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib|k|m|g)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1, "k": KIB, "kb": 1000, "kib": KIB, "m": MIB, "mb": 1000**2, "mib": MIB,
    "g": 1024 * MIB, "gb": 1000**3, "gib": 1024 * MIB,
}



def duration_value(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise SettingsError(f"{name}: expected a duration such as 30 or '5m', got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise SettingsError(
            f"{name}: {value!r} is not a duration; use seconds or a suffix: 30s, 5m, 2h, 7d"
        )
    return float(match.group(1)) * _DURATION_UNITS[(match.group(2) or "s").lower()]


def size_value(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise SettingsError(f"{name}: expected a size such as 1048576 or '1MiB', got {value!r}")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise SettingsError(
            f"{name}: {value!r} is not a size; use bytes or a suffix: 512KiB, 256MiB, 1GiB"
        )
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]


def integer_value(name: str, value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}: expected an integer, got {value!r}") from None


def number_value(name: str, value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}: expected a number, got {value!r}") from None


def read_config(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("server", data)
    if not isinstance(section, dict):
        raise SettingsError(f"config file {path}: [server] must be a table")
    return {k: v for k, v in section.items() if not isinstance(v, dict)}


def default_home() -> Path:
    """``~/.arcade/server``: where the SQLite file and the blob store live by default."""
    return Path.home() / ".arcade" / "server"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (what may be served without TLS)."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
