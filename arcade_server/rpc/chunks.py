"""``DownloadWheel``'s messages, encoded straight from the blob's bytes.

A ``WheelChunk`` built as a protobuf object costs two copies of its data before gRPC sees it:
the message copies the bytes in, and serializing copies them out again. Each copy of a
chunk past glibc's mmap threshold (128 KiB, :func:`arcade_core.memory.tune_malloc`) is also
a fresh mapping to fault in and zero, so a 100 MB download spent most of the server's CPU in
the kernel (``perf``: page faults, page clearing, ``munmap``). Here a chunk is encoded by hand
(three fields: ``data`` = 1, ``offset`` = 2, ``total_size`` = 3, the same bytes protobuf
writes), and a chunk read from a local blob file is copied once, from the page cache (a
read-only ``mmap`` of the file region) into the message: no read buffer at all.

:func:`add_agent_service` registers the servicer with a ``DownloadWheel`` serializer that
passes such pre-encoded messages through (and still serializes ``WheelChunk`` objects).
The agent parses them as ordinary ``WheelChunk`` messages: the wire format is unchanged.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Any

import grpc

from arcade_core.rpc.v1 import pb, pb_grpc

__all__ = ["add_agent_service", "encode_chunk", "read_chunk", "serialize_chunk"]

_SERVICE = "arcade.v1.AgentService"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_chunk(data: bytes | memoryview, offset: int, total_size: int) -> bytes:
    """The encoded ``WheelChunk(data=data, offset=offset, total_size=total_size)``, with one
    copy of ``data`` (exactly what ``SerializeToString`` would produce)."""
    head = b"\x0a" + _varint(len(data)) if len(data) else b""
    tail = (b"\x10" + _varint(offset) if offset else b"") + (
        b"\x18" + _varint(total_size) if total_size else b"")
    return b"".join((head, data, tail))


def read_chunk(path: Path, position: int, length: int, total_size: int
               ) -> tuple[bytes, int]:
    """The encoded chunk of the file at ``path`` from ``position`` (at most ``length``
    bytes, fewer at the end of the file) and how many bytes of the file it holds. The file
    is mapped read-only for this one chunk, so nothing stays open between chunks.
    Raises ``FileNotFoundError`` if it is gone."""
    with open(path, "rb") as handle:
        end = min(position + length, os.fstat(handle.fileno()).st_size)
        if end <= position:
            return encode_chunk(b"", position, total_size), 0
        start = position - position % mmap.ALLOCATIONGRANULARITY
        with mmap.mmap(handle.fileno(), end - start, access=mmap.ACCESS_READ,
                       offset=start) as mapped, memoryview(mapped) as view:
            mapped.madvise(mmap.MADV_SEQUENTIAL)
            with view[position - start:] as data:
                return encode_chunk(data, position, total_size), end - position


def serialize_chunk(message: Any) -> bytes:
    """``DownloadWheel``'s response serializer: an encoded chunk as it is, else protobuf."""
    if type(message) is bytes:
        encoded: bytes = message
        return encoded
    result: bytes = message.SerializeToString()
    return result


def add_agent_service(servicer: pb_grpc.AgentServiceServicer, server: Any) -> None:
    """``add_AgentServiceServicer_to_server`` with :func:`serialize_chunk` for
    ``DownloadWheel`` (the other three methods exactly as generated)."""
    handlers = {
        "Connect": grpc.stream_stream_rpc_method_handler(
            servicer.Connect, request_deserializer=pb.AgentMessage.FromString,
            response_serializer=pb.ServerMessage.SerializeToString),
        "DownloadWheel": grpc.unary_stream_rpc_method_handler(
            servicer.DownloadWheel, request_deserializer=pb.DownloadRequest.FromString,
            response_serializer=serialize_chunk),
        "Enroll": grpc.unary_unary_rpc_method_handler(
            servicer.Enroll, request_deserializer=pb.EnrollRequest.FromString,
            response_serializer=pb.EnrollResponse.SerializeToString),
        "Renew": grpc.unary_unary_rpc_method_handler(
            servicer.Renew, request_deserializer=pb.RenewRequest.FromString,
            response_serializer=pb.RenewResponse.SerializeToString),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, handlers),))
    server.add_registered_method_handlers(_SERVICE, handlers)
