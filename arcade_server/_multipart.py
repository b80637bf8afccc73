"""A streaming ``multipart/form-data`` body of wheel files, for :mod:`arcade_server.client`:
uploads never read a wheel whole into memory, and report progress as they go. Text fields
(a publisher's ``public_key`` and ``signature``) go first."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

__all__ = ["MultipartWheels"]

_CHUNK = 256 * 1024


class MultipartWheels:
    """A streaming ``multipart/form-data`` body of wheel files (field ``wheels``)."""

    def __init__(self, paths: Sequence[Path], progress: Callable[[int], None] | None,
                 fields: Mapping[str, str] | None = None) -> None:
        self.boundary = os.urandom(16).hex()  # not uuid: it imports platform
        self.paths = [Path(p) for p in paths]
        self.progress = progress
        self._fields = b"".join(
            (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
             f"{value}\r\n").encode()
            for name, value in (fields or {}).items())
        self._heads = [
            (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"wheels\"; "
             f"filename=\"{p.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
            for p in self.paths
        ]
        self._tail = f"--{self.boundary}--\r\n".encode()
        self.length = (
            len(self._fields)
            + sum(len(h) + p.stat().st_size + 2
                  for h, p in zip(self._heads, self.paths, strict=True))
            + len(self._tail)
        )

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __iter__(self) -> Iterator[bytes]:
        if self._fields:
            yield self._fields
            self._advance(len(self._fields))
        for head, path in zip(self._heads, self.paths, strict=True):
            yield head
            self._advance(len(head))
            with open(path, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    yield chunk
                    self._advance(len(chunk))
            yield b"\r\n"
            self._advance(2)
        yield self._tail
        self._advance(len(self._tail))

    def _advance(self, n: int) -> None:
        if self.progress is not None:
            self.progress(n)
