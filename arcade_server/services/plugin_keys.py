"""The publish policy: a plugin name, once claimed, accepts new versions only when they are
signed by one of its registered keys.

Why this design: it needs no setup and protects the common case. The first *signed* publish of
a name claims it with its signer's key (table ``plugin_keys``), so a publisher who signs from
their first release on is protected from then on: a stolen publisher token alone can no longer
publish a new version of that name, unsigned or signed with another key (403, naming the key
ids the name accepts). Unsigned publishes of an unclaimed name stay allowed, so existing
workflows keep working until they start signing. Adding signatures to an existing version
(``arcade sign``) is not restricted: a version may be co-signed by anyone (a release team, an
auditor), and each agent decides whom it trusts. Only an admin changes a claim's keys
(:func:`set_keys`: add a second publisher, rotate, transfer the name, or release it with an
empty list); an admin may also claim a name before anything is published under it.

The server-side policy complements, not replaces, the agents' own trust: a compromised server
could skip it, but it cannot make a signature an agent trusts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, select

from arcade_core import InvalidSpec, normalize_name, signing

from ..db import tables as t
from ..errors import Forbidden, Hint, Invalid

__all__ = ["MAX_KEYS", "check_publish", "claim", "keys_of", "plugin_name", "set_keys"]

#: At most this many keys per claimed name (a handful of release keys, not a key ring).
MAX_KEYS = 32


def plugin_name(name: str) -> str:
    """The normalized plugin name (422 naming the problem when it is not a valid one)."""
    try:
        return normalize_name(name)
    except InvalidSpec as exc:
        raise Invalid(f"{name[:100]!r} is not a plugin name: {exc}") from None


def _rows(conn: Connection, name: str) -> list[Any]:
    table = t.plugin_keys
    return list(conn.execute(
        select(table).where(table.c.plugin_name == name).order_by(table.c.key_id)))


def keys_of(conn: Connection, name: str) -> dict[str, Any]:
    """The keys ``name`` accepts new versions signed by (none: the name is not claimed)."""
    name = plugin_name(name)
    return {"name": name, "keys": [
        {"key_id": row.key_id, "public_key": signing.public_key_text(bytes(row.public_key)),
         "added_at": row.added_at}
        for row in _rows(conn, name)]}


def check_publish(conn: Connection, name: str, key_id: str | None) -> None:
    """Refuse (403) a new version of a claimed ``name`` not signed by one of its keys."""
    accepted = [row.key_id for row in _rows(conn, name)]
    if not accepted or key_id in accepted:
        return
    sign = Hint("POST /api/v1/plugins (fields public_key, signature)",
                "arcade publish WHEEL... --sign KEY.key")
    how = (f"sign it with one of those keys ({sign}); an admin changes the keys with "
           f"`arcade keys transfer {name}`")
    if key_id is None:
        raise Forbidden(
            f"plugin {name!r} is claimed: new versions must be signed by one of its keys "
            f"({', '.join(accepted)}), and this one is unsigned; {how}",
            {"accepted_keys": accepted, "signed_by": None}, hints=[sign])
    raise Forbidden(
        f"plugin {name!r} is claimed: new versions must be signed by one of its keys "
        f"({', '.join(accepted)}), and this one is signed by {key_id}; {how}",
        {"accepted_keys": accepted, "signed_by": key_id}, hints=[sign])


def claim(conn: Connection, name: str, public_key: bytes) -> None:
    """Claim ``name`` for ``public_key`` if no key claims it yet (the first signed publish)."""
    if _rows(conn, name):
        return
    conn.execute(t.plugin_keys.insert().values(
        plugin_name=name, key_id=signing.key_id(public_key), public_key=public_key,
        added_at=time.time()))


def set_keys(conn: Connection, name: str, public_keys: Sequence[bytes]) -> dict[str, Any]:
    """Make ``public_keys`` (raw 32 bytes each) the keys ``name`` accepts (an admin's change:
    a second publisher, a rotation, a transfer; empty releases the claim). Keys kept keep
    their ``added_at``."""
    name = plugin_name(name)
    if len(public_keys) > MAX_KEYS:
        raise Invalid(f"{len(public_keys)} keys: a plugin name accepts at most {MAX_KEYS}")
    for index, key in enumerate(public_keys):
        if len(key) != 32:
            raise Invalid(f"keys[{index}]: {len(key)} bytes; an ed25519 public key has 32")
    wanted = {signing.key_id(key): key for key in public_keys}
    table = t.plugin_keys
    current = {row.key_id for row in _rows(conn, name)}
    gone = sorted(current - set(wanted))
    if gone:
        conn.execute(delete(table).where(table.c.plugin_name == name,
                                         table.c.key_id.in_(gone)))
    now = time.time()
    for key_id, key in sorted(wanted.items()):
        if key_id not in current:
            conn.execute(table.insert().values(plugin_name=name, key_id=key_id,
                                               public_key=key, added_at=now))
    return keys_of(conn, name)
