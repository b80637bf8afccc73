"""The agent's standard-library certificate reader against certificates that ``cryptography``
makes and reads: the same validity, common name and SubjectPublicKeyInfo; garbage refused."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from arcade_agent.certificate import parse_der, parse_pem, spki_hash

UTC = dt.UTC


def _certificate(name: x509.Name, start: dt.datetime, end: dt.datetime, *,
                 key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
                 version_1: bool = False) -> x509.Certificate:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end))
    if not version_1:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                        critical=True)
    cert = builder.sign(key, hashes.SHA256())
    if version_1:  # cryptography only makes v3: drop the [0] version field by hand
        return _as_version_1(cert, key)
    return cert


def _as_version_1(cert: x509.Certificate, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
                  ) -> x509.Certificate:
    der = cert.tbs_certificate_bytes
    version = bytes.fromhex("a003020102")
    assert version in der
    tbs_body = der[der.index(version) + len(version):]
    tbs = b"\x30" + _length(len(tbs_body)) + tbs_body
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    algorithm = bytes.fromhex("300a06082a8648ce3d040302")
    bits = b"\x03" + _length(len(signature) + 1) + b"\x00" + signature
    body = tbs + algorithm + bits
    return x509.load_der_x509_certificate(b"\x30" + _length(len(body)) + body)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize(("start", "end"), [
    (dt.datetime(2026, 12, 3, 16, 0, 5, tzinfo=UTC), dt.datetime(2027, 3, 3, tzinfo=UTC)),
    # UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280), and before 2000
    (dt.datetime(1999, 1, 2, 3, 4, 5, tzinfo=UTC), dt.datetime(2049, 12, 31, 23, 59, 59,
                                                               tzinfo=UTC)),
    (dt.datetime(2040, 1, 1, tzinfo=UTC), dt.datetime(2051, 6, 7, 8, 9, 10, tzinfo=UTC)),
])
def test_validity_name_and_public_key_match_cryptography(start: dt.datetime,
                                                         end: dt.datetime) -> None:
    cert = _certificate(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Arcade"),
                                   x509.NameAttribute(NameOID.COMMON_NAME, "web-1")]),
                        start, end)
    info = parse_pem(_pem(cert))
    assert info.common_name == "web-1"
    assert info.not_valid_before_utc == cert.not_valid_before_utc == start
    assert info.not_valid_after_utc == cert.not_valid_after_utc == end
    assert info.spki_der == _spki(cert)
    assert spki_hash(info) == "sha256:" + hashlib.sha256(_spki(cert)).hexdigest()
    assert parse_der(cert.public_bytes(serialization.Encoding.DER)) == info


def test_other_keys_string_types_and_version_1_certificates() -> None:
    start, end = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 2, 1, tzinfo=UTC)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    printable = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "db-2",
                                              x509.name._ASN1Type.PrintableString)])
    cert = _certificate(printable, start, end, key=rsa_key)
    info = parse_pem(b"junk before\n" + _pem(cert) + _pem(_certificate(
        x509.Name([]), start, end)))                        # the first certificate counts
    assert (info.common_name, info.spki_der) == ("db-2", _spki(cert))
    unicode = _certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nœud-ü")]),
                           start, end)
    assert parse_pem(_pem(unicode)).common_name == "nœud-ü"
    old = _certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "v1")]), start,
                       end, version_1=True)
    assert old.version == x509.Version.v1
    assert parse_pem(_pem(old)).common_name == "v1"
    assert parse_pem(_pem(_certificate(x509.Name([]), start, end))).common_name == ""
    # what the agent's CA fetch converts with the standard library reads the same
    der = cert.public_bytes(serialization.Encoding.DER)
    assert ssl.DER_cert_to_PEM_cert(der).encode() == _pem(cert)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_cert = (x509.CertificateBuilder().subject_name(printable).issuer_name(printable)
               .public_key(ed_key.public_key()).serial_number(1).not_valid_before(start)
               .not_valid_after(end).sign(ed_key, None))
    assert parse_pem(_pem(ed_cert)).spki_der == _spki(ed_cert)


@pytest.mark.parametrize("pem", [
    b"",
    b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    b"-----BEGIN CERTIFICATE-----\n" + base64.b64encode(b"\x30\x03\x02\x01\x01")
    + b"\n-----END CERTIFICATE-----\n",
    b"-----BEGIN CERTIFICATE-----\n" + base64.b64encode(b"\x30\x84\xff\xff\xff\xff")
    + b"\n-----END CERTIFICATE-----\n",
    b"-----BEGIN CERTIFICATE-----\n" + base64.b64encode(b"\x04\x02hi")
    + b"\n-----END CERTIFICATE-----\n",
])
def test_what_is_not_a_certificate_is_a_value_error(pem: bytes) -> None:
    with pytest.raises(ValueError):
        parse_pem(pem)


def test_every_truncation_of_a_certificate_is_a_value_error() -> None:
    start, end = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 2, 1, tzinfo=UTC)
    der = _certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cut")]), start,
                       end).public_bytes(serialization.Encoding.DER)
    for size in range(len(der)):
        with pytest.raises(ValueError):
            parse_der(der[:size])
