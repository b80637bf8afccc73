"""Downloader against a real grpc.aio server: verify, resume, refuse, bound concurrency."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from arcade_agent.cache import WheelCache
from arcade_agent.downloader import Downloader, DownloadError, HashMismatch, download_stub
from arcade_core.rpc.v1 import pb, pb_grpc

from .blobserver import BlobService, start


@pytest.fixture(params=["views", "protobuf"])
async def served(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[BlobService, pb_grpc.AgentServiceStub]]:
    """A blob server and a stub to it: the agent's own (chunks decoded as views, see
    ``download_stub``) and the generated one (chunks as protobuf messages)."""
    service = BlobService()
    server, target = await start(service)
    channel = grpc.aio.insecure_channel(target)
    try:
        if request.param == "views":
            yield service, download_stub(channel)
        else:
            yield service, pb_grpc.AgentServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)


def _ref(sha: str, data: bytes, name: str = "pkg") -> pb.WheelRef:
    return pb.WheelRef(filename=f"{name}-1.0-py3-none-any.whl", sha256=sha, size=len(data))


def _downloader(stub: pb_grpc.AgentServiceStub, tmp_path: Path, **kw: object) -> Downloader:
    cache = WheelCache(tmp_path / "cache", max_bytes=1 << 30)
    return Downloader(lambda: stub, "agent-1", cache, retry_backoff=0.01, **kw)  # type: ignore[arg-type]


async def test_download_is_verified_cached_and_counted(served, tmp_path: Path) -> None:
    service, stub = served
    data = os.urandom(300_000)
    sha = service.add(data)
    dl = _downloader(stub, tmp_path)
    path = await dl.fetch_one(_ref(sha, data))
    assert path.read_bytes() == data and path.name == "pkg-1.0-py3-none-any.whl"
    again = await dl.fetch_one(_ref(sha, data))
    assert again == path
    assert service.requests == [(sha, 0)]          # the second fetch was a cache hit
    stats = dl.stats()
    assert (stats.downloads, stats.bytes, stats.hash_failures) == (1, len(data), 0)
    assert stats.seconds > 0
    cache_stats = dl.cache.stats()
    assert (cache_stats.hits, cache_stats.misses) >= (1, 1)


async def test_same_wheel_requested_twice_at_once_downloads_once(served, tmp_path: Path) -> None:
    service, stub = served
    service.chunk_delay = 0.005
    data = os.urandom(200_000)
    sha = service.add(data)
    dl = _downloader(stub, tmp_path)
    a, b = await asyncio.gather(dl.fetch_one(_ref(sha, data)), dl.fetch_one(_ref(sha, data)))
    assert a == b
    assert len(service.requests) == 1


async def test_altered_blob_is_refused_and_leaves_no_file(served, tmp_path: Path) -> None:
    service, stub = served
    data = os.urandom(100_000)
    sha = service.add(data)
    service.served[sha] = data[:-1] + bytes([data[-1] ^ 1])
    dl = _downloader(stub, tmp_path)
    with pytest.raises(HashMismatch, match="sha256 mismatch") as info:
        await dl.fetch_one(_ref(sha, data))
    assert info.value.sha256 == sha
    assert sha not in dl.cache
    assert not dl.cache.partial_path(sha).exists()
    assert list((tmp_path / "cache").iterdir()) == [tmp_path / "cache" / ".partial"]
    assert dl.stats().hash_failures == 1 and dl.stats().failures == 1
    assert len(service.requests) == 1              # a mismatch from byte 0 is not retried


async def test_interrupted_download_resumes_from_offset(served, tmp_path: Path) -> None:
    service, stub = served
    data = os.urandom(500_000)
    sha = service.add(data)
    service.cut_after[sha] = 200_000
    dl = _downloader(stub, tmp_path)
    path = await dl.fetch_one(_ref(sha, data))
    assert path.read_bytes() == data
    assert service.requests[0] == (sha, 0)
    assert service.requests[1][1] >= 200_000       # second attempt started where the first ended
    assert dl.stats().resumes == 1 and dl.stats().downloads == 1


async def test_partial_file_from_an_earlier_run_is_resumed(served, tmp_path: Path) -> None:
    service, stub = served
    data = os.urandom(300_000)
    sha = service.add(data)
    dl = _downloader(stub, tmp_path)
    dl.cache.partial_path(sha).write_bytes(data[:123_456])
    path = await dl.fetch_one(_ref(sha, data))
    assert path.read_bytes() == data
    assert service.requests == [(sha, 123_456)]


async def test_stale_partial_file_is_discarded_and_download_restarts(served, tmp_path) -> None:
    service, stub = served
    data = os.urandom(300_000)
    sha = service.add(data)
    dl = _downloader(stub, tmp_path)
    dl.cache.partial_path(sha).write_bytes(os.urandom(1000))  # not a prefix of the blob
    path = await dl.fetch_one(_ref(sha, data))
    assert path.read_bytes() == data
    assert service.requests == [(sha, 1000), (sha, 0)]
    assert dl.stats().hash_failures == 0


async def test_refused_download_fails_at_once_with_the_reason(served, tmp_path: Path) -> None:
    service, stub = served
    data = b"x" * 1000
    sha = service.add(data)
    service.deny.add(sha)
    dl = _downloader(stub, tmp_path)
    with pytest.raises(DownloadError, match="PERMISSION_DENIED: not assigned to this agent"):
        await dl.fetch_one(_ref(sha, data))
    assert len(service.requests) == 1
    with pytest.raises(DownloadError, match="NOT_FOUND"):
        await dl.fetch_one(_ref("ab" * 32, data))


async def test_unreachable_server_gives_up_after_retries(tmp_path: Path) -> None:
    channel = grpc.aio.insecure_channel("127.0.0.1:1")
    try:
        dl = _downloader(pb_grpc.AgentServiceStub(channel), tmp_path, retries=2)
        with pytest.raises(DownloadError, match="gave up after 3 attempts"):
            await dl.fetch_one(pb.WheelRef(filename="p-1-py3-none-any.whl", sha256="c" * 64,
                                           size=10))
    finally:
        await channel.close()


async def test_downloads_run_concurrently_up_to_the_bound(served, tmp_path: Path) -> None:
    service, stub = served
    service.chunk_delay = 0.01
    blobs = [os.urandom(200_000) for _ in range(5)]
    refs = [_ref(service.add(b), b, f"p{i}") for i, b in enumerate(blobs)]
    dl = _downloader(stub, tmp_path, concurrency=2)
    paths = await dl.fetch(refs)
    assert [p.read_bytes() for p in paths] == blobs
    assert service.max_active == 2
    assert dl.stats().downloads == 5
