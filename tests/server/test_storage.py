"""The content-addressed blob store."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from arcade_server.storage import BlobCorrupt, BlobNotFound, LocalBlobStore


def test_put_is_content_addressed_verified_and_idempotent(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    data = b"wheel bytes" * 1000
    sha = hashlib.sha256(data).hexdigest()
    assert store.put(io.BytesIO(data), sha) == (sha, len(data))
    assert store.path(sha) == tmp_path / "blobs" / sha[:2] / sha[2:]
    assert store.put(io.BytesIO(data)) == (sha, len(data))
    with store.open(sha) as fh:
        assert fh.read() == data
    assert store.size(sha) == len(data)
    assert store.exists(sha)
    assert store.delete(sha) is True
    assert store.delete(sha) is False
    with pytest.raises(BlobNotFound):
        store.open(sha)


def test_a_hash_mismatch_stores_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    wrong = "0" * 64
    with pytest.raises(BlobCorrupt, match="expected"):
        store.put(io.BytesIO(b"content"), wrong)
    assert not store.exists(wrong)
    assert not store.exists(hashlib.sha256(b"content").hexdigest())
    assert list((tmp_path / "blobs" / ".tmp").iterdir()) == []


def test_names_that_are_not_sha256_are_refused(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(ValueError, match="sha256"):
        store.exists("../../etc/passwd")
