"""The agent's key and CSR, made in a short-lived child process: a P-256 key, a CSR for the
agent id signed by that key; a failing child is a clear CsrError, not a traceback."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from arcade_agent._csr import CsrError, request_csr


async def test_the_child_makes_a_p256_key_and_a_csr_for_the_agent_id() -> None:
    key_pem, csr_pem = await request_csr("web-7")
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    csr = x509.load_pem_x509_csr(csr_pem)
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "web-7"
    assert csr.public_key() == key.public_key()
    assert (await request_csr("web-7"))[0] != key_pem           # a new key each time


async def test_a_failing_child_says_why() -> None:
    with pytest.raises(CsrError, match=r"CSR failed \(exit 1\): ValueError: .*length"):
        await request_csr("")                    # a common name must have 1 to 64 characters
