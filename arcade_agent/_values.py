"""Small value parsers of the agent's settings (:mod:`arcade_agent.settings`): booleans
and command pattern lists, as written in a config file or an environment variable."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["boolean", "patterns"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


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
