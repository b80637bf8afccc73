"""Agents run only code signed by keys they trust: real ``arcade server`` and ``arcade agent``
processes, real ed25519 keys, versions signed on the server (:mod:`tests.e2e.signing`)."""

from __future__ import annotations

import hashlib
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from arcade_core import signing
from arcade_core.states import FINAL_JOB_STATUSES
from tests.agent.plugkit import probe_wheel
from tests.server.helpers import dependency_wheel, plugin_wheel
from tests.wheelmaker import make_wheel

from .harness import AGENT_CONFIG, AgentProc, Server, wait_until
from .signing import forge_signature, public_key_file, sign_version, swap_wheel


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _kid(key: Ed25519PrivateKey) -> str:
    return signing.key_id(_raw(key))


def _online(server: Server, agent: str) -> bool:
    info = server.agent(agent)
    return bool(info and info["online"])


def _actual(server: Server, agent: str, name: str) -> dict[str, Any]:
    return (server.plugins(agent).get(name) or {}).get("actual") or {}


def _refused(server: Server, agent: AgentProc, name: str, message: str) -> None:
    """``name`` was refused with ``message`` (at the start of its error), and nothing of it
    was downloaded or installed."""
    response = server.install(agent.agent_id, f"{name}@1.0.0")
    assert response.status_code == 200, response.text
    assert response.json()["state"]["state"] == "failed", response.json()
    actual = _actual(server, agent.agent_id, name)
    assert actual["state"] == "failed"
    assert actual["error"].startswith(message), actual["error"]
    assert agent.env_dirs(name) == []
    cached = {p.name for p in (agent.home / "cache" / "wheels").iterdir()}
    module = name.replace("-", "_")
    assert not any(module in f.name for d in cached
                   for f in (agent.home / "cache" / "wheels" / d).glob("*.whl"))


def _publish_probe(server: Server, directory: Path, name: str, version: str = "1.0.0") -> None:
    server.publish(probe_wheel(directory, version, name=name, metric=f"{name}.major"), key=None)


