"""Signed publishing over REST, with real ed25519 keys and a real server: signers shown on
every version response, bad signatures refused leaving nothing, co-signing, and the publish
policy (a claimed name accepts new versions signed by its keys only; admins change them)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from arcade_core import signing
from arcade_server.runner import ServerThread
from tests.server.helpers import dependency_wheel, plugin_wheel, unique


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _fields(key: Ed25519PrivateKey, name: str, version: str, *wheels: Path) -> dict[str, str]:
    statement = signing.statement(name, version, {
        w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels})
    return {"public_key": signing.public_key_text(_raw(key)),
            "signature": base64.b64encode(signing.sign(key, statement).signature).decode()}


def _upload(api: httpx.Client, *wheels: Path, fields: dict[str, str] | None = None
            ) -> httpx.Response:
    files = [("wheels", (w.name, w.read_bytes(), "application/octet-stream")) for w in wheels]
    return api.post("/plugins", files=files, data=fields or {})


def _nothing_stored(server: ServerThread, api: httpx.Client, name: str, *wheels: Path) -> None:
    assert api.get(f"/plugins/{name}").status_code == 404
    for wheel in wheels:
        assert not server.state.store.exists(hashlib.sha256(wheel.read_bytes()).hexdigest())
    assert api.get(f"/plugins/{name}/keys").json()["keys"] == []


def test_signed_publish_shows_its_signer_everywhere_and_claims_the_name(
    api: httpx.Client, tmp_path: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    key_id = signing.key_id(_raw(key))
    name, dep = unique(), unique("dep")
    plugin = plugin_wheel(tmp_path, name, "1.0.0", requires=[dep])
    dependency = dependency_wheel(tmp_path, dep)
    response = _upload(api, plugin, dependency,
                       fields=_fields(key, name, "1.0.0", plugin, dependency))
    assert response.status_code == 201, response.text
    assert [s["key_id"] for s in response.json()["signers"]] == [key_id]
    detail = api.get(f"/plugins/{name}/versions/1.0.0").json()
    assert [s["key_id"] for s in detail["signers"]] == [key_id]
    releases = api.get(f"/plugins/{name}").json()["releases"]
    assert [s["key_id"] for s in releases[0]["signers"]] == [key_id]
    claim = api.get(f"/plugins/{name}/keys").json()
    assert [k["key_id"] for k in claim["keys"]] == [key_id]
    assert claim["keys"][0]["public_key"] == signing.public_key_text(_raw(key))


def test_a_signature_that_does_not_cover_the_wheels_is_refused_leaving_nothing(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    name, dep = unique(), unique("dep")
    plugin = plugin_wheel(tmp_path, name, "1.0.0", requires=[dep])
    dependency = dependency_wheel(tmp_path, dep)
    # Signed over the plugin wheel only: the dependency wheel is not covered.
    response = _upload(api, plugin, dependency, fields=_fields(key, name, "1.0.0", plugin))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert "does not verify" in error and dependency.name in error
    _nothing_stored(server, api, name, plugin, dependency)
    # A signature that is not base64, or only half of the pair: 422 saying what to send.
    bad = _upload(api, plugin, dependency, fields={"public_key": "not base64!",
                                                   "signature": "AAAA"})
    assert bad.status_code == 422 and "public_key: not base64" in bad.json()["error"]
    half = _upload(api, plugin, dependency,
                   fields={"public_key": _fields(key, name, "1.0.0", plugin)["public_key"]})
    assert half.status_code == 422 and "both form fields" in half.json()["error"]
    short = _upload(api, plugin, dependency,
                    fields={**_fields(key, name, "1.0.0", plugin, dependency),
                            "public_key": base64.b64encode(b"x" * 31).decode()})
    assert short.status_code == 422 and "31 bytes" in short.json()["error"]
    _nothing_stored(server, api, name, plugin, dependency)


def test_signing_with_an_unneeded_wheel_says_to_leave_it_out(
    api: httpx.Client, tmp_path: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    name = unique()
    plugin = plugin_wheel(tmp_path, name)
    extra = dependency_wheel(tmp_path, unique("extra"))
    response = _upload(api, plugin, extra, fields=_fields(key, name, "1.0.0", plugin, extra))
    assert response.status_code == 422
    assert "leave them out" in response.json()["error"]
    assert extra.name in response.json()["error"]


def test_a_second_signer_is_added_to_a_published_version(
    api: httpx.Client, tmp_path: Path
) -> None:
    author, team = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    name = unique()
    plugin = plugin_wheel(tmp_path, name)
    assert _upload(api, plugin, fields=_fields(author, name, "1.0.0", plugin)).status_code == 201
    url = f"/plugins/{name}/versions/1.0.0/signatures"
    added = api.post(url, json=_fields(team, name, "1.0.0", plugin))
    assert added.status_code == 201, added.text
    assert added.json()["key_id"] == signing.key_id(_raw(team))
    again = api.post(url, json=_fields(team, name, "1.0.0", plugin))  # replaces, not adds
    assert again.status_code == 201
    signers = {s["key_id"] for s in api.get(f"/plugins/{name}/versions/1.0.0").json()["signers"]}
    assert signers == {signing.key_id(_raw(author)), signing.key_id(_raw(team))}
    # Co-signing does not change the claim: only the first signed publish claims.
    keys = api.get(f"/plugins/{name}/keys").json()["keys"]
    assert [k["key_id"] for k in keys] == [signing.key_id(_raw(author))]


def test_adding_a_signature_refuses_bad_input_with_a_message(
    api: httpx.Client, tmp_path: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    name = unique()
    plugin = plugin_wheel(tmp_path, name)
    assert _upload(api, plugin).status_code == 201
    url = f"/plugins/{name}/versions/1.0.0/signatures"
    good = _fields(key, name, "1.0.0", plugin)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**good, "signature": "@@@@"}, 422, "pattern"),
        ({**good, "signature": "QUJD"}, 422, "signature: 3 bytes"),
        ({**good, "public_key": base64.b64encode(b"k" * 33).decode()}, 422, "33 bytes"),
        (_fields(key, name, "2.0.0", plugin), 422, "does not verify"),
        ({"public_key": good["public_key"]}, 422, "signature"),
    ]
    for body, status, text in cases:
        answer = api.post(url, json=body)
        assert answer.status_code == status, (body, answer.text)
        assert text in answer.text, answer.text
    unknown = api.post(f"/plugins/{name}/versions/9.9.9/signatures", json=good)
    assert unknown.status_code == 404 and "9.9.9" in unknown.json()["error"]
    assert api.get(f"/plugins/{name}/versions/1.0.0").json()["signers"] == []


def test_identical_republish_with_a_new_signature_adds_it(
    api: httpx.Client, tmp_path: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    name = unique()
    plugin = plugin_wheel(tmp_path, name)
    assert _upload(api, plugin).status_code == 201
    again = _upload(api, plugin, fields=_fields(key, name, "1.0.0", plugin))
    assert again.status_code == 200, again.text
    assert [s["key_id"] for s in again.json()["signers"]] == [signing.key_id(_raw(key))]


def test_a_claimed_name_refuses_unsigned_and_otherwise_signed_versions(
    server: ServerThread, api: httpx.Client, tmp_path: Path
) -> None:
    owner, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    owner_id, stranger_id = signing.key_id(_raw(owner)), signing.key_id(_raw(stranger))
    name = unique()
    v1 = plugin_wheel(tmp_path / "1", name, "1.0.0")
    assert _upload(api, v1, fields=_fields(owner, name, "1.0.0", v1)).status_code == 201
    v2 = plugin_wheel(tmp_path / "2", name, "2.0.0")
    unsigned = _upload(api, v2)
    assert unsigned.status_code == 403, unsigned.text
    assert owner_id in unsigned.json()["error"] and "signature" in unsigned.json()["error"]
    assert "--sign" in unsigned.text  # the hint's CLI form
    assert "unsigned" in unsigned.json()["error"]
    wrong = _upload(api, v2, fields=_fields(stranger, name, "2.0.0", v2))
    assert wrong.status_code == 403
    assert stranger_id in wrong.json()["error"] and owner_id in wrong.json()["error"]
    assert api.get(f"/plugins/{name}/versions/2.0.0").status_code == 404
    assert not server.state.store.exists(hashlib.sha256(v2.read_bytes()).hexdigest())
    right = _upload(api, v2, fields=_fields(owner, name, "2.0.0", v2))
    assert right.status_code == 201, right.text


def test_an_admin_transfers_a_name_to_another_key(api: httpx.Client, tmp_path: Path) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    name = unique()
    v1 = plugin_wheel(tmp_path / "1", name, "1.0.0")
    assert _upload(api, v1, fields=_fields(old, name, "1.0.0", v1)).status_code == 201
    moved = api.put(f"/plugins/{name}/keys",
                    json={"keys": [signing.public_key_text(_raw(new))]})
    assert moved.status_code == 200, moved.text
    assert [k["key_id"] for k in moved.json()["keys"]] == [signing.key_id(_raw(new))]
    v2 = plugin_wheel(tmp_path / "2", name, "2.0.0")
    assert _upload(api, v2, fields=_fields(old, name, "2.0.0", v2)).status_code == 403
    assert _upload(api, v2, fields=_fields(new, name, "2.0.0", v2)).status_code == 201
    released = api.put(f"/plugins/{name}/keys", json={"keys": []})
    assert released.status_code == 200 and released.json()["keys"] == []
    audited = api.get("/audit", params={"target": f"plugins/{name}/keys"}).json()
    assert [(r["action"], r["actor"], r["outcome"]) for r in audited] == [
        ("PUT /api/v1/plugins/{name}/keys", "admin", "200")] * 2
    v3 = plugin_wheel(tmp_path / "3", name, "3.0.0")
    assert _upload(api, v3).status_code == 201


def test_an_admin_may_claim_a_name_before_it_is_published(
    api: httpx.Client, tmp_path: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    name = unique()
    claimed = api.put(f"/plugins/{name}/keys",
                      json={"keys": [signing.public_key_text(_raw(key))]})
    assert claimed.status_code == 200
    plugin = plugin_wheel(tmp_path, name)
    assert _upload(api, plugin).status_code == 403
    assert _upload(api, plugin, fields=_fields(key, name, "1.0.0", plugin)).status_code == 201


def test_setting_keys_refuses_bad_input_with_a_message(api: httpx.Client) -> None:
    name = unique()
    cases = [
        ({"keys": ["not base64!"]}, "keys[0]: not base64"),
        ({"keys": ["QUJD"]}, "keys[0]: 3 bytes"),
        ({"keys": [base64.b64encode(b"k" * 32).decode()] * 33}, "32"),
        ({}, "keys"),
    ]
    for body, text in cases:
        answer = api.put(f"/plugins/{name}/keys", json=body)
        assert answer.status_code == 422, answer.text
        assert text in answer.text
    bad_name = api.put("/plugins/-bad-/keys", json={"keys": []})
    assert bad_name.status_code == 422 and "not a plugin name" in bad_name.json()["error"]
    assert api.get("/plugins/-bad-/keys").status_code == 422
    assert api.get(f"/plugins/{name}/keys").json() == {"name": name, "keys": []}
