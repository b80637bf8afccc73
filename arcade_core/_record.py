"""A wheel's ``RECORD``: parsing it, and checking a member's bytes against its entry.

One implementation for both readers of a wheel: inspection (which hashes every member
before it says a wheel is good) and installation (which hashes each member while it is
unpacked, in the same pass that writes it). PEP 427 and the packaging spec's RECORD
format: ``path,algorithm=urlsafe-b64-digest-without-padding,size``.
"""

from __future__ import annotations

import base64
import csv
import hashlib
from collections.abc import Callable
from typing import Any

from ._exceptions import InvalidWheel

__all__ = ["RECORD_HASHES", "MemberDigest", "RecordEntry", "b64_digest", "parse_record"]

#: PEP 427: RECORD hashes must be sha256 or stronger; md5 and sha1 are refused.
RECORD_HASHES = frozenset({"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512",
                           "blake2b", "blake2s"})

#: One RECORD line's hash algorithm, digest (urlsafe base64, unpadded) and size.
RecordEntry = tuple[str, str, int]


def b64_digest(hasher: Any) -> str:
    """A digest as RECORD writes it: urlsafe base64 without padding."""
    return base64.urlsafe_b64encode(hasher.digest()).decode("ascii").rstrip("=")


def parse_record(
    text: str, refuse: Callable[[str], InvalidWheel]
) -> dict[str, RecordEntry | None]:
    """RECORD's rows by path; ``None`` for a path listed without hash and size (RECORD
    itself, signatures). ``refuse(reason)`` builds the error for a malformed line."""
    rows: dict[str, RecordEntry | None] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row:
            continue
        if len(row) != 3:
            raise refuse(f"RECORD line {number} has {len(row)} fields; expected path,hash,size")
        path, hash_text, size_text = row
        if not hash_text and not size_text:
            rows[path] = None
            continue
        algorithm, sep, digest = hash_text.partition("=")
        if not sep or not digest:
            raise refuse(f"RECORD line {number} ({path}): hash {hash_text!r} is not 'algo=digest'")
        if algorithm not in RECORD_HASHES:
            raise refuse(
                f"RECORD line {number} ({path}): hash algorithm {algorithm!r} is not allowed; "
                "use sha256 or stronger"
            )
        try:
            size = int(size_text)
        except ValueError:
            raise refuse(
                f"RECORD line {number} ({path}): size {size_text!r} is not a number"
            ) from None
        rows[path] = (algorithm, digest.rstrip("="), size)
    return rows


class MemberDigest:
    """Hashes and counts one member's bytes as they stream past, against its RECORD entry.

    :meth:`update` refuses the member as soon as more bytes come than RECORD declares (so a
    lying zip header cannot make the reader inflate a bomb); :meth:`verify` checks the size
    and the hash once the stream ended. Errors are :class:`InvalidWheel` naming the wheel.
    """

    __slots__ = ("_hasher", "_wheel", "algorithm", "digest", "name", "seen", "size", "verified")

    def __init__(self, wheel: str, name: str, entry: RecordEntry) -> None:
        self._wheel = wheel
        self.name = name
        self.algorithm, self.digest, self.size = entry
        self._hasher = hashlib.new(self.algorithm)
        self.seen = 0
        self.verified = False

    def update(self, chunk: bytes) -> None:
        """Count and hash ``chunk``; refuse the member if it goes past its declared size."""
        self.seen += len(chunk)
        if self.seen > self.size:
            raise InvalidWheel(
                f"{self._wheel}: member {self.name!r} inflates past its declared size"
            )
        self._hasher.update(chunk)

    def verify(self) -> None:
        """Check the bytes seen so far are the whole member, as RECORD describes it."""
        if self.seen != self.size or b64_digest(self._hasher) != self.digest:
            raise InvalidWheel(
                f"{self._wheel}: {self.name!r} does not match its RECORD hash (the file was "
                "changed after the wheel was built)"
            )
        self.verified = True
