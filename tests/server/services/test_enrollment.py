"""Enrollment tokens and agent identities (``services.enrollment``) on SQLite and PostgreSQL,
with real certificates from a real CA."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from sqlalchemy import select

from arcade_agent.identity import make_csr
from arcade_server.db import tables as t
from arcade_server.db.engine import Database
from arcade_server.errors import AlreadyExists, Invalid, NotFound, Unauthorized
from arcade_server.services import enrollment
from arcade_server.tls import CertificateAuthority, agent_id_of


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("test CA")


def _enroll(database: Database, ca: CertificateAuthority, token: str, agent_id: str,
            **kw: float) -> enrollment.Enrolled:
    _key, csr = make_csr(agent_id)
    return database.call(enrollment.enroll, ca, token, agent_id, csr, days=1, **kw)


def _serial(enrolled: enrollment.Enrolled) -> str:
    cert = x509.load_pem_x509_certificate(enrolled.certificate_pem)
    return format(cert.serial_number, "x")


def test_tokens_are_stored_hashed_listed_and_deleted(database: Database) -> None:
    created = database.call(enrollment.create_token, name="rack 4", labels={"dc": "x"},
                            ttl=600, max_uses=2, now=1000.0)
    assert created.token.startswith("arcenr_") and len(created.token) > 40
    with database.transaction(write=False) as conn:
        row = conn.execute(select(t.enrollment_tokens)).one()
    assert row.token_hash == hashlib.sha256(created.token.encode()).hexdigest()
    assert created.token not in str(tuple(row))                   # only the hash is stored
    listed = database.call(enrollment.list_tokens, now=1001.0)
    assert listed == [{**created.info, "usable": True}]
    assert listed[0]["expires_at"] == 1600.0 and listed[0]["max_uses"] == 2
    assert "token" not in listed[0]
    database.call(enrollment.delete_token, created.info["id"])
    assert database.call(enrollment.list_tokens) == []
    with pytest.raises(NotFound, match="no enrollment token"):
        database.call(enrollment.delete_token, created.info["id"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ttl": 0}, "ttl"), ({"ttl": 10 * 365 * 86400}, "a year at most"),
    ({"max_uses": 0}, "at least 1"), ({"labels": {"bad key": "x"}}, "invalid label key"),
])
def test_bad_tokens_are_refused(database: Database, kwargs: dict[str, object],
                                message: str) -> None:
    with pytest.raises(Invalid, match=message):
        database.call(enrollment.create_token, **kwargs)  # type: ignore[arg-type]
    assert database.call(enrollment.list_tokens) == []


def test_enroll_signs_a_certificate_binding_the_id_and_the_tokens_labels(
    database: Database, ca: CertificateAuthority
) -> None:
    token = database.call(enrollment.create_token, labels={"env": "prod"}).token
    enrolled = _enroll(database, ca, token, "web-1")
    cert = x509.load_pem_x509_certificate(enrolled.certificate_pem)
    assert agent_id_of(cert) == "web-1" and ca.signed(cert)
    assert enrolled.ca_pem == ca.pem and enrolled.labels == {"env": "prod"}
    assert 86000 < enrolled.not_after - cert.not_valid_before_utc.timestamp() < 86500
    identity = database.call(enrollment.get_identity, "web-1")
    assert identity is not None
    assert identity.serials == {_serial(enrolled)} and identity.labels == {"env": "prod"}
    enrollment.check_certificate(identity, "web-1", _serial(enrolled))
    assert database.call(enrollment.list_tokens)[0]["uses"] == 1


def test_bad_expired_and_used_up_tokens_are_refused(
    database: Database, ca: CertificateAuthority
) -> None:
    with pytest.raises(Unauthorized, match="not valid"):
        _enroll(database, ca, "arcenr_" + "x" * 43, "a1")
    with pytest.raises(Unauthorized, match="not valid"):
        _enroll(database, ca, "guess", "a1")
    old = database.call(enrollment.create_token, ttl=60, now=1000.0).token
    with pytest.raises(Unauthorized, match="expired"):
        _enroll(database, ca, old, "a1", now=1061.0)
    once = database.call(enrollment.create_token, max_uses=1).token
    _enroll(database, ca, once, "a1")
    with pytest.raises(Unauthorized, match="used up"):
        _enroll(database, ca, once, "a2")
    assert database.call(enrollment.get_identity, "a2") is None      # nothing half-done


def test_a_taken_id_is_already_exists_and_a_bad_csr_is_invalid(
    database: Database, ca: CertificateAuthority
) -> None:
    token = database.call(enrollment.create_token, max_uses=5).token
    _enroll(database, ca, token, "a1")
    with pytest.raises(AlreadyExists, match="already enrolled"):
        _enroll(database, ca, token, "a1")
    with pytest.raises(Invalid, match="not a PEM certificate signing request"):
        database.call(enrollment.enroll, ca, token, "a3", b"nonsense", days=1)
    with pytest.raises(Invalid, match="invalid agent id"):
        _enroll(database, ca, token, "../a")
    # The refused attempts used no uses of the token (each failed transaction rolled back).
    assert database.call(enrollment.list_tokens)[0]["uses"] == 1


def test_revoked_agents_reenroll_only_with_a_new_token(
    database: Database, ca: CertificateAuthority
) -> None:
    first = database.call(enrollment.create_token, max_uses=5).token
    enrolled = _enroll(database, ca, first, "a1")
    revoked = database.call(enrollment.revoke, "a1")
    assert revoked["agent_id"] == "a1" and revoked["revoked_at"] > 0
    with pytest.raises(Unauthorized, match="revoked"):
        enrollment.check_certificate(database.call(enrollment.get_identity, "a1"), "a1",
                                     _serial(enrolled))
    with pytest.raises(Unauthorized, match="only with a new token"):
        _enroll(database, ca, first, "a1")
    second = database.call(enrollment.create_token).token
    again = _enroll(database, ca, second, "a1")
    identity = database.call(enrollment.get_identity, "a1")
    assert identity is not None and not identity.revoked
    enrollment.check_certificate(identity, "a1", _serial(again))
    with pytest.raises(Unauthorized, match="replaced"):   # the pre-revocation certificate
        enrollment.check_certificate(identity, "a1", _serial(enrolled))
    with pytest.raises(NotFound):
        database.call(enrollment.revoke, "never-enrolled")


def test_renewal_keeps_the_previous_certificate_valid_until_the_next(
    database: Database, ca: CertificateAuthority
) -> None:
    token = database.call(enrollment.create_token, labels={"env": "prod"}).token
    first = _enroll(database, ca, token, "a1")
    _key, csr = make_csr("a1")
    second = database.call(enrollment.renew, ca, "a1", _serial(first), csr, days=1)
    assert second.labels == {"env": "prod"} and _serial(second) != _serial(first)
    identity = database.call(enrollment.get_identity, "a1")
    assert identity is not None and identity.serials == {_serial(first), _serial(second)}
    _key, csr = make_csr("a1")
    third = database.call(enrollment.renew, ca, "a1", _serial(second), csr, days=1)
    identity = database.call(enrollment.get_identity, "a1")
    assert identity is not None and identity.serials == {_serial(second), _serial(third)}
    with pytest.raises(Unauthorized, match="replaced"):
        database.call(enrollment.renew, ca, "a1", _serial(first), csr, days=1)
    database.call(enrollment.revoke, "a1")
    with pytest.raises(Unauthorized, match="revoked"):
        database.call(enrollment.renew, ca, "a1", _serial(third), csr, days=1)


def test_identities_of_many_agents_are_read_in_one_call_in_the_order_asked(
    database: Database, ca: CertificateAuthority
) -> None:
    token = database.call(enrollment.create_token, labels={"zone": "a"}).token
    one, two = _enroll(database, ca, token, "many-1"), _enroll(database, ca, token, "many-2")
    database.call(enrollment.revoke, "many-2")
    found = database.call(enrollment.get_identities, ["many-2", "never", "many-1", "many-2"])
    assert [i.agent_id if i else None for i in found] == ["many-2", None, "many-1", "many-2"]
    assert found[0] is not None and found[0].revoked and found[0].serials == {_serial(two)}
    assert found[2] is not None and not found[2].revoked and found[2].serials == {_serial(one)}
    assert found[2].labels == {"zone": "a"}
    assert database.call(enrollment.get_identities, []) == []
