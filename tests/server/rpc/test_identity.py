"""gRPC abuse, as an attacker who can reach the port would try it: no certificate, the public
anonymous certificate, a certificate from another CA, a revoked one, another agent's id,
another agent's wheel, bad enrollment tokens, a taken id, colliding labels."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from arcade_agent.identity import Credentials, make_csr
from arcade_core.rpc.v1 import pb, pb_grpc
from arcade_server.runner import ServerThread
from arcade_server.tls import CertificateAuthority, key_pem
from tests.server.conftest import start_server
from tests.server.helpers import (
    Endpoint,
    ProtocolAgent,
    anonymous_channel,
    create_enrollment_token,
    endpoint,
    enroll,
    plugin_wheel,
    publish,
    unique,
)
from tests.waiting import until

REGISTER = pb.AgentMessage(register=pb.Register(agent_id="victim"))


async def _code(call: Any) -> tuple[grpc.StatusCode, str]:
    """The status an RPC ends with (stream or unary)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if hasattr(call, "__aiter__"):
            async for _ in call:
                pass
        else:
            await call
    return caught.value.code(), caught.value.details() or ""


async def _connect_status(channel: grpc.aio.Channel) -> tuple[grpc.StatusCode, str]:
    stub = pb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]

    async def one() -> Any:
        yield REGISTER

    return await _code(stub.Connect(one()))


async def test_without_an_agent_certificate_nothing_but_enroll_is_served(
    server: ServerThread,
) -> None:
    ca = server.state.tls.ca.pem
    # No client certificate at all: the TLS handshake itself is refused.
    async with grpc.aio.secure_channel(server.grpc_target,
                                       grpc.ssl_channel_credentials(ca)) as channel:
        code, _ = await _connect_status(channel)
        assert code == grpc.StatusCode.UNAVAILABLE
    # The public anonymous certificate: UNAUTHENTICATED on everything but Enroll.
    async with anonymous_channel(server.grpc_target, ca) as channel:
        code, details = await _connect_status(channel)
        assert code == grpc.StatusCode.UNAUTHENTICATED and "mutual TLS" in details
        stub = pb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]
        code, _ = await _code(stub.DownloadWheel(pb.DownloadRequest(
            agent_id="victim", sha256="a" * 64)))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        code, _ = await _code(stub.Renew(pb.RenewRequest(csr_pem=make_csr("x")[1].decode())))
        assert code == grpc.StatusCode.UNAUTHENTICATED
    # Plain text is not spoken at all.
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        code, _ = await _connect_status(channel)
        assert code == grpc.StatusCode.UNAVAILABLE


async def test_a_refused_caller_is_told_why_even_while_its_register_is_in_flight(
    server: ServerThread,
) -> None:
    # As an agent does it: write Register, then read. Refused before its Register had been
    # read, the client's own gRPC stack ended about one call in ten with INTERNAL ("Failed
    # execute_batch") instead of the server's status, so a revoked agent logged nonsense.
    async with anonymous_channel(server.grpc_target, server.state.tls.ca.pem) as channel:
        stub = pb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]
        for _ in range(20):
            call = stub.Connect()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call.write(REGISTER)
                await call.read()
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value


async def test_a_connect_stream_that_never_registers_is_closed(tmp_path: Path) -> None:
    quick = start_server(tmp_path / "home", register_timeout=0.5)
    try:
        for credentials in (None, "agent"):
            if credentials is None:
                channel = anonymous_channel(quick.grpc_target, quick.state.tls.ca.pem)
            else:
                agent = ProtocolAgent(quick)
                await agent.ensure_channel()
                channel = agent.channel
            async with channel:
                call = pb_grpc.AgentServiceStub(channel).Connect()  # type: ignore[no-untyped-call]
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await call.read()
                assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert "no Register within 0.5s" in (caught.value.details() or "")
    finally:
        quick.stop()


async def test_a_certificate_from_another_ca_is_refused(server: ServerThread) -> None:
    rogue = CertificateAuthority.create("Arcade private CA")   # same name, other key
    key, csr = make_csr("victim")
    issued = rogue.sign_agent(csr, "victim", dt.timedelta(days=1))
    creds = grpc.ssl_channel_credentials(server.state.tls.ca.pem, key, issued.pem)
    async with grpc.aio.secure_channel(server.grpc_target, creds) as channel:
        code, _ = await _connect_status(channel)
    assert code == grpc.StatusCode.UNAVAILABLE    # the handshake fails: no stream at all
    assert not server.state.hub.connected("victim")
    # The rogue CA's own key as a client certificate does no better.
    creds = grpc.ssl_channel_credentials(server.state.tls.ca.pem, key_pem(rogue.key),
                                         rogue.pem)
    async with grpc.aio.secure_channel(server.grpc_target, creds) as channel:
        code, _ = await _connect_status(channel)
    assert code == grpc.StatusCode.UNAVAILABLE


