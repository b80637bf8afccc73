"""Wheel downloads over ``DownloadWheel``: bounded, resumable, verified before use.

Each wheel is streamed into ``<cache>/.partial/<sha256>.part`` while a sha256 is computed over
the same bytes; only when the digest equals the one the server's desired state named is the
file renamed into the :class:`~arcade_agent.cache.WheelCache`. A mismatch deletes the partial
file, counts a hash failure and raises :class:`HashMismatch`: the wheel is never installed and
no bad file is left in the cache. A download cut off mid-way (server restart, network error,
agent stop) leaves its partial file; the next attempt hashes what is there and asks the server
for the rest from that offset.

Throughput: chunks are written and hashed in a worker thread (``hashlib`` and file writes
release the GIL) while the event loop receives the next chunk, and chunk bytes are never
copied by the agent: :func:`download_stub` decodes each ``WheelChunk`` into a
:class:`ChunkView` whose ``data`` is a view of the received message (a protobuf object would
copy the bytes twice, on parsing and on reading ``data``: ~150 ms of CPU per 100 MB).
Several wheels download at once, at most ``concurrency``; two requests
for the same sha256 share one download.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import grpc

from arcade_core.rpc.v1 import pb, pb_grpc

from .cache import WheelCache
from .errors import DownloadError, HashMismatch

__all__ = ["ChunkView", "DownloadError", "DownloadStats", "Downloader", "HashMismatch",
           "decode_chunk", "download_stub"]

log = logging.getLogger(__name__)

_READ_BLOCK = 1 << 20
# Chunks received but not yet hashed and written, per download (a few MB at most).
_PIPELINE = 8

# Errors worth another attempt (resuming from the partial file); anything else is final.
_TRANSIENT = frozenset({
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
})


@dataclass(frozen=True, slots=True)
class DownloadStats:
    """Counters since the downloader started."""

    downloads: int          # wheels fetched and verified
    bytes: int              # bytes received (including resumed parts and refused wheels)
    seconds: float          # total wall time of completed downloads
    last_seconds: float     # wall time of the last completed download
    resumes: int            # attempts that continued a partial file
    failures: int           # downloads that ended in an error (hash failures included)
    hash_failures: int      # downloads refused because the sha256 did not match
    in_flight: int

    @property
    def mean_mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds else 0.0


@dataclass(frozen=True, slots=True)
class ChunkView:
    """A received ``WheelChunk``: ``data`` is a view into the message's bytes, not a copy."""

    data: memoryview
    offset: int
    total_size: int


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint in WheelChunk")


def decode_chunk(message: bytes) -> ChunkView:
    """Parse an encoded ``WheelChunk`` (protobuf wire format; unknown fields skipped) without
    copying its data. Raises ``ValueError`` on a malformed message."""
    view = memoryview(message)
    data = view[0:0]
    offset = total = 0
    pos, end = 0, len(message)
    try:
        while pos < end:
            key, pos = _varint(message, pos)
            field, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = _varint(message, pos)
                if field == 2:
                    offset = value
                elif field == 3:
                    total = value
            elif wire == 2:
                length, pos = _varint(message, pos)
                if pos + length > end:
                    raise ValueError("truncated WheelChunk")
                if field == 1:
                    data = view[pos:pos + length]
                pos += length
            elif wire in (1, 5):
                pos += 8 if wire == 1 else 4
            else:
                raise ValueError(f"unexpected wire type {wire} in WheelChunk")
    except IndexError:
        raise ValueError("truncated WheelChunk") from None
    if pos != end:
        raise ValueError("truncated WheelChunk")
    # int64 on the wire: a negative value arrives as its two's complement
    return ChunkView(data, _int64(offset), _int64(total))


def _int64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def download_stub(channel: grpc.aio.Channel) -> pb_grpc.AgentServiceStub:
    """An ``AgentService`` stub on ``channel`` whose ``DownloadWheel`` yields
    :class:`ChunkView` objects (see :func:`decode_chunk`) instead of ``WheelChunk`` messages;
    the other methods are as generated."""
    stub = pb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]
    stub.DownloadWheel = channel.unary_stream(
        "/arcade.v1.AgentService/DownloadWheel",
        request_serializer=pb.DownloadRequest.SerializeToString,
        response_deserializer=decode_chunk,
    )
    return stub


