"""Small value parsers and checks of the agent's settings (:mod:`arcade_agent.settings`):
booleans and command pattern lists, as written in a config file or an environment variable;
server addresses, agent ids, label keys and the default plugin memory limit."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import AgentConfigError

__all__ = ["boolean", "check_agent_id", "check_label_key", "check_memory_limit",
           "check_server", "patterns", "table"]

_AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def table(value: Any, *, bad_json: str, not_a_table: str, blank: bool = False
          ) -> dict[Any, Any]:
    """A settings table (``[drift]``, ``[log]``, ``plugins:``): a mapping from a config file,
    or JSON text from an environment variable (``blank``: empty text is an empty table).
    Raises :class:`AgentConfigError` with ``bad_json`` or ``not_a_table``."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() or not blank else {}
        except ValueError:
            raise AgentConfigError(bad_json) from None
    if not isinstance(value, dict):
        raise AgentConfigError(not_a_table)
    return value


def boolean(value: Any) -> bool:
    """``true``/``yes``/``on``/``1`` or ``false``/``no``/``off``/``0``/empty; else ValueError."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError("expected true or false")


def patterns(value: Any) -> tuple[str, ...]:
    """A JSON list, one pattern per line, or a list of strings; else ValueError."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = json.loads(text)
        else:
            return tuple(line.strip() for line in text.splitlines() if line.strip())
    if not isinstance(value, list | tuple) or not all(isinstance(p, str) for p in value):
        raise ValueError('expected a list of command patterns, e.g. ["make *"]')
    return tuple(value)


def check_server(server: str, what: str) -> None:
    """``server`` is ``HOST:PORT``; raises :class:`AgentConfigError` naming ``what``."""
    host, sep, port = server.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise AgentConfigError(
            f"{what}: {server!r} is not HOST:PORT (e.g. 127.0.0.1:9090, the server's gRPC port)")


def check_agent_id(agent_id: str, what: str) -> None:
    """``agent_id`` is a valid agent id; raises :class:`AgentConfigError` naming ``what``."""
    if not _AGENT_ID.match(agent_id):
        raise AgentConfigError(
            f"{what}: {agent_id!r} is not a valid agent id (1-128 characters: letters, digits, "
            "'.', '_', ':' and '-', starting with a letter or digit)")


def check_label_key(key: str, what: str) -> None:
    """``key`` is a valid label key; raises :class:`AgentConfigError` naming ``what``."""
    if not _LABEL_KEY.match(key):
        raise AgentConfigError(
            f"{what}: label key {key!r} must be 1-63 characters: letters, digits, '.', '_', "
            "'/' and '-', starting with a letter or digit")


def check_memory_limit(value: str) -> None:
    """``value`` is a memory quantity (``1Gi``) or ``none``; raises :class:`AgentConfigError`."""
    from arcade_core.resources import InvalidResources, parse_resources

    try:
        parse_resources({"memory": value}, override=True)
    except InvalidResources as exc:
        raise AgentConfigError(f"setting 'plugin_memory_limit': {exc}") from None
