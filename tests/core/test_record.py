"""RECORD parsing and the one member check shared by inspection and installation."""

from __future__ import annotations

import hashlib

import pytest

from arcade_core import InvalidWheel
from arcade_core._record import MemberDigest, b64_digest, parse_record


def refuse(reason: str) -> InvalidWheel:
    return InvalidWheel(f"w.whl: {reason}")


def entry(data: bytes) -> tuple[str, str, int]:
    return "sha256", b64_digest(hashlib.sha256(data)), len(data)


def test_parse_record_reads_entries_and_unhashed_lines() -> None:
    data = b"print(1)\n"
    algorithm, digest, size = entry(data)
    rows = parse_record(f"pkg/m.py,{algorithm}={digest},{size}\npkg-1.dist-info/RECORD,,\n",
                        refuse)
    assert rows == {"pkg/m.py": (algorithm, digest, size), "pkg-1.dist-info/RECORD": None}


@pytest.mark.parametrize(("line", "message"), [
    ("a.py,sha256=x", "RECORD line 1 has 2 fields"),
    ("a.py,sha256,3", "is not 'algo=digest'"),
    ("a.py,md5=abc,3", "hash algorithm 'md5' is not allowed"),
    ("a.py,sha256=abc,big", "size 'big' is not a number"),
])
def test_parse_record_refuses_malformed_lines(line: str, message: str) -> None:
    with pytest.raises(InvalidWheel, match=message):
        parse_record(line, refuse)


def test_member_digest_accepts_the_exact_bytes_in_chunks() -> None:
    check = MemberDigest("w.whl", "pkg/m.py", entry(b"hello world"))
    check.update(b"hello ")
    check.update(b"world")
    check.verify()
    assert check.verified


def test_member_digest_refuses_more_bytes_than_declared_at_once() -> None:
    check = MemberDigest("w.whl", "pkg/m.py", entry(b"abc"))
    with pytest.raises(InvalidWheel, match=r"w\.whl: member 'pkg/m\.py' inflates past its"):
        check.update(b"abcd")


@pytest.mark.parametrize("seen", [b"abd", b"ab"])
def test_member_digest_refuses_changed_or_short_content(seen: bytes) -> None:
    check = MemberDigest("w.whl", "pkg/m.py", entry(b"abc"))
    check.update(seen)
    with pytest.raises(InvalidWheel, match="does not match its RECORD hash"):
        check.verify()
    assert not check.verified