def test_only_versions_signed_by_a_trusted_key_install(
    shared_server: Server, start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    server = shared_server
    release, team, stranger = (Ed25519PrivateKey.generate() for _ in range(3))
    public_key_file(release, tmp_path / "release.pub")
    config = AGENT_CONFIG + f"""
[[trust.keys]]
file = "release.pub"

[[trust.keys]]
key = "{signing.public_key_text(_raw(team))}"
plugins = ["team-*"]

[jobs]
enabled = true
"""
    agent = start_agent(server, "e2e-trust", config=config)
    wait_until(lambda: _online(server, "e2e-trust"), what="the agent to come online")
    w = tmp_path / "wheels"
    rel, tm, other = _kid(release), _kid(team), _kid(stranger)

    _publish_probe(server, w, "sig-good")
    sign_version(server, "sig-good", "1.0.0", release)
    response = server.install("e2e-trust", "sig-good@1.0.0")
    assert response.json()["state"]["state"] == "running", response.json()
    assert len(agent.env_dirs("sig-good")) == 1

    _publish_probe(server, w, "sig-unsigned")
    _refused(server, agent, "sig-unsigned",
             f"not signed by a trusted key (trusted: {rel}, signed by: none)")

    _publish_probe(server, w, "sig-wrong")   # a trusted key's signature of other bytes
    forge_signature(server, "sig-wrong", "1.0.0", release,
                    signing.statement("sig-wrong", "1.0.0", {"x.whl": "0" * 64}))
    _refused(server, agent, "sig-wrong",
             f"not signed by a trusted key (trusted: {rel}, signed by: {rel}); the signature "
             f"by {rel} does not verify")

    _publish_probe(server, w, "sig-stranger")
    sign_version(server, "sig-stranger", "1.0.0", stranger)
    _refused(server, agent, "sig-stranger",
             f"not signed by a trusted key (trusted: {rel}, signed by: {other})")

    # The team key may sign team-* only.
    _publish_probe(server, w, "team-probe")
    sign_version(server, "team-probe", "1.0.0", team)
    assert server.install("e2e-trust", "team-probe@1.0.0").json()["state"]["state"] == "running"
    _publish_probe(server, w, "sig-teamed")
    sign_version(server, "sig-teamed", "1.0.0", team)
    _refused(server, agent, "sig-teamed",
             f"not signed by a trusted key (trusted: {rel}, signed by: {tm})")

    # The plugin wheel signed, a dependency wheel swapped (for another stored blob).
    server.publish(plugin_wheel(w / "swapped", "sig-swapped", requires=["sig-dep"]),
                   dependency_wheel(w / "swapped", "sig-dep"), key=None)
    sign_version(server, "sig-swapped", "1.0.0", release)
    evil = make_wheel(w / "evil", "sig-dep", "1.0.0", entry_points=[],
                      files={"sig_dep/__init__.py": "import os  # not what was signed\n"})
    server.publish(plugin_wheel(w / "carrier", "sig-carrier", requires=["sig-dep"]), evil,
                   key=None)
    data = evil.read_bytes()
    swap_wheel(server, "sig-swapped", "1.0.0", 1,
               (hashlib.sha256(data).hexdigest(), len(data)))
    _refused(server, agent, "sig-swapped",
             f"not signed by a trusted key (trusted: {rel}, signed by: {rel}); the signature "
             f"by {rel} does not verify")
    assert "sig-dep" not in "".join(p.name for p in (agent.home / "envs").iterdir())

    # What was trusted still runs; the refusals are in the agent's log too.
    assert _actual(server, "e2e-trust", "sig-good")["state"] == "running"
    assert "plugin sig-unsigned@1.0.0: not signed by a trusted key" in agent.log()

    # Job plugins are checked like installs. The probe implements no job hook, so even the
    # signed one fails its setup, but past the trust check (its environment is built).
    for spec, error in (
        ("sig-good@1.0.0", "setup failed: sig-good@1.0.0 does not implement before()"),
        ("sig-unsigned@1.0.0",
         f"setup failed: not signed by a trusted key (trusted: {rel}, signed by: none)"),
    ):
        created = server.http.post("/jobs", json={
            "agent": "e2e-trust", "commands": ["true"],
            "plugins": [{"plugin": spec, "stage": "before"}]})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        job = wait_until(lambda job_id=job_id: (j := server.http.get(f"/jobs/{job_id}").json())
                         ["status"] in FINAL_JOB_STATUSES and j, what="the job to finish")
        assert job["status"] == "failed", job
        assert job["plugins"][0]["error"].startswith(error), job["plugins"]


def test_rotation_keeps_running_plugins_as_untrusted_and_refuses_new_installs(
    shared_server: Server, start_agent: Callable[..., AgentProc], tmp_path: Path,
) -> None:
    server = shared_server
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    public_key_file(old, tmp_path / "old.pub")
    public_key_file(new, tmp_path / "new.pub")
    both = AGENT_CONFIG + '\n[[trust.keys]]\nfile = "old.pub"\n\n[[trust.keys]]\nfile = "new.pub"\n'
    agent = start_agent(server, "e2e-rotate", config=both)
    config_file = agent.home.parent / "e2e-rotate.toml"
    wait_until(lambda: _online(server, "e2e-rotate"), what="the agent to come online")
    w = tmp_path / "wheels"
    for name, key in (("rot-old", old), ("rot-new", new), ("rot-later", old)):
        _publish_probe(server, w, name)
        sign_version(server, name, "1.0.0", key)
    for name in ("rot-old", "rot-new"):
        assert server.install("e2e-rotate", f"{name}@1.0.0").json()["state"]["state"] \
            == "running"

    # Rotate: the old key is no longer trusted.
    config_file.write_text(AGENT_CONFIG + '\n[[trust.keys]]\nfile = "new.pub"\n')
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: _actual(server, "e2e-rotate", "rot-old").get("state") == "untrusted",
               what="rot-old to show untrusted")
    assert _actual(server, "e2e-rotate", "rot-old")["error"] == (
        f"not signed by a trusted key (trusted: {_kid(new)}, signed by: {_kid(old)})")
    assert _actual(server, "e2e-rotate", "rot-new")["state"] == "running"
    # ... and it keeps running: its metrics keep coming.
    since = time.time()
    wait_until(lambda: server.metrics("e2e-rotate", name="rot-old.major", since=since),
               what="metrics of the untrusted plugin")
    # A config change applies to it (it is loaded) and a ?wait returns on its report.
    changed = server.http.put("/agents/e2e-rotate/plugins/rot-old/config",
                              params={"wait": 20}, json={"scale": 2})
    assert changed.status_code == 200, changed.text
    assert changed.json()["state"]["state"] == "untrusted"
    _refused(server, agent, "rot-later",
             f"not signed by a trusted key (trusted: {_kid(new)}, signed by: {_kid(old)})")

    # Replaced by a version the new key signed: trusted again.
    _publish_probe(server, w, "rot-old", "2.0.0")
    sign_version(server, "rot-old", "2.0.0", new)
    response = server.install("e2e-rotate", "rot-old@2.0.0")
    assert response.json()["state"]["state"] == "running", response.json()
    assert [d.split("-")[0] for d in agent.env_dirs("rot-old")] == ["2.0.0"]

    # A bad trust config on SIGHUP is refused, and the trust in force stays.
    config_file.write_text(AGENT_CONFIG + '\n[[trust.keys]]\nfile = "gone.pub"\n')
    agent.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "SIGHUP: the new config was refused" in agent.log(),
               what="the agent to refuse the bad config")
    assert "trust.keys[1]: cannot read the public key file" in agent.log()
    assert agent.alive
    _publish_probe(server, w, "rot-after")
    sign_version(server, "rot-after", "1.0.0", new)
    assert server.install("e2e-rotate", "rot-after@1.0.0").json()["state"]["state"] \
        == "running"
