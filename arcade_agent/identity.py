"""The agent's identity: its own key and certificate, enrollment, renewal.

Everything lives in ``<home>/tls/`` with mode 0600, written atomically: ``agent.key`` (ECDSA
P-256, generated here and never sent anywhere), ``agent.pem`` (the certificate the server's
CA issued, binding the agent id) and ``ca.pem`` (the CA the agent trusts for the server).

First start (kubeadm-style bootstrap)::

    arcade agent --server HOST:9090 --id web-1 --enroll-token arcenr_... \\
        --ca-hash sha256:<hex>          # or --ca-file ca.pem

1. The CA certificate: from ``--ca-file``, or fetched *without trusting it* and pinned: the
   agent opens a TLS connection to the gRPC port with verification off (Python's ``ssl``)
   and reads the certificate chain the server presents (the server sends its CA after its
   own certificate); the certificate whose SubjectPublicKeyInfo hashes to ``--ca-hash`` is
   trusted, anything else refused. This needs nothing but the gRPC port.
2. A key pair and a CSR, sent with the token over TLS (the server verified against that CA)
   in ``Enroll``; the answer is the certificate. Later starts find the files and need no
   token.

:class:`Credentials` builds the gRPC channel credentials (mutual TLS). :func:`renew_due` says
when to renew: at two thirds of the certificate's lifetime (the agent does it over its
authenticated channel with ``Renew``; see :class:`~arcade_agent.agent.Agent`).

Memory: this module reads certificates with the standard library
(:mod:`arcade_agent.certificate`) and makes each new key and CSR in a short-lived child
process (:mod:`arcade_agent._csr`), so an agent never imports :mod:`cryptography` for its
identity (~9 MB resident; ``tests/e2e/test_agent_memory.py`` guards it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import grpc

from arcade_core.files import write_private
from arcade_core.rpc.v1 import pb, pb_grpc
from arcade_core.rpc.v1.anonymous import ANONYMOUS_CERT_PEM, ANONYMOUS_KEY_PEM

from ._csr import CsrError, make_csr, request_csr
from .certificate import CertificateInfo, parse_der, parse_pem, spki_hash
from .connection import backoff_delay
from .errors import AgentError

__all__ = [
    "Credentials",
    "CsrError",
    "EnrollmentError",
    "enroll",
    "ensure_credentials",
    "fetch_ca",
    "load_credentials",
    "make_csr",
    "renew",
    "renew_due",
    "spki_hash",
    "store_credentials",
]

log = logging.getLogger(__name__)

#: Renew once this fraction of the certificate's lifetime has passed.
RENEW_AT = 2 / 3
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
#: First wait before retrying an enrollment or a CA fetch (doubling, jittered, up to retry_max).
_RETRY_INITIAL = 0.2


class EnrollmentError(AgentError):
    """The agent has no certificate and could not get one; the message says what to fix."""


@dataclass(frozen=True)
class Credentials:
    """The agent's key, certificate and trusted CA (PEM bytes)."""

    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes

    def channel(self) -> grpc.ChannelCredentials:
        """Mutual TLS: trust the CA, present the agent certificate."""
        return grpc.ssl_channel_credentials(self.ca_pem, self.key_pem, self.cert_pem)

    @property
    def certificate(self) -> CertificateInfo:
        """The agent certificate's id and validity (:class:`ValueError` if unreadable)."""
        return parse_pem(self.cert_pem)


def _paths(home: Path) -> tuple[Path, Path, Path]:
    directory = home / "tls"
    return directory / "agent.key", directory / "agent.pem", directory / "ca.pem"


def load_credentials(home: Path) -> Credentials | None:
    """The stored credentials, or None when the agent has not enrolled yet."""
    key, cert, ca = _paths(home)
    try:
        return Credentials(key.read_bytes(), cert.read_bytes(), ca.read_bytes())
    except FileNotFoundError:
        return None


def store_credentials(home: Path, credentials: Credentials) -> None:
    """Write the three files (0600, atomically; the key first, the certificate last)."""
    key, cert, ca = _paths(home)
    write_private(key, credentials.key_pem)
    write_private(ca, credentials.ca_pem)
    write_private(cert, credentials.cert_pem)


def renew_due(cert_pem: bytes) -> dt.datetime:
    """When a certificate should be renewed: at :data:`RENEW_AT` of its lifetime."""
    cert = parse_pem(cert_pem)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return start + (end - start) * RENEW_AT


