"""The shared vocabulary and its one mapping to the protobuf enums."""

from __future__ import annotations

import pytest

from arcade_core import ProtocolError
from arcade_core.rpc.v1 import pb
from arcade_core.rpc.v1.convert import ENUMS, from_pb, to_pb
from arcade_core.states import JobStatus, PluginState, Stage


@pytest.mark.parametrize("cls", list(ENUMS), ids=lambda c: c.__name__)
def test_every_word_has_exactly_one_protobuf_number_and_back(cls: type) -> None:
    pb_enum = getattr(pb, cls.__name__)
    prefix = ENUMS[cls]
    names = pb_enum.DESCRIPTOR.values_by_name
    wire_names = {name.removeprefix(prefix) for name in names} - {"UNSPECIFIED"}
    assert wire_names == {member.name for member in cls}
    for member in cls:
        assert from_pb(cls, to_pb(member)) is member


def test_unset_number_means_no_word_and_unknown_number_says_what_is_wrong() -> None:
    assert to_pb(None) == 0
    assert from_pb(PluginState, 0) is None
    with pytest.raises(ProtocolError, match="unknown PluginState value 99"):
        from_pb(PluginState, 99)


def test_words_compare_as_their_text_and_know_their_hooks() -> None:
    assert PluginState.RUNNING == "running" and str(JobStatus.TIMED_OUT) == "timed_out"
    assert JobStatus.CANCELLED.final and not JobStatus.RUNNING.final
    assert [s.hook for s in Stage] == ["before", "after", "after", "after", "notify"]
