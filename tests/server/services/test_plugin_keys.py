"""The publish policy in the version's transaction (SQLite and PostgreSQL): a signed record
claims the name, a claimed name refuses other versions, a refused record leaves nothing, and
deleting a version takes its signatures but not the claim."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select

from arcade_core import signing
from arcade_server.db import tables as t
from arcade_server.db.engine import Database
from arcade_server.errors import Forbidden, Invalid
from arcade_server.services import plugin_keys, publishing, registry
from tests.server.helpers import plugin_wheel, unique


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _signed(key: Ed25519PrivateKey, prepared: publishing.PreparedPublish
            ) -> publishing.Signed:
    data = signing.statement(prepared.plugin.name, prepared.plugin.version,
                             {w.filename: w.sha256 for w in prepared.wheels})
    return publishing.Signed(_raw(key), signing.sign(key, data).signature)


def _count(db: Database, table: t.Table) -> int:
    return int(db.call(lambda conn: conn.scalar(select(func.count()).select_from(table))))


def test_a_signed_record_claims_and_the_claim_refuses_others(
    database: Database, tmp_path: Path
) -> None:
    owner, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    name = unique()
    v1 = publishing.inspect_upload([plugin_wheel(tmp_path / "1", name, "1.0.0")])
    result = database.call(publishing.record_version, v1, _signed(owner, v1))
    assert [s["key_id"] for s in result.version["signers"]] == [signing.key_id(_raw(owner))]
    assert [k["key_id"] for k in database.call(plugin_keys.keys_of, name)["keys"]] == [
        signing.key_id(_raw(owner))]
    v2 = publishing.inspect_upload([plugin_wheel(tmp_path / "2", name, "2.0.0")])
    versions = _count(database, t.plugin_versions)
    with pytest.raises(Forbidden, match="unsigned"):
        database.call(publishing.record_version, v2)
    with pytest.raises(Forbidden, match=signing.key_id(_raw(other))):
        database.call(publishing.record_version, v2, _signed(other, v2))
    # A signature of other bytes, even by the owner: refused in the same transaction.
    with pytest.raises(Invalid, match="does not verify"):
        database.call(publishing.record_version, v2, _signed(owner, v1))
    assert _count(database, t.plugin_versions) == versions
    database.call(publishing.record_version, v2, _signed(owner, v2))
    # Deleting a version takes its signatures; the claim stays (a name is not freed by it).
    signatures_before = _count(database, t.plugin_signatures)
    database.call(registry.delete_version, name, "2.0.0")
    assert _count(database, t.plugin_signatures) == signatures_before - 1
    assert database.call(plugin_keys.keys_of, name)["keys"]


def test_set_keys_replaces_keeps_added_at_and_releases(database: Database) -> None:
    a, b = _raw(Ed25519PrivateKey.generate()), _raw(Ed25519PrivateKey.generate())
    name = unique()
    first = database.call(plugin_keys.set_keys, name, [a])
    both = database.call(plugin_keys.set_keys, name, [a, b])
    kept = next(k for k in both["keys"] if k["key_id"] == signing.key_id(a))
    assert kept["added_at"] == first["keys"][0]["added_at"]
    assert {k["key_id"] for k in both["keys"]} == {signing.key_id(a), signing.key_id(b)}
    assert database.call(plugin_keys.set_keys, name, [])["keys"] == []
    with pytest.raises(Invalid, match="31 bytes"):
        database.call(plugin_keys.set_keys, name, [b"x" * 31])


def test_concurrent_first_signed_publishes_claim_for_one_key_only(
    database: Database, tmp_path: Path
) -> None:
    for round_ in range(3):
        name = unique()
        # Published unsigned before: the plugin's row exists, only its lock serializes.
        database.call(publishing.record_version, publishing.inspect_upload(
            [plugin_wheel(tmp_path / f"{round_}-0", name, "0.1.0")]))
        keys = [Ed25519PrivateKey.generate() for _ in range(2)]
        prepared = [publishing.inspect_upload(
            [plugin_wheel(tmp_path / f"{round_}-{i + 1}", name, f"{i + 1}.0.0")])
            for i in range(2)]

        signed = [(p, _signed(k, p)) for p, k in zip(prepared, keys, strict=True)]

        def record(attempt: tuple[publishing.PreparedPublish, publishing.Signed]) -> str:
            try:
                database.call(publishing.record_version, *attempt)
            except Forbidden:
                return "refused"
            return "published"

        with ThreadPoolExecutor(2) as pool:
            outcomes = sorted(pool.map(record, signed))
        assert outcomes == ["published", "refused"]
        assert len(database.call(plugin_keys.keys_of, name)["keys"]) == 1
