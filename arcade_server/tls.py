"""The server's certificates: a private CA, the server certificate, and agent certificates.

On first start :func:`load_tls` creates ``<home>/tls/ca.pem`` + ``ca.key`` (the private CA,
valid ten years) and ``server.pem`` + ``server.key`` (the server certificate, valid one year,
carrying the ``san`` setting's names plus loopback and the bind hosts). Keys are written with
mode 0600, atomically (temp file + rename). Later starts reuse them; the server certificate is
re-issued from the same CA when its names change or it is within 30 days of expiry. Agents
trust the CA, not the server certificate, so re-issuing it needs nothing from them.

An operator may bring their own: ``tls_ca_file`` + ``tls_ca_key_file`` (a CA that signs the
server certificate and agent certificates) and/or ``tls_cert_file`` + ``tls_key_file`` (a
server certificate used as is; it must be signed by the CA in use, checked at start).

Keys are ECDSA P-256: generating one takes well under a millisecond (an RSA-2048 key takes
~50 ms, which a fleet of agents enrolling at once, or a test suite, would feel), handshakes are
cheaper, and every TLS stack an agent may use (BoringSSL in gRPC, OpenSSL) supports it.

:func:`spki_hash` is the CA pin agents bootstrap with: ``sha256:`` + the hex SHA-256 of the
CA certificate's DER SubjectPublicKeyInfo (as ``kubeadm join --discovery-token-ca-cert-hash``).
Agent certificates bind the agent id twice: subject CN and the URI SAN
``urn:arcade:agent:<id>`` (:data:`AGENT_URI_PREFIX`); the server reads the URI.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from arcade_core.files import write_private

from .errors import StartupError

__all__ = [
    "AGENT_URI_PREFIX",
    "CertificateAuthority",
    "InvalidCSR",
    "IssuedCertificate",
    "ServerTLS",
    "agent_id_of",
    "load_tls",
    "spki_hash",
]

log = logging.getLogger("arcade.server.tls")

AGENT_URI_PREFIX = "urn:arcade:agent:"
CA_DAYS = 3650
SERVER_DAYS = 365
#: A server certificate closer than this to its end is re-issued at start.
RENEW_BEFORE = dt.timedelta(days=30)
_LOOPBACK_NAMES = ("localhost",)
_LOOPBACK_IPS = ("127.0.0.1", "::1")


class InvalidCSR(ValueError):
    """A certificate signing request the CA will not sign; the message says why."""


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """An agent certificate just signed: its PEM and what the database keeps of it."""

    pem: bytes
    serial: str          #: hex
    fingerprint: str     #: ``sha256:`` + hex of the DER certificate
    not_after: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def spki_hash(cert: x509.Certificate) -> str:
    """``sha256:<hex>`` of the certificate's DER SubjectPublicKeyInfo (the CA pin)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def fingerprint(cert: x509.Certificate) -> str:
    return "sha256:" + cert.fingerprint(hashes.SHA256()).hex()


