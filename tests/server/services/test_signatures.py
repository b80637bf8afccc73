"""Signatures of published versions, checked before they are stored (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select

from arcade_core import signing
from arcade_server.db import tables as t
from arcade_server.db.engine import Database
from arcade_server.errors import Invalid, NotFound
from arcade_server.services import agents, assignments, publishing, signatures
from tests.server.helpers import dependency_wheel, plugin_wheel, unique


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _published(db: Database, tmp_path: Path) -> tuple[str, int, bytes]:
    name, dep = unique(), unique("dep")
    db.call(publishing.record_version, publishing.inspect_upload([
        plugin_wheel(tmp_path, name, "1.0.0", requires=[dep]), dependency_wheel(tmp_path, dep)]))
    version_id = int(db.call(lambda conn: conn.execute(
        select(t.plugin_versions.c.id).where(t.plugin_versions.c.plugin_name == name)
    ).scalar_one()))
    return name, version_id, db.call(signatures.statement_of, version_id, name, "1.0.0")


def test_a_valid_signature_is_stored_and_read_back(database: Database, tmp_path: Path) -> None:
    name, version_id, data = _published(database, tmp_path)
    assert len(json.loads(data)["wheels"]) == 2  # the plugin wheel and its dependency
    author, team = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    for key in (author, team, author):  # signing again with a key replaces its signature
        signed = signing.sign(key, data)
        database.call(signatures.add, name, "1.0.0", public_key=_raw(key),
                      signature=signed.signature)
    found = database.call(signatures.of_versions, [version_id, version_id + 10_000])
    assert sorted(s.key_id for s in found[version_id]) == sorted(
        [signing.key_id(_raw(author)), signing.key_id(_raw(team))])
    assert found[version_id + 10_000] == []
    for s in found[version_id]:
        key = author if s.key_id == signing.key_id(_raw(author)) else team
        assert signing.verify(_raw(key), s.signature, data)


def test_a_signature_of_other_bytes_is_refused(database: Database, tmp_path: Path) -> None:
    name, version_id, data = _published(database, tmp_path)
    key = Ed25519PrivateKey.generate()
    swapped = signing.statement(name, "1.0.0", {"other-1.0-py3-none-any.whl": "00" * 32})
    with pytest.raises(Invalid, match="does not verify"):
        database.call(signatures.add, name, "1.0.0", public_key=_raw(key),
                      signature=signing.sign(key, swapped).signature)
    with pytest.raises(Invalid, match="32"):
        database.call(signatures.add, name, "1.0.0", public_key=b"x" * 31,
                      signature=signing.sign(key, data).signature)
    with pytest.raises(NotFound):
        database.call(signatures.add, name, "9.9.9", public_key=_raw(key),
                      signature=signing.sign(key, data).signature)
    assert database.call(signatures.of_versions, [version_id]) == {version_id: []}


def test_a_new_signature_gives_the_agents_running_the_version_a_new_revision(
    database: Database, tmp_path: Path
) -> None:
    name, _, data = _published(database, tmp_path)
    for agent_id in ("signed-a", "signed-b", "signed-other"):
        database.call(agents.register, agents.AgentInfo(agent_id=agent_id, labels={}))
    for agent_id in ("signed-a", "signed-b"):
        database.call(assignments.assign, agent_id, f"{name}@1.0.0")

    def revisions() -> dict[str, int]:
        return dict(database.call(lambda conn: conn.execute(
            select(t.agents.c.id, t.agents.c.desired_revision)
            .where(t.agents.c.id.like("signed-%"))).all()))

    before = revisions()
    key = Ed25519PrivateKey.generate()
    added = database.call(signatures.add, name, "1.0.0", public_key=_raw(key),
                          signature=signing.sign(key, data).signature)
    assert added["agents"] == ["signed-a", "signed-b"]
    after = revisions()
    assert after["signed-a"] == before["signed-a"] + 1
    assert after["signed-b"] == before["signed-b"] + 1
    assert after["signed-other"] == before["signed-other"]
