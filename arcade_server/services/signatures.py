"""Signatures of published versions: checked before they are stored, carried to agents.

A signature covers a version's statement (:func:`arcade_core.signing.statement` of its name,
version and every wheel's sha256, in the order they are installed), so :func:`add` rebuilds
the statement from the stored version and checks the signature with the public key the
signer sent: a signature that does not verify, or covers other wheels, is refused before
anything is written. What the server stores only says *who signed*; whether to trust them is
each agent's decision, from its own config (the server cannot widen it).

:func:`of_versions` reads them for many versions at once (the desired states);
:func:`signers_of` says who signed, and when, for the registry's responses.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from arcade_core import signing

from ..db import tables as t
from ..errors import Invalid, NotFound
from ._versions import wheels_of
from .agents import bump_revisions

__all__ = ["add", "of_versions", "signers_of", "statement_of"]


def _version_row(conn: Connection, name: str, version: str) -> Any:
    row = conn.execute(
        select(t.plugin_versions.c.id, t.plugin_versions.c.plugin_name,
               t.plugin_versions.c.version)
        .where(t.plugin_versions.c.plugin_name == name, t.plugin_versions.c.version == version)
    ).first()
    if row is None:
        raise NotFound(f"plugin {name!r} has no version {version!r}")
    return row


def statement_of(conn: Connection, version_id: int, name: str, version: str) -> bytes:
    """The statement a signature of this stored version must cover."""
    wheels = {w.filename: w.sha256 for w in wheels_of(conn, version_id)}
    return signing.statement(name, version, wheels)


def add(conn: Connection, name: str, version: str, *, public_key: bytes,
        signature: bytes) -> dict[str, Any]:
    """Store ``signature`` of ``name==version`` by ``public_key`` after checking it; signing
    again with the same key replaces the old signature. The agents this version is assigned
    to get a new desired revision (their desired state now carries the signature: an agent
    that refused the version for want of a trusted signature tries again). Returns
    ``{"key_id", "created_at", "agents"}`` (``agents``: their ids, to notify)."""
    if len(public_key) != 32:
        raise Invalid(f"public key: {len(public_key)} bytes; an ed25519 public key has 32")
    if len(signature) != signing.SIGNATURE_LENGTH:
        raise Invalid(f"signature: {len(signature)} bytes; an ed25519 signature has "
                      f"{signing.SIGNATURE_LENGTH}")
    row = _version_row(conn, name, version)
    if not signing.verify(public_key, signature, statement_of(conn, row.id, name, version)):
        raise Invalid(
            f"the signature by key {signing.key_id(public_key)} does not verify for "
            f"{name}=={version}: sign the statement of exactly the wheels published as this "
            "version (`arcade sign NAME@VERSION --key KEY`)")
    key_id = signing.key_id(public_key)
    now = time.time()
    table = t.plugin_signatures
    conn.execute(table.delete().where(table.c.version_id == row.id, table.c.key_id == key_id))
    conn.execute(table.insert().values(version_id=row.id, key_id=key_id, public_key=public_key,
                                       signature=signature, created_at=now))
    assigned = select(t.assignments.c.agent_id).where(t.assignments.c.version_id == row.id)
    bumped = bump_revisions(conn, t.agents.c.id.in_(assigned))
    return {"key_id": key_id, "created_at": now, "agents": sorted(bumped)}


def of_versions(conn: Connection, version_ids: Iterable[int]
                ) -> dict[int, list[signing.Signature]]:
    """The signatures of each version (by key id), for any number of versions in one query
    per 500."""
    ids = sorted(set(version_ids))
    out: dict[int, list[signing.Signature]] = {version_id: [] for version_id in ids}
    table = t.plugin_signatures
    for start in range(0, len(ids), 500):
        for row in conn.execute(
            select(table.c.version_id, table.c.key_id, table.c.signature)
            .where(table.c.version_id.in_(ids[start:start + 500]))
            .order_by(table.c.version_id, table.c.key_id)
        ):
            out[row.version_id].append(signing.Signature(row.key_id, bytes(row.signature)))
    return out


def signers_of(conn: Connection, version_ids: Iterable[int]
               ) -> dict[int, list[dict[str, Any]]]:
    """Who signed each version, and when: ``[{"key_id", "created_at"}]`` by key id, for any
    number of versions in one query per 500 (the registry shows these)."""
    ids = sorted(set(version_ids))
    out: dict[int, list[dict[str, Any]]] = {version_id: [] for version_id in ids}
    table = t.plugin_signatures
    for start in range(0, len(ids), 500):
        for row in conn.execute(
            select(table.c.version_id, table.c.key_id, table.c.created_at)
            .where(table.c.version_id.in_(ids[start:start + 500]))
            .order_by(table.c.version_id, table.c.key_id)
        ):
            out[row.version_id].append({"key_id": row.key_id, "created_at": row.created_at})
    return out