class Downloader:
    """Fetches wheels into a :class:`WheelCache` through an ``AgentService`` stub.

    ``stub`` returns the stub to use for each attempt (the agent's channel may be replaced
    between attempts). ``timeout`` bounds one wheel's download including its retries;
    ``retries`` is how many times a transient failure is retried (each resuming).
    """

    def __init__(
        self,
        stub: Callable[[], pb_grpc.AgentServiceStub],
        agent_id: str,
        cache: WheelCache,
        *,
        concurrency: int = 4,
        timeout: float = 300.0,
        retries: int = 3,
        retry_backoff: float = 0.2,
    ) -> None:
        self._stub = stub
        self.agent_id = agent_id
        self.cache = cache
        self.timeout = timeout
        self.retries = retries
        self.retry_backoff = retry_backoff
        self._semaphore = asyncio.Semaphore(concurrency)
        self._inflight: dict[str, asyncio.Task[Path]] = {}
        self._downloads = 0
        self._bytes = 0
        self._seconds = 0.0
        self._last_seconds = 0.0
        self._resumes = 0
        self._failures = 0
        self._hash_failures = 0
        self.durations: deque[float] = deque(maxlen=100)

    def stats(self) -> DownloadStats:
        return DownloadStats(
            downloads=self._downloads,
            bytes=self._bytes,
            seconds=self._seconds,
            last_seconds=self._last_seconds,
            resumes=self._resumes,
            failures=self._failures,
            hash_failures=self._hash_failures,
            in_flight=len(self._inflight),
        )

    async def fetch(self, refs: Sequence[pb.WheelRef]) -> list[Path]:
        """Paths of the cached wheels for ``refs`` (in order), downloading what is missing.

        All downloads run to completion even if one fails (they stay useful in the cache);
        then the first error is raised.
        """
        results = await asyncio.gather(*(self.fetch_one(r) for r in refs), return_exceptions=True)
        paths: list[Path] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            paths.append(result)
        return paths

    async def fetch_one(self, ref: pb.WheelRef) -> Path:
        """The cached wheel for ``ref``; downloads it (once, however many ask) on a miss.

        Cancelling the caller does not cancel a download in progress: another desired state
        probably wants the same wheel, and a finished download is a cache entry.
        """
        if not _is_sha256(ref.sha256):
            raise DownloadError(ref.filename, ref.sha256, "the server named an invalid sha256")
        cached = self.cache.get(ref.sha256)
        if cached is not None:
            return cached
        task = self._inflight.get(ref.sha256)
        if task is None:
            task = asyncio.create_task(self._download(ref), name=f"download-{ref.filename}")
            self._inflight[ref.sha256] = task
            task.add_done_callback(functools.partial(self._finished, ref.sha256))
        return await asyncio.shield(task)

    async def close(self) -> None:
        """Cancel downloads in progress (their partial files stay, for resuming)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ internals

    def _finished(self, sha256: str, task: asyncio.Task[Path]) -> None:
        self._inflight.pop(sha256, None)
        if not task.cancelled() and task.exception() is not None:
            self._failures += 1

    async def _download(self, ref: pb.WheelRef) -> Path:
        async with self._semaphore:
            cached = self.cache.get(ref.sha256)  # another task may have fetched it meanwhile
            if cached is not None:
                return cached
            started = time.monotonic()
            attempt = 0
            try:
                async with asyncio.timeout(self.timeout):
                    while True:
                        try:
                            path = await self._attempt(ref)
                            break
                        except _Retry as exc:
                            attempt += 1
                            if attempt > self.retries:
                                raise DownloadError(
                                    ref.filename, ref.sha256,
                                    f"{exc} (gave up after {attempt} attempts)",
                                ) from None
                            delay = self.retry_backoff * 2 ** (attempt - 1)
                            log.info("download of %s interrupted (%s); retrying in %.2fs",
                                     ref.filename, exc, delay)
                            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            except TimeoutError:
                raise DownloadError(
                    ref.filename, ref.sha256,
                    f"timed out after {self.timeout:g}s (the partial file is kept for resuming)",
                ) from None
            elapsed = time.monotonic() - started
            self._downloads += 1
            self._seconds += elapsed
            self._last_seconds = elapsed
            self.durations.append(elapsed)
            log.info("downloaded %s (%d bytes) in %.3fs", ref.filename, ref.size, elapsed)
            return path

    async def _attempt(self, ref: pb.WheelRef) -> Path:
        part = self.cache.partial_path(ref.sha256)
        hasher, offset = await asyncio.to_thread(_hash_existing, part)
        if offset:
            self._resumes += 1
            log.info("resuming download of %s at byte %d", ref.filename, offset)
        resumed = offset > 0
        if not (ref.size and offset >= ref.size):
            offset = await self._receive(ref, part, hasher, offset)
        if ref.size and offset < ref.size:
            raise _Retry(f"the stream ended at byte {offset} of {ref.size}")
        digest = hasher.hexdigest()
        if digest != ref.sha256 or (ref.size and offset != ref.size):
            await asyncio.to_thread(part.unlink, True)
            if resumed:
                # The kept part may be stale (e.g. a different blob under a reused name):
                # start over once from byte 0 before calling it a mismatch.
                raise _Retry("the resumed file did not verify; starting over")
            self._hash_failures += 1
            log.error("refused %s: sha256 %s, expected %s", ref.filename, digest, ref.sha256)
            raise HashMismatch(ref.filename, ref.sha256, digest)
        return await asyncio.to_thread(self.cache.add, ref.sha256, ref.filename, part)

    async def _receive(self, ref: pb.WheelRef, part: Path, hasher: Any, offset: int) -> int:
        """Stream the wheel from ``offset`` into ``part``; return the final size.

        One writer thread per download hashes and writes chunks in arrival order while the
        event loop receives the next ones; at most ``_PIPELINE`` chunks wait for it (bounded
        memory: a slow disk slows the stream down instead of filling RAM).
        """
        request = pb.DownloadRequest(agent_id=self.agent_id, sha256=ref.sha256, offset=offset)
        call = self._stub().DownloadWheel(request)
        loop = asyncio.get_running_loop()
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arcade-download")
        pending: deque[asyncio.Future[None]] = deque()
        fh: BinaryIO | None = None
        try:
            fh = await loop.run_in_executor(writer, open, part, "ab")
            async for chunk in call:
                if chunk.offset != offset:
                    raise _Retry(f"server sent bytes at offset {chunk.offset}, expected {offset}")
                data = chunk.data
                pending.append(loop.run_in_executor(writer, _write, fh, hasher, data))
                offset += len(data)
                self._bytes += len(data)
                if len(pending) >= _PIPELINE:
                    await pending.popleft()
                if ref.size and offset > ref.size:
                    break  # more than announced: the digest check below refuses it
            while pending:
                await pending.popleft()
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code in _TRANSIENT:
                raise _Retry(f"{code.name}: {exc.details()}") from None
            if code == grpc.StatusCode.INVALID_ARGUMENT and offset:
                await asyncio.gather(*pending, return_exceptions=True)
                pending.clear()
                if fh is not None:
                    await loop.run_in_executor(writer, fh.close)
                    fh = None
                await asyncio.to_thread(part.unlink, True)
                raise _Retry(f"server refused offset {offset}: {exc.details()}") from None
            raise DownloadError(ref.filename, ref.sha256, f"{code.name}: {exc.details()}") \
                from None
        finally:
            call.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            if fh is not None:
                await loop.run_in_executor(writer, fh.close)
            writer.shutdown(wait=False)
        return offset


class _Retry(Exception):
    """A transient failure: try again, resuming from the partial file."""


def _write(fh: BinaryIO, hasher: Any, data: bytes) -> None:
    hasher.update(data)
    fh.write(data)


def _hash_existing(part: Path) -> tuple[Any, int]:
    """A sha256 over the partial file's bytes (if any) and its size."""
    hasher = hashlib.sha256()
    size = 0
    try:
        with open(part, "rb") as fh:
            while block := fh.read(_READ_BLOCK):
                hasher.update(block)
                size += len(block)
    except FileNotFoundError:
        pass
    return hasher, size


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)