def agent_id_of(cert: x509.Certificate) -> str | None:
    """The agent id an agent certificate binds (its ``urn:arcade:agent:`` URI), else None."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in sans.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(AGENT_URI_PREFIX):
            return uri[len(AGENT_URI_PREFIX):]
    return None


def _san_entry(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return x509.DNSName(name)


class CertificateAuthority:
    """A CA certificate and, when this server signs with it, its key."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.cert = cert
        self.key = key
        self.pem = cert_pem(cert)
        self.hash = spki_hash(cert)

    @classmethod
    def create(cls, common_name: str = "Arcade private CA") -> CertificateAuthority:
        key = new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    def signed(self, cert: x509.Certificate) -> bool:
        """True when ``cert`` was signed by this CA."""
        try:
            cert.verify_directly_issued_by(self.cert)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True

    def _leaf(self, subject: str, public_key: ec.EllipticCurvePublicKey,
              sans: list[x509.GeneralName], usage: x509.ObjectIdentifier,
              lifetime: dt.timedelta) -> x509.Certificate:
        now = _now()
        # Backdated a little for clocks that differ, by at most 1% of the lifetime: the
        # agent renews at two thirds of (not_after - not_before).
        backdate = min(dt.timedelta(minutes=1), lifetime / 100)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(self.cert.subject).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - backdate)
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=False, crl_sign=False,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def issue_server(self, key: ec.EllipticCurvePrivateKey, names: list[str]) -> x509.Certificate:
        """A server certificate for ``names`` (DNS names and IP addresses)."""
        return self._leaf("arcade-server", key.public_key(), [_san_entry(n) for n in names],
                          ExtendedKeyUsageOID.SERVER_AUTH, dt.timedelta(days=SERVER_DAYS))

    def sign_agent(self, csr_pem: bytes, agent_id: str, lifetime: dt.timedelta
                   ) -> IssuedCertificate:
        """Sign an agent's CSR, binding ``agent_id`` (whatever the CSR's subject says).

        Raises :class:`InvalidCSR` for a CSR that does not parse, whose signature does not
        match its key (the sender does not hold the key), or whose key is not EC/RSA."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError:
            raise InvalidCSR("csr is not a PEM certificate signing request") from None
        if not csr.is_signature_valid:
            raise InvalidCSR("the CSR's signature does not match its public key")
        public_key = csr.public_key()
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            if public_key.curve.key_size < 256:
                raise InvalidCSR("the CSR's EC key is weaker than P-256")
        else:
            from cryptography.hazmat.primitives.asymmetric import rsa

            if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < 2048:
                raise InvalidCSR("the CSR's key must be ECDSA P-256 or stronger, or RSA >= 2048")
        cert = self._leaf(agent_id, public_key,  # type: ignore[arg-type]
                          [x509.UniformResourceIdentifier(AGENT_URI_PREFIX + agent_id)],
                          ExtendedKeyUsageOID.CLIENT_AUTH, lifetime)
        return IssuedCertificate(pem=cert_pem(cert), serial=format(cert.serial_number, "x"),
                                 fingerprint=fingerprint(cert),
                                 not_after=cert.not_valid_after_utc)


@dataclass(frozen=True)
class ServerTLS:
    """The certificates a running server uses (loaded by :func:`load_tls`)."""

    ca: CertificateAuthority
    cert_pem: bytes
    key_pem: bytes
    cert_file: Path
    key_file: Path

    @property
    def ca_hash(self) -> str:
        return self.ca.hash


def _read_cert(path: Path, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise StartupError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise StartupError(f"{what}: {path} is not a PEM certificate") from None


def _read_key(path: Path, what: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise StartupError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError):
        raise StartupError(f"{what}: {path} is not an unencrypted PEM private key") from None
    return key  # type: ignore[return-value]


def _server_names(san: tuple[str, ...], hosts: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    for name in (*_LOOPBACK_NAMES, *_LOOPBACK_IPS, *hosts, *san):
        name = name.strip("[]")
        if name and name not in ("0.0.0.0", "::") and name not in names:
            names.append(name)
    return names


def _names_of(cert: x509.Certificate) -> set[str]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n) for n in sans.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}


def _load_ca(directory: Path, ca_file: Path | None, ca_key_file: Path | None
             ) -> CertificateAuthority:
    if ca_file is not None and ca_key_file is not None:
        ca = CertificateAuthority(_read_cert(ca_file, "tls_ca_file"),
                                  _read_key(ca_key_file, "tls_ca_key_file"))
        if ca.cert.public_key() != ca.key.public_key():
            raise StartupError(f"tls_ca_key_file {ca_key_file} is not the key of {ca_file}")
        return ca
    ca_path, key_path = directory / "ca.pem", directory / "ca.key"
    if ca_path.exists() and key_path.exists():
        return CertificateAuthority(_read_cert(ca_path, "the server's CA"),
                                    _read_key(key_path, "the server's CA key"))
    ca = CertificateAuthority.create()
    write_private(key_path, key_pem(ca.key), dir_mode=0o777)
    write_private(ca_path, ca.pem, mode=0o644, dir_mode=0o777)
    log.info("created a private CA in %s (pin: %s)", ca_path, ca.hash)
    return ca


def load_tls(home: Path, *, san: tuple[str, ...] = (), hosts: tuple[str, ...] = (),
             ca_file: Path | None = None, ca_key_file: Path | None = None,
             cert_file: Path | None = None, key_file: Path | None = None) -> ServerTLS:
    """Load (creating or re-issuing as needed) the certificates under ``<home>/tls``.

    Blocking file and crypto work: call it in a thread from async code."""
    directory = home / "tls"
    directory.mkdir(parents=True, exist_ok=True)
    if (ca_file is None) != (ca_key_file is None):
        raise StartupError("tls_ca_file and tls_ca_key_file go together: the CA signs the "
                           "server certificate and every agent certificate")
    if (cert_file is None) != (key_file is None):
        raise StartupError("tls_cert_file and tls_key_file go together")
    ca = _load_ca(directory, ca_file, ca_key_file)
    if cert_file is not None and key_file is not None:
        cert = _read_cert(cert_file, "tls_cert_file")
        key = _read_key(key_file, "tls_key_file")
        if cert.public_key() != key.public_key():
            raise StartupError(f"tls_key_file {key_file} is not the key of {cert_file}")
        if not ca.signed(cert):
            raise StartupError(
                f"tls_cert_file {cert_file} is not signed by the CA in use "
                f"({ca_file or directory / 'ca.pem'}); agents would not trust it")
        return ServerTLS(ca, cert_pem(cert), key_pem(key), cert_file, key_file)
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    names = _server_names(san, hosts)
    if cert_path.exists() and key_path.exists():
        cert = _read_cert(cert_path, "the server certificate")
        key = _read_key(key_path, "the server key")
        fresh = cert.not_valid_after_utc - _now() > RENEW_BEFORE
        if fresh and ca.signed(cert) and _names_of(cert) == set(names) \
                and cert.public_key() == key.public_key():
            return ServerTLS(ca, cert_pem(cert), key_pem(key), cert_path, key_path)
        log.info("re-issuing the server certificate %s (names, CA or expiry changed)", cert_path)
    key = new_key()
    cert = ca.issue_server(key, names)
    write_private(key_path, key_pem(key), dir_mode=0o777)
    write_private(cert_path, cert_pem(cert), mode=0o644, dir_mode=0o777)
    return ServerTLS(ca, cert_pem(cert), key_pem(key), cert_path, key_path)
