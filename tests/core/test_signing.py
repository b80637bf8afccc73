"""Signed statements: canonical bytes, key ids, signatures checked with real ed25519 keys."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from arcade_core.signing import (
    SigningKeyError,
    canonical_json,
    key_id,
    parse_public_key,
    public_key_text,
    sign,
    statement,
    verify,
)


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_statement_is_rfc8785_canonical_json() -> None:
    data = statement("arcade-foo", "1.2.0", {"b-1-py3-none-any.whl": "AB" * 32,
                                               "a-1-py3-none-any.whl": "cd" * 32})
    assert data == (
        b'{"name":"arcade-foo","type":"arcade-statement/v1","version":"1.2.0","wheels":'
        b'{"a-1-py3-none-any.whl":"' + b"cd" * 32 + b'","b-1-py3-none-any.whl":"'
        + b"ab" * 32 + b'"}}')


def test_keys_sort_by_utf16_code_units_as_rfc8785_says() -> None:
    # RFC 8785 section 3.2.3's example: the surrogate pair of U+1F600 sorts before U+FB33.
    keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    out = canonical_json({k: "x" for k in keys}).decode("utf-8")
    order = ["\\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert out == "{" + ",".join(f'"{k}":"x"' for k in order) + "}"


def test_control_characters_escape_in_lower_case_hex() -> None:
    assert canonical_json({"a": "\x1f\n\"\\/"}) == b'{"a":"\\u001f\\n\\"\\\\/"}'


@pytest.mark.parametrize("value", [1, 1.5, None, True, ["x"]])
def test_values_other_than_strings_are_refused(value: object) -> None:
    with pytest.raises(TypeError):
        canonical_json({"a": value})


def test_a_signature_verifies_only_for_its_key_and_bytes() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    data = statement("p", "1", {"p-1-py3-none-any.whl": "00" * 32})
    signed = sign(key, data)
    assert signed.key_id == hashlib.sha256(_raw(key)).hexdigest()[:16] == key_id(_raw(key))
    assert verify(_raw(key), signed.signature, data)
    assert not verify(_raw(other), signed.signature, data)
    assert not verify(_raw(key), signed.signature, data.replace(b"00", b"01", 1))
    assert not verify(_raw(key), signed.signature[:-1], data)  # wrong length: no exception


def test_public_keys_round_trip_through_their_text() -> None:
    raw = _raw(Ed25519PrivateKey.generate())
    text = public_key_text(raw)
    assert parse_public_key(f"# release key\n{text}\n") == raw
    assert parse_public_key(text.encode()) == raw


@pytest.mark.parametrize(("text", "says"), [
    ("", "found 0"),
    ("a\nb", "found 2"),
    ("not base64!", "not base64"),
    (base64.b64encode(b"short").decode(), "5 bytes"),
])
def test_a_bad_public_key_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(SigningKeyError, match=says) as info:
        parse_public_key(text, source="/etc/arcade/release.pub")
    assert "/etc/arcade/release.pub" in str(info.value)
