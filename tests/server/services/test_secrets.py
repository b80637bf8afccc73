"""The secrets module on its own: which fields are secret, redaction, keeping stored secrets,
scrubbing messages."""

from __future__ import annotations

import pytest

from arcade_server.errors import Invalid
from arcade_server.services.secrets import (
    SET,
    has_secrets,
    merge_secrets,
    redact,
    redact_env,
    scrub,
    secret_paths,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "token": {"type": "string", "writeOnly": True},
        "db": {"type": "object", "properties": {
            "host": {"type": "string"},
            "password": {"type": "string", "format": "password"},
            "tls": {"type": "object", "properties": {"key": {"writeOnly": True}}},
        }},
        "keys": {"type": "array", "writeOnly": True},
        "label": {"type": "string"},
    },
}


def test_secret_fields_are_found_at_any_depth_of_properties() -> None:
    assert secret_paths(SCHEMA) == (("token",), ("db", "password"), ("db", "tls", "key"),
                                    ("keys",))
    assert has_secrets(SCHEMA) and not has_secrets({"type": "object"}) and not has_secrets(None)
    assert secret_paths({"properties": {"a": {"writeOnly": False}, "b": 1}}) == ()


def test_redact_replaces_present_secrets_and_leaves_the_input_alone() -> None:
    config = {"token": "t", "db": {"host": "h", "password": "p", "tls": {}},
              "keys": ["a"], "label": "x"}
    assert redact(config, SCHEMA) == {"token": SET, "db": {"host": "h", "password": SET,
                                      "tls": {}}, "keys": SET, "label": "x"}
    assert config["db"] == {"host": "h", "password": "p", "tls": {}}
    assert redact({"label": "x"}, SCHEMA) == {"label": "x"}
    assert redact({"a": 1, "b": "c"}, None, known=False) == {"a": SET, "b": SET}
    assert redact(None, SCHEMA) == {}
    assert redact_env({"A": "1", "B": ""}) == {"A": SET, "B": SET}


def test_merge_keeps_omitted_or_echoed_secrets_and_refuses_set_without_a_value() -> None:
    stored = {"token": "old", "db": {"host": "h", "password": "pw"}, "label": "x"}
    assert merge_secrets({"label": "y"}, stored, SCHEMA) == {"label": "y", "token": "old"}
    assert merge_secrets({"token": SET, "db": {"host": "h2"}}, stored, SCHEMA) == \
        {"token": "old", "db": {"host": "h2", "password": "pw"}}
    assert merge_secrets({"token": "new"}, stored, SCHEMA) == {"token": "new"}
    assert merge_secrets(None, stored, SCHEMA) == {"token": "old"}
    assert merge_secrets(None, None, SCHEMA) is None
    assert merge_secrets({"label": "y"}, stored, None) == {"label": "y"}
    with pytest.raises(Invalid, match=r"config.db.password is '<set>' but no value is stored"):
        merge_secrets({"db": {"password": SET}}, {}, SCHEMA)


def test_scrub_removes_secret_values_from_a_message() -> None:
    config = {"token": "hunter22", "label": "x", "db": {"password": "ab"}}
    message = "config.token: 'hunter22' is too short; config.db.password: 'ab' is bad"
    assert scrub(message, config, SCHEMA) == \
        "config.token: '<set>' is too short; config.db.password: '<set>' is bad"
    assert scrub("plain", None, SCHEMA) == "plain"
