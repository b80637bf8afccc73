"""``decode_chunk``: the agent's zero-copy reading of ``WheelChunk`` messages agrees with
protobuf on every message protobuf can write, and refuses malformed ones."""

from __future__ import annotations

import os

import pytest

from arcade_agent.downloader import ChunkView, decode_chunk
from arcade_core.rpc.v1 import pb


@pytest.mark.parametrize(("data", "offset", "total"), [
    (b"", 0, 0),
    (b"x", 0, 1),
    (os.urandom(300), 127, 128),
    (os.urandom(70_000), 2**31, 2**40 + 5),
    (b"", 5, 5),
    (b"abc", -1, -(2**63)),
])
def test_decoded_fields_equal_protobufs(data: bytes, offset: int, total: int) -> None:
    encoded = pb.WheelChunk(data=data, offset=offset, total_size=total).SerializeToString()
    chunk = decode_chunk(encoded)
    assert isinstance(chunk, ChunkView)
    assert (bytes(chunk.data), chunk.offset, chunk.total_size) == (data, offset, total)


def test_data_is_a_view_of_the_message_not_a_copy() -> None:
    encoded = pb.WheelChunk(data=b"a" * 1000, offset=3, total_size=2000).SerializeToString()
    chunk = decode_chunk(encoded)
    assert chunk.data.obj is encoded


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    base = pb.WheelChunk(data=b"hello", offset=7, total_size=12).SerializeToString()
    extra = (b"\x48\x96\x01"                      # field 9, varint 150
             b"\x51" + bytes(8) +                 # field 10, fixed64
             b"\x5d" + bytes(4) +                 # field 11, fixed32
             b"\x62\x03xyz")                      # field 12, 3 bytes
    chunk = decode_chunk(extra + base)
    assert (bytes(chunk.data), chunk.offset, chunk.total_size) == (b"hello", 7, 12)


@pytest.mark.parametrize("bad", [
    b"\x0a\x05abc",            # data shorter than its length
    b"\x10",                   # varint cut off
    b"\x10" + b"\xff" * 11,    # varint too long
    b"\x0b",                   # group start: no such field in a WheelChunk
    b"\x51\x00\x00",           # fixed64 cut off
])
def test_malformed_messages_raise_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        decode_chunk(bad)
