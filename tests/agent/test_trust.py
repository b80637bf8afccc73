"""The agent's trust: ``[[trust.keys]]`` parsed from its config, and the check of a version's
signatures (real ed25519 keys; the statements of :mod:`arcade_core.signing`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from arcade_agent.errors import AgentConfigError, UntrustedPlugin
from arcade_agent.settings import AgentSettings
from arcade_agent.trust import Trust, TrustedKey, parse_trust
from arcade_core import signing

WHEELS = {"probe-1.0.0-py3-none-any.whl": "a" * 64, "dep-2.0-py3-none-any.whl": "b" * 64}


def _key() -> tuple[Ed25519PrivateKey, bytes]:
    private = Ed25519PrivateKey.generate()
    return private, private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _sign(private: Ed25519PrivateKey, name: str = "probe", version: str = "1.0.0",
          wheels: dict[str, str] = WHEELS) -> signing.Signature:
    return signing.sign(private, signing.statement(name, version, wheels))


def _message(trusted: str, signed: str) -> str:
    return f"not signed by a trusted key (trusted: {trusted}, signed by: {signed})"


def test_a_signature_by_a_trusted_key_passes_and_says_which() -> None:
    private, public = _key()
    trust = Trust((TrustedKey(public),))
    assert trust.check("probe", "1.0.0", WHEELS, [_sign(private)]) == signing.key_id(public)


def test_without_trusted_keys_nothing_is_checked() -> None:
    assert not Trust().enabled
    assert Trust().check("probe", "1.0.0", WHEELS, []) is None


def test_unsigned_wrongly_signed_and_untrusted_signers_are_refused_with_the_message() -> None:
    private, public = _key()
    other, other_public = _key()
    trust = Trust((TrustedKey(public),))
    kid, other_id = signing.key_id(public), signing.key_id(other_public)
    with pytest.raises(UntrustedPlugin) as unsigned:
        trust.check("probe", "1.0.0", WHEELS, [])
    assert str(unsigned.value) == _message(kid, "none")
    # A trusted key's signature of other bytes (another version's statement).
    wrong = _sign(private, version="0.9.0")
    with pytest.raises(UntrustedPlugin) as wrongly:
        trust.check("probe", "1.0.0", WHEELS, [wrong])
    assert str(wrongly.value).startswith(_message(kid, kid) + "; the signature by " + kid
                                         + " does not verify")
    with pytest.raises(UntrustedPlugin) as untrusted:
        trust.check("probe", "1.0.0", WHEELS, [_sign(other)])
    assert str(untrusted.value) == _message(kid, other_id)


def test_a_swapped_dependency_wheel_breaks_the_signature() -> None:
    private, public = _key()
    trust = Trust((TrustedKey(public),))
    signature = _sign(private)
    swapped = {**WHEELS, "dep-2.0-py3-none-any.whl": "c" * 64}
    with pytest.raises(UntrustedPlugin, match="does not verify for these wheels"):
        trust.check("probe", "1.0.0", swapped, [signature])
    # ... and so does a wheel added to (or left out of) the set.
    with pytest.raises(UntrustedPlugin):
        trust.check("probe", "1.0.0", {**WHEELS, "x-1-py3-none-any.whl": "d" * 64}, [signature])


def test_patterns_limit_which_plugins_a_key_may_sign() -> None:
    release, release_public = _key()
    _, team_public = _key()
    trust = Trust((TrustedKey(release_public, ("arcade-*",)), TrustedKey(team_public)))
    assert trust.check("arcade-cpu", "1.0.0", WHEELS, [_sign(release, "arcade-cpu")])
    assert trust.check("Arcade_CPU", "1.0.0", WHEELS, [_sign(release, "Arcade_CPU")])
    with pytest.raises(UntrustedPlugin) as refused:
        trust.check("probe", "1.0.0", WHEELS, [_sign(release)])
    assert str(refused.value) == _message(signing.key_id(team_public),
                                          signing.key_id(release_public))
    only_release = Trust((TrustedKey(release_public, ("arcade-*",)),))
    with pytest.raises(UntrustedPlugin, match=r"trusted: none, .*no trusted key's plugins "
                                              r"patterns match 'probe'"):
        only_release.check("probe", "1.0.0", WHEELS, [_sign(release)])


def test_several_signatures_one_trusted_is_enough() -> None:
    author, _ = _key()
    release, release_public = _key()
    trust = Trust((TrustedKey(release_public),))
    assert trust.check("probe", "1.0.0", WHEELS, [_sign(author), _sign(release)]) \
        == signing.key_id(release_public)


# ---------------------------------------------------------------------- config


def test_the_config_file_lists_keys_by_file_or_value_with_patterns(tmp_path: Path) -> None:
    _, first = _key()
    _, second = _key()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "release.pub").write_text(signing.public_key_text(first) + "\n")
    config = tmp_path / "agent.toml"
    config.write_text(f"""collect_interval = 2

