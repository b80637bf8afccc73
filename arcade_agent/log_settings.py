"""The agent's ``[log]`` settings: its own log file (rotated) and how much of each plugin's
output reaches it.

In the agent's config file::

    [log]
    file = "/var/log/arcade/agent.log"   # also log here, rotated (default: stderr only)
    max_bytes = "10Mi"                   # rotate past this size
    backups = 5                          # keep this many rotated files (agent.log.1 ...)
    plugin_rate = 20                     # lines a second of one plugin's stderr in the log
    plugin_burst = 200                   # ... with bursts of this many lines

``ARCADE_AGENT_LOG`` takes the same table as JSON (``{"file": "/var/log/arcade.log"}``). A
flooding plugin therefore costs at most ``plugin_rate`` lines a second of the agent's log (the
rest is counted and summarised, :mod:`arcade_core.log_rate`), and the file never grows past
``max_bytes × (backups + 1)``. A plugin's full recent output stays in its log ring
(``arcade logs``). Read by :class:`~arcade_agent.settings.AgentSettings` (its ``log``
field); applied by :func:`apply_log_settings` when the agent starts.
"""

from __future__ import annotations

import logging
import logging.handlers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arcade_core.log_rate import DEFAULT_BURST, DEFAULT_RATE, set_plugin_log_rate
from arcade_core.resources import InvalidResources, parse_bytes

from ._values import table
from .errors import AgentConfigError

__all__ = ["LOG_FORMAT", "LogSettings", "apply_log_settings", "log_settings"]

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


@dataclass(frozen=True, slots=True)
class LogSettings:
    """``[log]``: see the module."""

    file: Path | None = None
    max_bytes: int = 10 << 20
    backups: int = 5
    plugin_rate: float = DEFAULT_RATE
    plugin_burst: int = DEFAULT_BURST

    def __post_init__(self) -> None:
        if self.max_bytes < 4096:
            raise AgentConfigError("setting 'log.max_bytes' must be at least 4096 bytes")
        if self.backups < 1:
            raise AgentConfigError("setting 'log.backups' must be at least 1 (the rotated "
                                   "file kept; rotating into nothing would lose the log)")
        if not self.plugin_rate > 0 or self.plugin_burst < 1:
            raise AgentConfigError("settings 'log.plugin_rate' (lines a second) and "
                                   "'log.plugin_burst' (lines) must be at least 1")


def _whole(key: str, item: Any) -> int:
    if isinstance(item, bool) or not isinstance(item, int | float | str):
        raise AgentConfigError(f"'log.{key}' must be a whole number")
    try:
        number = float(item)
    except ValueError:
        raise AgentConfigError(f"'log.{key}' = {item!r} is not a whole number") from None
    if not number.is_integer():
        raise AgentConfigError(f"'log.{key}' = {item!r} is not a whole number")
    return int(number)


def log_settings(value: Any) -> LogSettings:
    """``[log]`` from a config file's table or JSON text (``ARCADE_AGENT_LOG``);
    :class:`AgentConfigError` naming the key and what it takes (the caller adds where from)."""
    if isinstance(value, LogSettings):
        return value
    value = table(value, bad_json='[log] must be a JSON object, e.g. {"file": '
                                  '"/var/log/arcade/agent.log"}',
                  not_a_table='[log] must be a table, e.g. [log] file = "/var/log/agent.log"')
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        key = str(key).replace("-", "_")
        if key == "file":
            if not isinstance(item, str) or not item.strip():
                raise AgentConfigError("'log.file' must be the path of the agent's log file")
            kwargs[key] = Path(item).expanduser()
        elif key == "max_bytes":
            try:
                kwargs[key] = parse_bytes(item, "'log.max_bytes'")
            except InvalidResources as exc:
                raise AgentConfigError(str(exc)) from None
        elif key in ("backups", "plugin_burst"):
            kwargs[key] = _whole(key, item)
        elif key == "plugin_rate":
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise AgentConfigError("'log.plugin_rate' must be a number of lines a second")
            kwargs[key] = float(item)
        else:
            raise AgentConfigError(f"unknown key 'log.{key}'; known keys: file, max_bytes, "
                                   "backups, plugin_rate, plugin_burst")
    return LogSettings(**kwargs)


def apply_log_settings(settings: LogSettings) -> logging.Handler | None:
    """Add the rotating log file (if any) to the root logger and set the plugins' rate;
    return the file's handler. Raises :class:`AgentConfigError` when the file cannot be
    opened."""
    set_plugin_log_rate(settings.plugin_rate, settings.plugin_burst)
    if settings.file is None:
        return None
    try:
        settings.file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            settings.file, maxBytes=settings.max_bytes, backupCount=settings.backups,
            encoding="utf-8")
    except OSError as exc:
        raise AgentConfigError(f"cannot open the log file {settings.file}: "
                               f"{exc.strerror or exc}") from None
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)
    return handler
