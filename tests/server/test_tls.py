"""The server's certificates (real ones, from ``arcade_server.tls``) and how it serves them:
a CA created once with 0600 keys, SANs, re-issue without re-enrolling, operator-provided
certificates, HTTPS beyond loopback, plain HTTP refused there, the open probe routes."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import ssl
import stat
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from arcade_server.errors import SettingsError, StartupError
from arcade_server.settings import Settings
from arcade_server.tls import CertificateAuthority, cert_pem, key_pem, load_tls, new_key
from tests.server.conftest import start_server
from tests.server.helpers import ProtocolAgent


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _names(pem: bytes) -> set[str]:
    cert = x509.load_pem_x509_certificate(pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n) for n in sans.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}


def test_the_ca_is_created_once_with_private_keys_and_reused(tmp_path: Path) -> None:
    first = load_tls(tmp_path)
    directory = tmp_path / "tls"
    assert _mode(directory / "ca.key") == 0o600 and _mode(directory / "server.key") == 0o600
    assert not list(directory.glob(".*.tmp"))            # written atomically
    assert first.ca_hash.startswith("sha256:") and len(first.ca_hash) == 71
    again = load_tls(tmp_path)
    assert again.ca.pem == first.ca.pem and again.cert_pem == first.cert_pem
    assert again.ca_hash == first.ca_hash


def test_sans_hold_loopback_the_bind_hosts_and_the_operators_names(tmp_path: Path) -> None:
    tls = load_tls(tmp_path, san=("arcade.example", "10.1.2.3"), hosts=("192.0.2.7", "0.0.0.0"))
    assert _names(tls.cert_pem) == {"localhost", "127.0.0.1", "::1", "192.0.2.7",
                                    "arcade.example", "10.1.2.3"}


def test_changed_names_reissue_the_server_certificate_from_the_same_ca(tmp_path: Path) -> None:
    before = load_tls(tmp_path, san=("a.example",))
    after = load_tls(tmp_path, san=("b.example",))
    assert after.ca.pem == before.ca.pem                   # agents keep trusting it
    assert after.cert_pem != before.cert_pem and "b.example" in _names(after.cert_pem)
    assert after.ca.signed(x509.load_pem_x509_certificate(after.cert_pem))


def test_operator_provided_ca_and_certificate(tmp_path: Path) -> None:
    ca = CertificateAuthority.create("Operator CA")
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    (tmp_path / "ca.key").write_bytes(key_pem(ca.key))
    tls = load_tls(tmp_path / "home", ca_file=tmp_path / "ca.pem",
                   ca_key_file=tmp_path / "ca.key", san=("ops.example",))
    assert tls.ca_hash == ca.hash and "ops.example" in _names(tls.cert_pem)
    # Their own server certificate, signed by their CA: used as is.
    key = new_key()
    cert = ca.issue_server(key, ["svc.example", "127.0.0.1"])
    (tmp_path / "server.pem").write_bytes(cert_pem(cert))
    (tmp_path / "server.key").write_bytes(key_pem(key))
    own = load_tls(tmp_path / "home", ca_file=tmp_path / "ca.pem",
                   ca_key_file=tmp_path / "ca.key", cert_file=tmp_path / "server.pem",
                   key_file=tmp_path / "server.key")
    assert own.cert_pem == cert_pem(cert) and own.cert_file == tmp_path / "server.pem"
    # A certificate another CA signed would not be trusted by agents: refused at start.
    other = CertificateAuthority.create("Someone else")
    stray = other.issue_server(key, ["svc.example"])
    (tmp_path / "stray.pem").write_bytes(cert_pem(stray))
    with pytest.raises(StartupError, match="not signed by the CA in use"):
        load_tls(tmp_path / "home", ca_file=tmp_path / "ca.pem",
                 ca_key_file=tmp_path / "ca.key", cert_file=tmp_path / "stray.pem",
                 key_file=tmp_path / "server.key")
    with pytest.raises(SettingsError, match="go together"):
        Settings(home=tmp_path, tls_ca_file=tmp_path / "ca.pem")


def test_binding_rest_beyond_loopback_without_tls_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="beyond loopback and http_tls is off"):
        Settings(home=tmp_path, http_host="0.0.0.0", http_tls="off")
    with pytest.raises(SettingsError, match="http_tls"):
        Settings(home=tmp_path, http_tls="maybe")
    assert Settings(home=tmp_path, http_host="0.0.0.0").http_scheme == "https"
    assert Settings(home=tmp_path, http_host="::1").http_scheme == "http"
    assert Settings(home=tmp_path, http_tls="on").http_scheme == "https"


def test_rest_beyond_loopback_serves_https_with_the_server_certificate(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", http_host="0.0.0.0")
    try:
        assert server.http_url.startswith("https://127.0.0.1:")
        trust = ssl.create_default_context(cadata=server.state.tls.ca.pem.decode())
        with httpx.Client(base_url=server.http_url, verify=trust, timeout=30) as client:
            assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
            assert client.get("/api/v1/tls/ca.pem").content == server.state.tls.ca.pem
        with pytest.raises(httpx.TransportError):   # no plain HTTP on that port
            httpx.get(server.http_url.replace("https", "http") + "/healthz", timeout=30)
        with pytest.raises(httpx.ConnectError):     # and a client must trust the CA
            httpx.get(server.http_url + "/healthz", timeout=30)
    finally:
        server.stop()


def test_probes_and_the_ca_on_loopback(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home")
    try:
        with httpx.Client(base_url=server.http_url, timeout=30) as client:
            assert server.http_url.startswith("http://")
            assert client.get("/healthz").status_code == 200
            ready = client.get("/readyz")
            assert ready.json() == {"status": "ok", "checks": {"database": "ok",
                                                               "blob_store": "ok"}}
            pem = client.get("/api/v1/tls/ca.pem")
            assert pem.headers["content-type"] == "application/x-pem-file"
            assert x509.load_pem_x509_certificate(pem.content).subject.rfc4514_string() \
                == "CN=Arcade private CA"
            shutil.rmtree(server.settings.blob_dir)
            broken = client.get("/readyz")
            assert broken.status_code == 503
            assert "blob_store" in broken.json()["error"]
            assert broken.json()["detail"]["checks"]["database"] == "ok"
    finally:
        server.stop()


async def test_a_reissued_server_certificate_keeps_agents_connecting(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = await asyncio.to_thread(start_server, home)
    agent = ProtocolAgent(server)
    try:
        await agent.connect()
        old_cert = server.state.tls.cert_pem
        credentials = agent.credentials
    finally:
        await agent.close()
        await asyncio.to_thread(server.stop)
    # New names: the server certificate is re-issued at start; the agent trusts the CA.
    server = await asyncio.to_thread(start_server, home, san=("new.example",))
    again = ProtocolAgent(server, agent.agent_id, credentials=credentials)
    try:
        assert server.state.tls.cert_pem != old_cert
        assert "new.example" in _names(server.state.tls.cert_pem)
        welcome = await again.connect()
        assert welcome.agent_id == agent.agent_id
    finally:
        await again.close()
        await asyncio.to_thread(server.stop)


def test_ip_sans_are_ip_addresses(tmp_path: Path) -> None:
    tls = load_tls(tmp_path, san=("[fd00::1]",))
    cert = x509.load_pem_x509_certificate(tls.cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("fd00::1") in sans.get_values_for_type(x509.IPAddress)