[[trust.keys]]
file = "keys/release.pub"
plugins = ["arcade-*"]

[[trust.keys]]
key = "{signing.public_key_text(second)}"
""")
    settings = AgentSettings.load(config, env={})
    assert settings.collect_interval == 2
    assert settings.trust.key_ids == (signing.key_id(first), signing.key_id(second))
    assert settings.trust.keys[0].plugins == ("arcade-*",)
    assert settings.trust.keys[1].plugins == ("*",)
    # The same inside an [agent] table, with [trust] beside it; and from the environment.
    config.write_text(f"""[agent]
collect_interval = 2

[[trust.keys]]
key = "{signing.public_key_text(second)}"
""")
    assert AgentSettings.load(config, env={}).trust.key_ids == (signing.key_id(second),)
    env = {"ARCADE_AGENT_TRUST": json.dumps({"keys": [{"key": signing.public_key_text(first)}]})}
    assert AgentSettings.load(env=env).trust.key_ids == (signing.key_id(first),)
    assert not AgentSettings.load(env={}).trust.enabled


@pytest.mark.parametrize(("entry", "problem"), [
    ('file = "missing.pub"', "trust.keys[1]: cannot read the public key file"),
    ('key = "not base64!"', "trust.keys[1] (key): not base64"),
    ('key = "AAAA"', "trust.keys[1] (key): 3 bytes; an ed25519 public key has 32"),
    ('key = "{k}"\nfile = "x.pub"', "trust.keys[1]: give exactly one of file"),
    ('plugins = ["*"]', "trust.keys[1]: give exactly one of file"),
    ('key = "{k}"\nplugin = ["x"]', "trust.keys[1]: unknown setting 'plugin'"),
    ('key = "{k}"\nplugins = []', "trust.keys[1]: plugins must be a non-empty list"),
    ('key = "{k}"\nplugins = "arcade-*"', "trust.keys[1]: plugins must be a non-empty list"),
])
def test_a_bad_entry_is_refused_naming_it(tmp_path: Path, entry: str, problem: str) -> None:
    _, public = _key()
    config = tmp_path / "agent.toml"
    text = signing.public_key_text(public)
    config.write_text(f'[[trust.keys]]\nkey = "{text}"\n\n[[trust.keys]]\n'
                      + entry.replace("{k}", text) + "\n")
    with pytest.raises(AgentConfigError) as refused:
        AgentSettings.load(config, env={})
    assert str(refused.value).startswith(f"config file {config}: "
                                         + problem.replace("[1]", "[2]"))


def test_a_bad_trust_table_is_refused() -> None:
    with pytest.raises(AgentConfigError, match=r"unknown setting 'trust.key'"):
        parse_trust({"key": "x"}, "here")
    with pytest.raises(AgentConfigError, match=r"here: trust.keys must be a list"):
        parse_trust({"keys": {"key": "x"}}, "here")
    with pytest.raises(AgentConfigError, match=r"here: trust is not valid JSON"):
        parse_trust("{keys", "here")


def test_the_agent_refuses_to_start_with_a_bad_trust_config(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[[trust.keys]]\nfile = "/nonexistent/release.pub"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "arcade_agent", "--config", str(config), "--home",
         str(tmp_path / "home")], capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: config file {config}: trust.keys[1]: cannot read the public key file "
        "/nonexistent/release.pub: No such file or directory"]
