"""Reading a wheel's zip safely: bounded reads, corrupt data reported, refusals that name
the wheel. No validation rule lives here (see :mod:`arcade_core._rules`)."""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO

from ._exceptions import InvalidWheel
from ._record import MemberDigest, RecordEntry

__all__ = ["Refuse", "iter_member", "read_member", "sha256_of", "text_of", "verify_member"]

_MiB = 1024 * 1024
_CHUNK = 256 * 1024


class Refuse:
    """Builds :class:`InvalidWheel` errors that all start with the wheel's filename."""

    __slots__ = ("filename",)

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def __call__(self, reason: str) -> InvalidWheel:
        return InvalidWheel(f"{self.filename}: {reason}")


def sha256_of(fh: IO[bytes]) -> str:
    """The hex sha256 of an open file, read from where it is; rewound afterwards."""
    digest = hashlib.sha256()
    while chunk := fh.read(_MiB):
        digest.update(chunk)
    fh.seek(0)
    return digest.hexdigest()


def iter_member(zf: zipfile.ZipFile, zi: zipfile.ZipInfo, refuse: Refuse) -> Iterator[bytes]:
    """A member's bytes in chunks; refused as soon as it yields more than it declared."""
    total = 0
    try:
        with zf.open(zi) as stream:
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
                if total > zi.file_size:
                    raise refuse(f"member {zi.filename!r} inflates past its declared size")
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise refuse(f"member {zi.filename!r} is corrupt: {exc}") from None


def read_member(zf: zipfile.ZipFile, zi: zipfile.ZipInfo, refuse: Refuse, limit: int) -> bytes:
    """Read one small member (metadata, manifest), refusing it when over ``limit``."""
    if zi.file_size > limit:
        raise refuse(f"{zi.filename} is {zi.file_size} bytes, over the limit of {limit}")
    return b"".join(iter_member(zf, zi, refuse))


def verify_member(
    zf: zipfile.ZipFile, zi: zipfile.ZipInfo, entry: RecordEntry, refuse: Refuse
) -> None:
    """Hash a member's content and compare it with its RECORD entry."""
    check = MemberDigest(refuse.filename, zi.filename, entry)
    for chunk in iter_member(zf, zi, refuse):
        check.update(chunk)
    check.verify()


def text_of(data: bytes, what: str, refuse: Refuse) -> str:
    """``data`` decoded as UTF-8; refused (naming ``what``) when it is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse(f"{what} is not UTF-8 text") from None
