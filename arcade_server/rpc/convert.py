"""Decoding words of the shared vocabulary from agents' protobuf messages."""

from __future__ import annotations

from enum import StrEnum

from arcade_core import ProtocolError
from arcade_core.rpc.v1.convert import from_pb

from ..errors import Invalid

__all__ = ["wire_word"]


def wire_word(cls: type[StrEnum], number: int) -> str:
    """The vocabulary word for a protobuf enum ``number`` from an agent ("" when unset);
    :class:`~arcade_server.errors.Invalid` (``INVALID_ARGUMENT``) for a number this server
    does not know."""
    try:
        return str(from_pb(cls, number) or "")
    except ProtocolError as exc:
        raise Invalid(str(exc)) from None