async def test_an_agent_cannot_claim_another_agents_id(server: ServerThread) -> None:
    victim = ProtocolAgent(server)
    thief = ProtocolAgent(server)
    try:
        await victim.connect()
        await thief.ensure_channel()
        thief.agent_id = victim.agent_id          # its own certificate, the victim's id
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await thief.connect()
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "this certificate belongs to" in (caught.value.details() or "")
        victim.heartbeat()                         # the victim's stream is untouched
        assert server.state.hub.connected(victim.agent_id)
    finally:
        await victim.close()
        await thief.close()


async def test_an_agent_cannot_download_another_agents_wheel(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    name = unique()
    body = publish(api, plugin_wheel(tmp_path, name))
    sha256 = body["wheels"][0]["sha256"]
    owner = ProtocolAgent(server)
    other = ProtocolAgent(server)
    try:
        await owner.connect()
        await owner.desired()
        response = await asyncio.to_thread(api.post, f"/agents/{owner.agent_id}/plugins",
                                           json={"plugin": name})
        assert response.status_code == 202
        await owner.desired()
        assert b"".join(c.data for c in await owner.download(sha256))    # the owner may
        await other.connect()
        await other.ensure_channel()
        for claimed in (owner.agent_id, ""):
            call = other.stub.DownloadWheel(pb.DownloadRequest(agent_id=claimed, sha256=sha256))
            code, details = await _code(call)
            assert code == grpc.StatusCode.PERMISSION_DENIED, details
            assert other.agent_id in details
    finally:
        await owner.close()
        await other.close()


async def test_revocation_ends_the_stream_and_refuses_the_certificate(
    server: ServerThread, api: httpx.Client
) -> None:
    agent = ProtocolAgent(server)
    try:
        await agent.connect()
        await agent.desired()
        response = await asyncio.to_thread(api.post, f"/agents/{agent.agent_id}/revoke")
        assert response.status_code == 200, response.text
        assert response.json()["stream_closed"] is True
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await agent.recv()
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "revoked" in (caught.value.details() or "")
    finally:
        await agent.close()
    again = ProtocolAgent(server, agent.agent_id, credentials=agent.credentials)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await again.connect()
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        code, _ = await _code(again.stub.DownloadWheel(pb.DownloadRequest(sha256="a" * 64)))
        assert code == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await again.close()
    missing = await asyncio.to_thread(api.post, "/agents/never-enrolled/revoke")
    assert missing.status_code == 404 and "no enrolled identity" in missing.json()["error"]


async def test_enrollment_refuses_bad_expired_used_up_tokens_and_taken_ids(
    server: ServerThread,
) -> None:
    ca = server.state.tls.ca.pem
    target = server.grpc_target

    async def refused(token: str, agent_id: str) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await enroll(Endpoint(target, ca, token), agent_id)
        return caught.value.code(), caught.value.details() or ""

    assert (await refused("arcenr_guessed", unique("a")))[0] == grpc.StatusCode.UNAUTHENTICATED
    short = await asyncio.to_thread(create_enrollment_token, server, ttl=0.001)
    code, details = await refused(short, unique("a"))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "expired" in details
    once = await asyncio.to_thread(create_enrollment_token, server, uses=1)
    taken = unique("a")
    await enroll(Endpoint(target, ca, once), taken)
    code, details = await refused(once, unique("a"))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "used up" in details
    fresh = await asyncio.to_thread(create_enrollment_token, server)
    code, details = await refused(fresh, taken)
    assert code == grpc.StatusCode.ALREADY_EXISTS and "already enrolled" in details
    async with anonymous_channel(target, ca) as channel:
        stub = pb_grpc.AgentServiceStub(channel)  # type: ignore[no-untyped-call]
        code, details = await _code(stub.Enroll(pb.EnrollRequest(
            token=fresh, agent_id=unique("a"), csr_pem="x" * 20_000)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_labels_bound_at_enrollment_win(server: ServerThread, api: httpx.Client) -> None:
    bound = {"tier": "canary"}
    agent = ProtocolAgent(server, labels=bound)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await agent.connect(labels={"tier": "prod"})
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "label tier='prod' collides" in (caught.value.details() or "")
    finally:
        await agent.close()
    again = ProtocolAgent(server, agent.agent_id, credentials=agent.credentials)
    try:
        await again.connect(labels={"role": "web"})
        info = (await asyncio.to_thread(api.get, f"/agents/{again.agent_id}")).json()
        assert info["labels"] == {"role": "web", "tier": "canary"}
    finally:
        await again.close()


async def test_renew_over_the_authenticated_channel(server: ServerThread) -> None:
    agent = ProtocolAgent(server)
    try:
        await agent.connect()
        key, csr = make_csr(agent.agent_id)
        answer = await agent.stub.Renew(pb.RenewRequest(csr_pem=csr.decode()))
        renewed = Credentials(key, answer.certificate_pem.encode(), answer.ca_pem.encode())
        assert renewed.ca_pem == server.state.tls.ca.pem
        fresh = ProtocolAgent(server, agent.agent_id, credentials=renewed)
        try:
            await fresh.connect()                 # the new certificate works ...
        finally:
            await fresh.close()
        old = ProtocolAgent(server, agent.agent_id, credentials=agent.credentials)
        try:
            await old.connect()                   # ... and the previous one still does
        finally:
            await old.close()
    finally:
        await agent.close()


async def test_an_endpoint_token_binds_labels(server: ServerThread) -> None:
    end = await asyncio.to_thread(endpoint, server, labels={"zone": "b"}, uses=1)
    agent = ProtocolAgent(end)
    try:
        await agent.connect()
        identity = await server.state.identities.get(agent.agent_id)
        assert identity is not None and identity.labels == {"zone": "b"}
    finally:
        await agent.close()


async def test_enrollment_renewal_and_revocation_are_in_the_audit_log(
    server: ServerThread, api: httpx.Client
) -> None:
    agent = ProtocolAgent(server)
    try:
        await agent.connect()
        _key, csr = make_csr(agent.agent_id)
        await agent.stub.Renew(pb.RenewRequest(csr_pem=csr.decode()))
    finally:
        await agent.close()
    refused = unique("refused")
    with pytest.raises(grpc.aio.AioRpcError):
        await enroll(Endpoint(server.grpc_target, server.state.tls.ca.pem, "arcenr_x"), refused)
    revoked = await asyncio.to_thread(api.post, f"/agents/{agent.agent_id}/revoke")
    assert revoked.status_code == 200, revoked.text

    def rows(target: str) -> list[tuple[str, str, str, str]]:
        found = api.get("/audit", params={"target": f"agents/{target}"}).json()
        return [(r["action"], r["actor"], r["actor_kind"], r["outcome"]) for r in found]

    def logged() -> bool:
        actions = [row[0] for row in rows(agent.agent_id)]
        return "agent.renew" in actions and "POST /api/v1/agents/{agent_id}/revoke" in actions

    await until(logged, blocking=True, what="the audit rows")
    mine = rows(agent.agent_id)
    assert ("agent.enroll", agent.agent_id, "agent", "ok") in mine
    assert ("agent.renew", agent.agent_id, "agent", "ok") in mine
    assert ("POST /api/v1/agents/{agent_id}/revoke", "admin", "token", "200") in mine
    await until(lambda: rows(refused), blocking=True, what="the refusal")
    [(action, actor, kind, outcome)] = rows(refused)
    assert (action, actor, kind) == ("agent.enroll", refused, "anonymous")
    assert outcome.startswith("denied") and "arcenr_x" not in outcome


async def test_downloads_on_an_open_stream_trust_its_checked_certificate_until_revoked(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    """DownloadWheel with the certificate of the agent's open stream costs no identity
    lookup; a revocation ends that trust at once (the stream closes)."""
    name = unique()
    published = publish(api, plugin_wheel(tmp_path, name))
    agent = ProtocolAgent(server)
    try:
        await agent.connect()
        await agent.desired()
        installed = await asyncio.to_thread(
            api.post, f"/agents/{agent.agent_id}/plugins", json={"plugin": name})
        assert installed.status_code in (200, 202), installed.text
        await agent.desired()
        # As if the cached identity had expired (it is trusted for a second only).
        server.state.identities.forget(agent.agent_id)
        lookups = server.state.identities.reads.items
        assert b"".join(c.data for c in await agent.download(published["sha256"]))
        assert b"".join(c.data for c in await agent.download(published["sha256"]))
        assert server.state.identities.reads.items == lookups
        revoked = await asyncio.to_thread(api.post, f"/agents/{agent.agent_id}/revoke")
        assert revoked.status_code == 200, revoked.text
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await agent.download(published["sha256"])
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "revoked" in (caught.value.details() or "")
    finally:
        await agent.close()
