"""Wheel blob storage, content-addressed by sha256.

:class:`BlobStore` is the seam (an S3-compatible backend can follow); :class:`LocalBlobStore`
keeps blobs under ``<root>/ab/cdef...`` (the first two hex digits as a fan-out directory).
Writes go to a temp file in the same directory tree, hashed while written, and are renamed
into place only when the sha256 matches — a crash or a bad upload never leaves a blob whose
name lies about its content. All methods are blocking: async callers use a thread.
"""

from __future__ import annotations

import abc
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from .errors import ServerError

__all__ = ["BlobCorrupt", "BlobNotFound", "BlobStore", "LocalBlobStore"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COPY_CHUNK = 1024 * 1024


class BlobNotFound(ServerError, LookupError):
    """No blob with that sha256 in the store. Caught by ``DownloadWheel`` (``NOT_FOUND``)."""


class BlobCorrupt(ServerError, ValueError):
    """Content written to the store did not hash to the expected sha256. Raised to whoever
    stores the blob (a publish fails with it; the partial file is removed)."""


def check_sha256(sha256: str) -> str:
    """Return ``sha256`` if it is 64 lowercase hex digits, else raise ``ValueError``."""
    if not _SHA256.match(sha256):
        raise ValueError(f"{sha256!r} is not a sha256 hex digest (64 lowercase hex digits)")
    return sha256


class BlobStore(abc.ABC):
    """Content-addressed blob storage (the interface the registry and downloads use)."""

    @abc.abstractmethod
    def put(self, source: BinaryIO, expected_sha256: str | None = None) -> tuple[str, int]:
        """Store the bytes read from ``source``; return ``(sha256, size)``.

        Raises :class:`BlobCorrupt` when ``expected_sha256`` is given and does not match.
        Storing a blob that already exists is a no-op.
        """

    def put_path(self, path: Path, expected_sha256: str | None = None) -> tuple[str, int]:
        with open(path, "rb") as source:
            return self.put(source, expected_sha256)

    @abc.abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """Open a blob for reading (binary); :class:`BlobNotFound` if absent."""

    @abc.abstractmethod
    def size(self, sha256: str) -> int:
        """The blob's size in bytes; :class:`BlobNotFound` if absent."""

    @abc.abstractmethod
    def exists(self, sha256: str) -> bool:
        """True when the store holds the blob."""

    @abc.abstractmethod
    def delete(self, sha256: str) -> bool:
        """Delete a blob; True when it existed."""

    def path(self, sha256: str) -> Path | None:
        """A local filesystem path for the blob, when the backend has one (else ``None``)."""
        return None


class LocalBlobStore(BlobStore):
    """Blobs as files under ``root``; temp files live in ``root/.tmp`` (same filesystem)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:]

    def path(self, sha256: str) -> Path | None:
        return self._path(sha256)

    def put(self, source: BinaryIO, expected_sha256: str | None = None) -> tuple[str, int]:
        if expected_sha256 is not None:
            check_sha256(expected_sha256)
            target = self._path(expected_sha256)
            if target.exists():
                # Same name, so same content (it was verified when written): nothing to do.
                return expected_sha256, target.stat().st_size
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(_COPY_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            if expected_sha256 is not None and sha256 != expected_sha256:
                raise BlobCorrupt(
                    f"content hashes to sha256 {sha256}, expected {expected_sha256}"
                )
            target = self._path(sha256)
            target.parent.mkdir(exist_ok=True)
            os.replace(tmp_name, target)
            tmp_name = ""
            return sha256, size
        finally:
            if tmp_name:
                Path(tmp_name).unlink(missing_ok=True)

    def open(self, sha256: str) -> BinaryIO:
        try:
            return open(self._path(sha256), "rb")
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None

    def size(self, sha256: str) -> int:
        try:
            return self._path(sha256).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def delete(self, sha256: str) -> bool:
        try:
            self._path(sha256).unlink()
            return True
        except FileNotFoundError:
            return False

    def clear_temp(self) -> None:
        """Remove temp files left by a crash (called at start)."""
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