def _split(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    return host.strip("[]"), int(port)


def fetch_ca(server: str, ca_hash: str, timeout: float = 10.0) -> bytes:
    """The CA certificate (PEM) of the server at ``server``, pinned by ``ca_hash``.

    Reads the certificates the server presents in a TLS handshake made *without* verifying
    them (the pin is the verification) and returns the one whose public key hashes to
    ``ca_hash``. Raises :class:`EnrollmentError` when none does; :class:`OSError` when the
    server cannot be reached. Blocking."""
    want = ca_hash.strip().lower()
    host, port = _split(server)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with tempfile.TemporaryDirectory(prefix="arcade-anon-") as scratch:
        # The server requires a client certificate: present the anonymous one.
        cert_file, key_file = Path(scratch, "c.pem"), Path(scratch, "k.pem")
        cert_file.write_bytes(ANONYMOUS_CERT_PEM)
        key_file.write_bytes(ANONYMOUS_KEY_PEM)
        context.load_cert_chain(cert_file, key_file)
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=host) as conn:
        getter = getattr(conn, "get_unverified_chain", None)
        if getter is None:  # Python < 3.13: the same method, not yet public
            getter = conn._sslobj.get_unverified_chain  # type: ignore[attr-defined]
        chain = [c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                 for c in getter() or []]
    seen = []
    for der in chain:
        digest = spki_hash(parse_der(der))
        seen.append(digest)
        if hmac.compare_digest(digest, want):
            return ssl.DER_cert_to_PEM_cert(der).encode()
    raise EnrollmentError(
        f"the server at {server} presented no certificate matching --ca-hash {ca_hash} "
        f"(it presented {', '.join(seen) or 'none'}); check the hash the operator gave "
        "(arcade enroll create prints it) and that --server is the right server")


async def enroll(server: str, agent_id: str, token: str, ca_pem: bytes, *,
                 timeout: float = 30.0, retry_max: float = 5.0) -> Credentials:
    """Exchange ``token`` and a new key's CSR for a certificate. Retries while the server
    is unreachable; raises :class:`EnrollmentError` when the server refuses."""
    key_pem, csr_pem = await request_csr(agent_id)
    anonymous = grpc.ssl_channel_credentials(ca_pem, ANONYMOUS_KEY_PEM, ANONYMOUS_CERT_PEM)
    attempt = 0
    while True:
        async with grpc.aio.secure_channel(server, anonymous) as channel:
            stub = pb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]
            try:
                answer = await stub.Enroll(
                    pb.EnrollRequest(token=token, agent_id=agent_id, csr_pem=csr_pem.decode()),
                    timeout=timeout)
                break
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _RETRYABLE:
                    raise EnrollmentError(
                        f"enrollment of {agent_id!r} at {server} refused: {exc.code().name}: "
                        f"{exc.details()}") from None
                delay = backoff_delay(attempt, _RETRY_INITIAL, retry_max)
                log.warning("cannot enroll at %s yet (%s: %s); retrying in %.1fs", server,
                            exc.code().name, exc.details(), delay)
        await asyncio.sleep(delay)
        attempt += 1
    return Credentials(key_pem, answer.certificate_pem.encode(), answer.ca_pem.encode())


async def renew(stub: pb_grpc.AgentServiceStub, agent_id: str, current: Credentials,
                timeout: float = 30.0) -> Credentials:
    """A new certificate (and key) for the agent, asked over its authenticated channel."""
    key_pem, csr_pem = await request_csr(agent_id)
    answer = await stub.Renew(pb.RenewRequest(csr_pem=csr_pem.decode()), timeout=timeout)
    return Credentials(key_pem, answer.certificate_pem.encode(),
                       answer.ca_pem.encode() or current.ca_pem)


async def ensure_credentials(home: Path, server: str, agent_id: str, *,
                             token: str | None, ca_file: Path | None, ca_hash: str | None,
                             retry_max: float = 5.0) -> Credentials:
    """The stored credentials, or new ones from enrollment (first start).

    Raises :class:`EnrollmentError` with what to give when the agent is not enrolled and
    cannot enroll, or when the stored certificate binds another agent id."""
    stored = await asyncio.to_thread(load_credentials, home)
    if stored is not None:
        bound = stored.certificate.common_name
        if bound != agent_id:
            raise EnrollmentError(
                f"the certificate in {home / 'tls'} belongs to agent {bound!r}, not "
                f"{agent_id!r}: run with --id {bound}, or another --home to enroll a new agent")
        return stored
    if not token:
        raise EnrollmentError(
            f"agent {agent_id!r} is not enrolled (no certificate in {home / 'tls'}): give "
            "--enroll-token TOKEN and --ca-file CA.pem or --ca-hash sha256:HEX (an operator "
            "creates them with: arcade enroll create)")
    if ca_file is not None:
        try:
            ca_pem = await asyncio.to_thread(ca_file.read_bytes)
            parse_pem(ca_pem)
        except OSError as exc:
            raise EnrollmentError(f"cannot read --ca-file {ca_file}: {exc.strerror}") from None
        except ValueError:
            raise EnrollmentError(f"--ca-file {ca_file} is not a PEM certificate") from None
    elif ca_hash:
        attempt = 0
        while True:
            try:
                ca_pem = await asyncio.to_thread(fetch_ca, server, ca_hash)
                break
            except (OSError, ssl.SSLError) as exc:
                delay = backoff_delay(attempt, _RETRY_INITIAL, retry_max)
                log.warning("cannot fetch the CA from %s yet (%s); retrying in %.1fs",
                            server, exc, delay)
                await asyncio.sleep(delay)
                attempt += 1
    else:
        raise EnrollmentError("enrolling needs the server's CA: give --ca-file CA.pem or "
                              "--ca-hash sha256:HEX")
    credentials = await enroll(server, agent_id, token, ca_pem, retry_max=retry_max)
    await asyncio.to_thread(store_credentials, home, credentials)
    log.info("agent %s enrolled at %s; certificate in %s", agent_id, server, home / "tls")
    return credentials
