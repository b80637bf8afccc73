"""Desired states carry each version's signatures, read for all agents at once, and the agent
rebuilds from the wire exactly the statement the server checked (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import event

from arcade_agent.desired import DesiredPlugin
from arcade_agent.trust import Trust, TrustedKey
from arcade_core import signing
from arcade_server.db.engine import Database
from arcade_server.rpc.convert import desired_to_pb
from arcade_server.services import agents, assignments, desired, publishing, signatures
from tests.server.helpers import dependency_wheel, plugin_wheel, unique


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _sign(db: Database, name: str, version: str, key: Ed25519PrivateKey) -> None:
    def add(conn: Any) -> None:
        row = signatures._version_row(conn, name, version)
        data = signatures.statement_of(conn, row.id, name, version)
        signatures.add(conn, name, version, public_key=_raw(key),
                       signature=signing.sign(key, data).signature)
    db.call(add)


def test_desired_states_carry_signatures_the_agent_verifies(
    database: Database, tmp_path: Path
) -> None:
    signed, unsigned, dep = unique(), unique(), unique("dep")
    database.call(publishing.record_version, publishing.inspect_upload([
        plugin_wheel(tmp_path, signed, "1.0.0", requires=[dep]),
        dependency_wheel(tmp_path, dep)]))
    database.call(publishing.record_version, publishing.inspect_upload([
        plugin_wheel(tmp_path, unsigned, "1.0.0")]))
    author, release = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    _sign(database, signed, "1.0.0", author)
    _sign(database, signed, "1.0.0", release)
    database.call(agents.register, agents.AgentInfo(agent_id="s1"))
    database.call(assignments.assign, "s1", signed)
    database.call(assignments.assign, "s1", unsigned)

    state = database.call(desired.desired_state, "s1")
    by_name = {p.name: p for p in state.plugins}
    assert sorted(s.key_id for s in by_name[signed].signatures) == sorted(
        signing.key_id(_raw(k)) for k in (author, release))
    assert by_name[unsigned].signatures == ()

    # Over the wire and back: the agent's statement is the one the server checked.
    message = desired_to_pb(state).desired
    wire = {p.name: DesiredPlugin.from_pb(p) for p in message.plugins}
    trust = Trust((TrustedKey(_raw(release)),))
    plugin = wire[signed]
    assert len(plugin.wheels) == 2
    assert trust.check(plugin.name, plugin.version, plugin.wheel_hashes,
                       plugin.signatures) == signing.key_id(_raw(release))
    # A new signature is a new attempt for the agent (a remembered failure is retried).
    assert plugin.fingerprint() != DesiredPlugin.from_pb(
        type(message.plugins[0])(name=signed, version="1.0.0", config_json="{}",
                                 wheels=plugin.refs)).fingerprint()


def test_signatures_are_read_once_for_any_number_of_agents(
    database: Database, tmp_path: Path
) -> None:
    name = unique()
    database.call(publishing.record_version, publishing.inspect_upload([
        plugin_wheel(tmp_path, name, "1.0.0")]))
    _sign(database, name, "1.0.0", Ed25519PrivateKey.generate())

    def selects(count: int) -> int:
        ids = [f"{name}-{count}-{i}" for i in range(count)]
        for agent_id in ids:
            database.call(agents.register, agents.AgentInfo(agent_id=agent_id))
            database.call(assignments.assign, agent_id, name)
        seen: list[str] = []

        def note(*args: Any) -> None:
            seen.append(str(args[2]))

        event.listen(database.engine, "before_cursor_execute", note)
        try:
            with database.transaction(write=False) as conn:
                states = desired.desired_states(conn, ids)
        finally:
            event.remove(database.engine, "before_cursor_execute", note)
        assert all(len(s.plugins[0].signatures) == 1 for s in states.values())
        return len([s for s in seen if s.lstrip().upper().startswith("SELECT")])

    assert selects(1) == selects(40) == 4
