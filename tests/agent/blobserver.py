"""A real grpc.aio ``AgentService`` that serves wheel bytes for downloader tests.

It is the far side of a true system edge (the network): it serves real bytes over a real
loopback gRPC server, and can be told to cut a stream mid-way, serve altered bytes or refuse,
so the downloader's resume and verification paths are exercised for real.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc

from arcade_core.rpc.v1 import pb, pb_grpc


@dataclass
class BlobService(pb_grpc.AgentServiceServicer):  # type: ignore[misc]
    blobs: dict[str, bytes] = field(default_factory=dict)
    served: dict[str, bytes] = field(default_factory=dict)  # sha -> bytes served instead
    cut_after: dict[str, int] = field(default_factory=dict)  # sha -> abort once after N bytes
    deny: set[str] = field(default_factory=set)
    chunk_size: int = 64 * 1024
    chunk_delay: float = 0.0
    requests: list[tuple[str, int]] = field(default_factory=list)
    active: int = 0
    max_active: int = 0

    def add(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self.blobs[sha] = data
        return sha

    async def DownloadWheel(
        self, request: pb.DownloadRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WheelChunk]:
        self.requests.append((request.sha256, request.offset))
        if request.sha256 in self.deny:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not assigned to this agent")
        data = self.served.get(request.sha256, self.blobs.get(request.sha256))
        if data is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such blob")
        assert data is not None
        if request.offset > len(data):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "offset past the end")
        cut = self.cut_after.pop(request.sha256, None)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            offset = request.offset
            while offset < len(data):
                if cut is not None and offset >= cut:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset (test)")
                chunk = data[offset:offset + self.chunk_size]
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                yield pb.WheelChunk(data=chunk, offset=offset, total_size=len(data))
                offset += len(chunk)
        finally:
            self.active -= 1


async def start(service: BlobService) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    pb_grpc.add_AgentServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"
