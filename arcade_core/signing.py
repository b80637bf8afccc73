"""Signed statements: what a plugin version's signature covers, and how it is checked.

A publisher signs a *statement* naming one plugin version and every wheel published with it
(the plugin wheel and its dependency wheels, by sha256). The statement is the canonical JSON
of RFC 8785 (JCS) of::

    {"type": "arcade-statement/v1", "name": ..., "version": ..., "wheels": {filename: sha256}}

so the publisher, the server and every agent derive the same bytes from the same facts, and an
agent can rebuild it from its desired state alone: the server only carries signatures, it
cannot make one. Keys are ed25519; a key's id is the first 16 hex digits of the sha256 of its
raw 32-byte public key. Public keys are written and configured as the base64 of those raw bytes
(``NAME.pub`` holds one such line); private keys are PKCS#8 PEM, optionally encrypted with a
passphrase.

:mod:`cryptography` is imported by the functions that need it, not by this module, so a process
that only builds statements or key ids does not load it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._exceptions import ArcadeError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "KEY_ID_LENGTH",
    "SIGNATURE_LENGTH",
    "STATEMENT_TYPE",
    "Signature",
    "SigningKeyError",
    "canonical_json",
    "key_id",
    "parse_public_key",
    "public_key_text",
    "sign",
    "statement",
    "verify",
]

STATEMENT_TYPE = "arcade-statement/v1"
KEY_ID_LENGTH = 16
SIGNATURE_LENGTH = 64
_PUBLIC_KEY_LENGTH = 32


class SigningKeyError(ArcadeError):
    """A public or private key could not be read (the message says which and why)."""


@dataclass(frozen=True)
class Signature:
    """One signature over a version's statement: the signer's key id and the 64 raw bytes."""

    key_id: str
    signature: bytes


def _utf16_order(key: str) -> bytes:
    """RFC 8785 sorts object keys by their UTF-16 code units (not by code points)."""
    return key.encode("utf-16-be")


def _sorted(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value, key=_utf16_order)}
    return value


def canonical_json(value: Mapping[str, object]) -> bytes:
    """RFC 8785 canonical JSON of an object whose leaves are strings (and nested objects of
    strings): keys sorted by UTF-16 code units, no whitespace, minimal string escapes
    (``json`` escapes exactly ``"``, ``\\``, and control characters, in lower-case hex), UTF-8.

    Numbers, lists and other types are refused: a statement carries none, and refusing them
    keeps this function exactly JCS without a float serializer."""
    def check(v: object) -> None:
        if isinstance(v, Mapping):
            for k, item in v.items():
                if not isinstance(k, str):
                    raise TypeError(f"canonical_json: key {k!r} is not a string")
                check(item)
        elif not isinstance(v, str):
            raise TypeError(f"canonical_json: {type(v).__name__} values are not supported")
    check(value)
    return json.dumps(_sorted(value), ensure_ascii=False, separators=(",", ":"),
                      sort_keys=False).encode("utf-8")


def statement(name: str, version: str, wheels: Mapping[str, str]) -> bytes:
    """The bytes a signature of ``name==version`` covers: every wheel (filename → sha256 hex,
    the plugin wheel and its dependencies) published as that version."""
    return canonical_json({"type": STATEMENT_TYPE, "name": name, "version": version,
                           "wheels": {filename: digest.lower()
                                      for filename, digest in wheels.items()}})


def key_id(public_key: bytes) -> str:
    """A key's id: the first 16 hex digits of the sha256 of its raw 32-byte public key."""
    return hashlib.sha256(public_key).hexdigest()[:KEY_ID_LENGTH]


def parse_public_key(text: str | bytes, *, source: str = "key") -> bytes:
    """The raw 32 bytes of a public key given as base64 (a ``NAME.pub`` file's one line, or a
    trust config's ``key =``); :class:`SigningKeyError` names ``source`` when it is not one."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.strip().startswith("#")]
    if len(lines) != 1:
        raise SigningKeyError(f"{source}: expected one line with the base64 of an ed25519 public "
                        f"key (as `arcade keys generate` writes NAME.pub), found {len(lines)}")
    try:
        raw = base64.b64decode(lines[0], validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError(f"{source}: not base64; expected the base64 of an ed25519 public key "
                        "(as `arcade keys generate` writes NAME.pub)") from None
    if len(raw) != _PUBLIC_KEY_LENGTH:
        raise SigningKeyError(f"{source}: {len(raw)} bytes; an ed25519 public key has "
                        f"{_PUBLIC_KEY_LENGTH}")
    return raw


def public_key_text(public_key: bytes) -> str:
    """How a public key is written (``NAME.pub``, trust configs): base64 of the raw bytes."""
    return base64.b64encode(public_key).decode("ascii")


def sign(private_key: Ed25519PrivateKey, data: bytes) -> Signature:
    """Sign ``data`` (a :func:`statement`) with ``private_key``."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return Signature(key_id=key_id(raw), signature=private_key.sign(data))


def verify(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` is ``public_key``'s valid ed25519 signature of ``data``."""
    if len(signature) != SIGNATURE_LENGTH or len(public_key) != _PUBLIC_KEY_LENGTH:
        return False
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except InvalidSignature:
        return False
    return True
