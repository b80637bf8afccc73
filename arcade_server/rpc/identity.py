"""Who is calling: the agent identity of a gRPC call, read from its verified peer certificate.

The gRPC port requires a client certificate that chains to the server's CA or is the
well-known anonymous one (:mod:`arcade_core.rpc.v1.anonymous`, presented only to enroll).
:func:`peer_certificate` reads the certificate gRPC verified from ``context.auth_context()``;
:class:`Identities` tells whether it is a live certificate of an enrolled agent, caching what
the database says for :data:`CACHE_SECONDS` (a revocation made on another replica is effective
here within that time; one made here at once, through :meth:`Identities.forget`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from ..db.batcher import Batcher
from ..db.engine import Database
from ..errors import Unauthorized
from ..services import enrollment
from ..services.enrollment import Identity
from ..tls import CertificateAuthority, agent_id_of

__all__ = ["CACHE_SECONDS", "Identities", "PeerCertificate", "peer_certificate"]

#: How long a looked-up identity is trusted before the database is asked again.
CACHE_SECONDS = 1.0
_PARSED_MAX = 8192


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """An agent certificate presented on a call: the id it binds and its serial."""

    agent_id: str
    serial: str


_parsed: OrderedDict[bytes, PeerCertificate | None] = OrderedDict()


def peer_certificate(context: Any, ca: CertificateAuthority) -> PeerCertificate | None:
    """The agent certificate of the call, or None (no certificate, the anonymous one, or one
    this CA did not issue to an agent). Parsed certificates are remembered (LRU)."""
    values = context.auth_context().get("x509_pem_cert")
    if not values:
        return None
    pem: bytes = values[0]
    if pem in _parsed:
        _parsed.move_to_end(pem)
        return _parsed[pem]
    result: PeerCertificate | None = None
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        cert = None
    if cert is not None and ca.signed(cert):
        agent_id = agent_id_of(cert)
        if agent_id:
            result = PeerCertificate(agent_id, format(cert.serial_number, "x"))
    _parsed[pem] = result
    if len(_parsed) > _PARSED_MAX:
        _parsed.popitem(last=False)
    return result


class Identities:
    """A short-lived cache of :class:`~arcade_server.services.enrollment.Identity` rows."""

    def __init__(self, db: Database, ttl: float = CACHE_SECONDS) -> None:
        self._db = db
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Identity | None]] = {}
        # Misses that arrive together (a fleet-wide rollout: every agent calls DownloadWheel
        # at once, a second after its Connect was checked) are one query, not one each.
        self.reads: Batcher[str, Identity | None] = Batcher(
            lambda ids: db.read(enrollment.get_identities, ids), name="identity reads")

    async def get(self, agent_id: str) -> Identity | None:
        now = time.monotonic()
        hit = self._cache.get(agent_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        identity = await self.reads.submit(agent_id)
        self._cache[agent_id] = (now, identity)
        if len(self._cache) > 100_000:  # ids of agents long gone
            self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self._ttl}
        return identity

    async def check(self, peer: PeerCertificate | None) -> Identity:
        """The live identity of ``peer``; raises :class:`Unauthorized` otherwise."""
        if peer is None:
            raise Unauthorized(
                "this call needs the agent's own certificate (mutual TLS): enroll the agent "
                "first (arcade agent --enroll-token ...)")
        identity = await self.get(peer.agent_id)
        enrollment.check_certificate(identity, peer.agent_id, peer.serial)
        assert identity is not None
        return identity

    def forget(self, agent_id: str) -> None:
        """Drop the cached identity (it was just revoked or renewed here)."""
        self._cache.pop(agent_id, None)
