"""``DownloadWheel``'s hand-encoded chunks are byte for byte what protobuf writes, and a
chunk read from a blob file is the file's bytes at that position."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from arcade_core.rpc.v1 import pb
from arcade_server.rpc.chunks import encode_chunk, read_chunk, serialize_chunk


@pytest.mark.parametrize(("data", "offset", "total"), [
    (b"", 0, 0),
    (b"", 9, 9),
    (b"x", 0, 1),
    (os.urandom(200), 1, 300),
    (os.urandom(600_000), 2**33, 2**34),
])
def test_encoded_chunk_equals_protobufs_serialization(data: bytes, offset: int,
                                                     total: int) -> None:
    expected = pb.WheelChunk(data=data, offset=offset, total_size=total).SerializeToString()
    assert encode_chunk(data, offset, total) == expected
    assert encode_chunk(memoryview(data), offset, total) == expected


@pytest.mark.parametrize("position", [0, 1, 4095, 4096, 65_537, 299_999, 300_000])
def test_read_chunk_holds_the_file_bytes_at_any_position(tmp_path: Path,
                                                         position: int) -> None:
    content = os.urandom(300_000)
    blob = tmp_path / "blob"
    blob.write_bytes(content)
    message, length = read_chunk(blob, position, 100_000, len(content))
    chunk = pb.WheelChunk.FromString(message)
    assert chunk.data == content[position:position + 100_000]
    assert length == len(chunk.data)
    assert (chunk.offset, chunk.total_size) == (position, len(content))


def test_read_chunk_of_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_chunk(tmp_path / "gone", 0, 10, 10)


def test_serializer_passes_encoded_chunks_and_serializes_messages() -> None:
    encoded = encode_chunk(b"abc", 1, 4)
    assert serialize_chunk(encoded) is encoded
    assert serialize_chunk(pb.WheelChunk(data=b"abc", offset=1, total_size=4)) == encoded
