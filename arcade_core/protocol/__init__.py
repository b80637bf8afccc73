"""The JSON Schemas of the plugin line protocol, version 1 (docs/protocol.md).

One Draft 2020-12 schema per message type, shipped as package data beside this module
(``<type>.schema.json``) so the documentation, tests and any checker load the same text:
docs/protocol.md embeds each file verbatim, and a test keeps the two the same.

* agent → plugin: ``config``, ``call``, ``shutdown`` (:data:`TO_PLUGIN`);
* plugin → agent: ``hello``, ``metric``, ``result``, ``error``, ``log``, ``heartbeat``
  (:data:`FROM_PLUGIN`).

Extra keys are allowed everywhere (a newer peer may add some; the older one ignores them).
:func:`check_message` says what is wrong with a decoded line, for tests and tools that hold
a plugin to the protocol; jsonschema is imported on first use only.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from .._exceptions import ProtocolError

__all__ = [
    "FROM_PLUGIN",
    "MESSAGE_TYPES",
    "SCHEMA_DIR",
    "TO_PLUGIN",
    "check_message",
    "schema",
]

#: Where the ``<type>.schema.json`` files are.
SCHEMA_DIR: Final[Path] = Path(__file__).resolve().parent
#: The message types the agent sends to a plugin.
TO_PLUGIN: Final = ("config", "call", "shutdown")
#: The message types a plugin sends to the agent.
FROM_PLUGIN: Final = ("hello", "metric", "result", "error", "log", "heartbeat")
#: Every message type, agent → plugin first.
MESSAGE_TYPES: Final = TO_PLUGIN + FROM_PLUGIN


@functools.cache
def _load(message_type: str) -> dict[str, Any]:
    if message_type not in MESSAGE_TYPES:
        raise KeyError(f"no message type {message_type!r} in protocol version 1; the types "
                       f"are {', '.join(MESSAGE_TYPES)}")
    loaded: dict[str, Any] = json.loads(
        (SCHEMA_DIR / f"{message_type}.schema.json").read_text(encoding="utf-8"))
    return loaded


def schema(message_type: str) -> dict[str, Any]:
    """The JSON Schema of ``message_type`` (a copy); :class:`KeyError` naming the types for
    an unknown one."""
    return copy.deepcopy(_load(message_type))


@functools.cache
def _validator(message_type: str) -> Any:
    import jsonschema  # deferred: ~70 ms to import

    return jsonschema.Draft202012Validator(_load(message_type))


def check_message(message: Mapping[str, Any], *, direction: str | None = None) -> str:
    """Check one decoded message against its type's schema; return its type.

    ``direction`` (``"to_plugin"`` or ``"from_plugin"``) also requires the type to be one
    that side sends. Raises :class:`~arcade_core.ProtocolError` saying what is wrong: not an
    object with a known ``type``, or the first schema violation with its JSON path.
    """
    kind = message.get("type") if isinstance(message, Mapping) else None
    allowed = {"to_plugin": TO_PLUGIN, "from_plugin": FROM_PLUGIN, None: MESSAGE_TYPES}[
        direction]
    if not isinstance(kind, str) or kind not in allowed:
        raise ProtocolError(f"not a protocol message{'' if direction is None else ' ' + direction}"
                            f": 'type' is {kind!r}, expected one of {', '.join(allowed)}")
    from jsonschema.exceptions import best_match  # imported with the validator above

    error = best_match(_validator(kind).iter_errors(dict(message)))
    if error is not None:
        path = "".join(f"[{part!r}]" if isinstance(part, str) else f"[{part}]"
                       for part in error.absolute_path)
        raise ProtocolError(f"invalid {kind} message: {error.message}"
                            + (f" at {path}" if path else ""))
    return kind
