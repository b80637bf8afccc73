"""What the agent reads from an X.509 certificate, parsed with the standard library.

A running agent needs four facts from certificates: its own certificate's validity (to
schedule renewal) and subject common name (the agent id it binds), and, while enrolling with a
CA pin, the DER SubjectPublicKeyInfo of the certificates a server presents. Loading
:mod:`cryptography` for that would keep its Rust binding and x509 modules (~9 MB) resident in
every idle agent for its whole life, so this module walks the few DER fields itself. It reads,
it does not verify: the TLS stack (gRPC's) verifies chains and signatures, and the pin check
hashes the exact SubjectPublicKeyInfo bytes.

Only ``cryptography`` makes keys and CSRs (:mod:`arcade_agent._csr`, in a short-lived child).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from dataclasses import dataclass

__all__ = ["CertificateInfo", "parse_der", "parse_pem", "spki_hash"]

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)
_SEQUENCE, _SET, _OID, _UTC_TIME, _GENERALIZED_TIME = 0x30, 0x31, 0x06, 0x17, 0x18
_VERSION_TAG = 0xA0                      # [0] EXPLICIT Version, absent in v1 certificates
_COMMON_NAME = bytes((0x55, 0x04, 0x03))  # OID 2.5.4.3
_STRINGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be"}


@dataclass(frozen=True)
class CertificateInfo:
    """The fields of a certificate the agent uses (validity in UTC, as ``cryptography``
    names them, so callers read the same attributes either way)."""

    common_name: str
    not_valid_before_utc: dt.datetime
    not_valid_after_utc: dt.datetime
    #: The DER SubjectPublicKeyInfo, tag and length included (what a CA pin hashes).
    spki_der: bytes


def _element(data: bytes, at: int) -> tuple[int, int, int]:
    """The tag, content start and content end of the DER element at ``at``."""
    if at + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[at], data[at + 1]
    start = at + 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    else:
        length = first
    end = start + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, start, end


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """The elements inside ``data[start:end]``: (tag, element start, content start, end)."""
    found = []
    while start < end:
        tag, content, stop = _element(data, start)
        found.append((tag, start, content, stop))
        start = stop
    if start != end:
        raise ValueError("DER element overruns its parent")
    return found


def _time(tag: int, raw: bytes) -> dt.datetime:
    text = raw.decode("ascii")
    if not text.endswith("Z"):
        raise ValueError(f"certificate time {text!r} is not in UTC")
    if tag == _UTC_TIME:  # YYMMDDHHMMSSZ, years 1950-2049 (RFC 5280 4.1.2.5.1)
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != _GENERALIZED_TIME:
        raise ValueError("certificate validity is not a time")
    return dt.datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=dt.UTC)


def _common_name(data: bytes, start: int, end: int) -> str:
    for rdn_tag, _, rdn_start, rdn_end in _children(data, start, end):
        if rdn_tag != _SET:
            raise ValueError("bad subject name")
        for _, _, pair_start, pair_end in _children(data, rdn_start, rdn_end):
            (oid_tag, _, oid_start, oid_end), (value_tag, _, value_start, value_end) = \
                _children(data, pair_start, pair_end)[:2]
            if oid_tag == _OID and data[oid_start:oid_end] == _COMMON_NAME:
                encoding = _STRINGS.get(value_tag)
                if encoding is None:
                    raise ValueError("unsupported string type in the common name")
                return data[value_start:value_end].decode(encoding)
    return ""


def parse_der(der: bytes) -> CertificateInfo:
    """Read a DER certificate; :class:`ValueError` if it is not one."""
    try:
        tag, start, end = _element(der, 0)
        if tag != _SEQUENCE:
            raise ValueError("not a certificate")
        tbs_tag, _, tbs_start, tbs_end = _children(der, start, end)[0]
        fields = _children(der, tbs_start, tbs_end)
        if tbs_tag != _SEQUENCE or not fields:
            raise ValueError("not a certificate")
        if fields[0][0] == _VERSION_TAG:
            fields = fields[1:]
        # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
        _, _, validity_start, validity_end = fields[3]
        (before_tag, _, b_start, b_end), (after_tag, _, a_start, a_end) = \
            _children(der, validity_start, validity_end)
        _, _, subject_start, subject_end = fields[4]
        _, spki_start, _, spki_end = fields[5]
        return CertificateInfo(
            common_name=_common_name(der, subject_start, subject_end),
            not_valid_before_utc=_time(before_tag, der[b_start:b_end]),
            not_valid_after_utc=_time(after_tag, der[a_start:a_end]),
            spki_der=der[spki_start:spki_end],
        )
    except (IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a certificate: {exc}") from None


def parse_pem(pem: bytes) -> CertificateInfo:
    """Read the first certificate of a PEM file; :class:`ValueError` if there is none."""
    match = _PEM.search(pem)
    if match is None:
        raise ValueError("no PEM certificate")
    try:
        der = base64.b64decode(match.group(1), validate=False)
    except binascii.Error:
        raise ValueError("bad base64 in the PEM certificate") from None
    return parse_der(der)


def spki_hash(info: CertificateInfo) -> str:
    """``sha256:<hex>`` of the certificate's DER SubjectPublicKeyInfo (as kubeadm pins)."""
    return "sha256:" + hashlib.sha256(info.spki_der).hexdigest()
