"""The one place where :mod:`arcade_core.states` meets the protobuf enums of ``arcade.v1``.

Each protobuf enum mirrors a :class:`~enum.StrEnum` member for member
(``PLUGIN_STATE_RUNNING`` ↔ :attr:`PluginState.RUNNING`); the tables below are built from the
generated descriptors at import, and a test checks that both sides list the same members, so
adding a state to one side without the other fails loudly.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar, overload

from ..._exceptions import ProtocolError
from ...states import Isolation, JobStatus, PluginState, RecordStatus, Stage
from . import arcade_pb2 as pb

__all__ = ["ENUMS", "from_pb", "to_pb"]

E = TypeVar("E", bound=StrEnum)

#: Each vocabulary enum and the protobuf enum's name prefix that mirrors it.
ENUMS: dict[type[StrEnum], str] = {
    PluginState: "PLUGIN_STATE_",
    Isolation: "ISOLATION_",
    JobStatus: "JOB_STATUS_",
    RecordStatus: "RECORD_STATUS_",
    Stage: "STAGE_",
}

_TO_PB: dict[type[StrEnum], dict[str, int]] = {}
_FROM_PB: dict[type[StrEnum], dict[int, StrEnum]] = {}
for _cls, _prefix in ENUMS.items():
    _pb_enum = getattr(pb, _cls.__name__)
    _TO_PB[_cls] = {member.value: _pb_enum.Value(_prefix + member.name) for member in _cls}
    _FROM_PB[_cls] = {number: _cls(value) for value, number in _TO_PB[_cls].items()}


@overload
def to_pb(value: PluginState) -> pb.PluginState: ...
@overload
def to_pb(value: Isolation | None) -> pb.Isolation: ...
@overload
def to_pb(value: JobStatus) -> pb.JobStatus: ...
@overload
def to_pb(value: RecordStatus) -> pb.RecordStatus: ...
@overload
def to_pb(value: Stage) -> pb.Stage: ...


def to_pb(value: StrEnum | None) -> int:
    """The protobuf number of ``value`` (0, "unspecified", for ``None``)."""
    if value is None:
        return 0
    return _TO_PB[type(value)][value.value]


def from_pb(cls: type[E], number: int) -> E | None:
    """The ``cls`` member for protobuf ``number``; ``None`` for 0 ("unspecified").

    Raises :class:`~arcade_core.ProtocolError` for a number this version does not know (a
    peer speaking a newer protocol)."""
    if number == 0:
        return None
    member = _FROM_PB[cls].get(number)
    if member is None:
        raise ProtocolError(f"unknown {cls.__name__} value {number} on the wire; "
                            "is the peer running a newer Arcade?")
    return member  # type: ignore[return-value]
