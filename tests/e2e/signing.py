"""Signing published versions in e2e tests.

:func:`sign_version` is the one place e2e tests add a signature to a published version: as
``arcade sign`` does, through ``POST /api/v1/plugins/{name}/versions/{version}/signatures``.
:func:`forge_signature` and :func:`swap_wheel` play a compromised server: they write rows no
service would (a signature of other bytes; another wheel under a signed version), to show
that agents refuse what their trusted keys did not sign.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Connection, select

from arcade_core import signing
from arcade_server.db import tables as t
from arcade_server.db.engine import Database

from .harness import Server

__all__ = ["forge_signature", "public_key_file", "sign_version", "swap_wheel"]

T = TypeVar("T")


def public_key_file(key: Ed25519PrivateKey, path: Path) -> Path:
    """Write ``key``'s public half as ``arcade keys generate`` writes ``NAME.pub``."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    path.write_text(signing.public_key_text(raw) + "\n")
    return path


def _on_db(server: Server, fn: Callable[[Connection], T]) -> T:
    db = Database(f"sqlite:///{server.home / 'arcade.db'}", threads=1)
    try:
        return db.call(fn)
    finally:
        db.close()


def _version_id(conn: Connection, name: str, version: str) -> int:
    v = t.plugin_versions.c
    return int(conn.execute(select(v.id).where(v.plugin_name == name, v.version == version))
               .scalar_one())


def sign_version(server: Server, name: str, version: str, key: Ed25519PrivateKey) -> str:
    """Sign the published ``name==version`` with ``key`` as ``arcade sign`` does: the
    statement of the wheels the registry lists, sent to ``POST .../signatures``; returns the
    key id."""
    detail = server.http.get(f"/plugins/{name}/versions/{version}")
    assert detail.status_code == 200, detail.text
    wheels = {w["filename"]: w["sha256"] for w in detail.json()["wheels"]}
    signed = signing.sign(key, signing.statement(name, version, wheels))
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    added = server.http.post(f"/plugins/{name}/versions/{version}/signatures", json={
        "public_key": signing.public_key_text(raw),
        "signature": base64.b64encode(signed.signature).decode()})
    assert added.status_code == 201, added.text
    return str(added.json()["key_id"])


def forge_signature(server: Server, name: str, version: str, key: Ed25519PrivateKey,
                    data: bytes) -> str:
    """Store ``key``'s signature of ``data`` (not the version's statement) unchecked."""
    signed = signing.sign(key, data)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def insert(conn: Connection) -> None:
        conn.execute(t.plugin_signatures.insert().values(
            version_id=_version_id(conn, name, version), key_id=signed.key_id,
            public_key=raw, signature=signed.signature, created_at=0.0))

    _on_db(server, insert)
    return signed.key_id


def swap_wheel(server: Server, name: str, version: str, position: int,
               other: tuple[str, int]) -> None:
    """Point wheel ``position`` of ``name==version`` at another stored blob (sha256, size)."""
    def update(conn: Connection) -> None:
        w = t.plugin_version_wheels
        changed = conn.execute(
            w.update().where(w.c.version_id == _version_id(conn, name, version),
                             w.c.position == position)
            .values(sha256=other[0], size=other[1])).rowcount
        assert changed == 1, f"{name}=={version} has no wheel at position {position}"

    _on_db(server, update)
