"""ed25519 through the ssl module's libcrypto agrees with ``cryptography``: RFC 8032's test
vectors, and every single-bit change of a signature, key or message refused by both."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from arcade_core import _libcrypto

pytestmark = pytest.mark.skipif(not _libcrypto.available(),
                                reason="this Python's ssl module does not expose libcrypto")

# RFC 8032 section 7.1, TEST 1 (empty message), TEST 2 (one byte) and TEST 3 (two bytes).
VECTORS = [
    ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
     "701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f36"
     "13d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f7"
     "60984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]


def _cryptography_verify(public_key: bytes, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


@pytest.mark.parametrize(("key", "message", "signature"), VECTORS)
def test_rfc8032_vectors_verify(key: str, message: str, signature: str) -> None:
    raw_key, data, raw_signature = map(bytes.fromhex, (key, message, signature))
    assert _libcrypto.ed25519_verify(raw_key, raw_signature, data)
    assert not _libcrypto.ed25519_verify(raw_key, raw_signature, data + b"\0")


def test_every_flipped_bit_is_refused_as_cryptography_refuses_it() -> None:
    key = Ed25519PrivateKey.generate()
    public_key = key.public_key().public_bytes_raw()
    data = b'{"name":"arcade-cpu","type":"arcade-statement/v1"}'
    signature = key.sign(data)
    assert _libcrypto.ed25519_verify(public_key, signature, data)
    for which in range(3):
        parts = [bytearray(public_key), bytearray(signature), bytearray(data)]
        for bit in range(len(parts[which]) * 8):
            changed = [bytes(p) for p in parts]
            flipped = bytearray(changed[which])
            flipped[bit // 8] ^= 1 << (bit % 8)
            changed[which] = bytes(flipped)
            ours = _libcrypto.ed25519_verify(*changed)
            assert ours is False
            assert ours == _cryptography_verify(*changed)


def test_verifying_does_not_import_cryptography() -> None:
    key = Ed25519PrivateKey.generate()
    args = (key.public_key().public_bytes_raw().hex(), key.sign(b"statement").hex())
    script = ("import sys\nfrom arcade_core.signing import verify\n"
              f"ok = verify(bytes.fromhex({args[0]!r}), bytes.fromhex({args[1]!r}), "
              "b'statement')\n"
              "print(ok, 'cryptography' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.split() == ["True", "False"]
