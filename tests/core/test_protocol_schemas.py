"""docs/protocol.md and arcade_core.protocol: one JSON Schema per message type, the same text
in the document and in the shipped files, each a valid Draft 2020-12 schema, and the issue's
two example messages (verbatim) valid."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from arcade_core import ProtocolError
from arcade_core.protocol import (
    FROM_PLUGIN,
    MESSAGE_TYPES,
    SCHEMA_DIR,
    TO_PLUGIN,
    check_message,
    schema,
)
from tests.docs import blocks

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

# The two messages of the document that started Arcade, verbatim.
CONFIG_EXAMPLE = '{"type": "config", "data": {"interval": 60}}'
METRIC_EXAMPLE = (
    '{"type": "metric", "data": {"name": "cpu_usage", "value": 45.2, "timestamp": 1234567890}}'
)


def _documented() -> dict[str, str]:
    """The schema blocks of docs/protocol.md by message type (marked ``doc: file``)."""
    found: dict[str, str] = {}
    for block in blocks(DOC):
        if block.kind == "file" and block.path.startswith("protocol/"):
            assert block.info == "json", block.where(DOC)
            kind = block.path.removeprefix("protocol/").removesuffix(".schema.json")
            assert kind not in found, f"{block.where(DOC)}: {kind} documented twice"
            found[kind] = block.text
    return found


def test_every_message_type_has_a_shipped_schema_and_a_documented_one() -> None:
    assert set(TO_PLUGIN).isdisjoint(FROM_PLUGIN)
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json")) == sorted(
        f"{kind}.schema.json" for kind in MESSAGE_TYPES)
    assert sorted(_documented()) == sorted(MESSAGE_TYPES)


def test_the_document_embeds_each_schema_file_verbatim() -> None:
    for kind, text in _documented().items():
        shipped = (SCHEMA_DIR / f"{kind}.schema.json").read_text(encoding="utf-8")
        assert text == shipped, f"docs/protocol.md's {kind} schema differs from the file"
        assert json.loads(text) == schema(kind)


@pytest.mark.parametrize("kind", MESSAGE_TYPES)
def test_each_schema_is_a_valid_draft_2020_12_schema_for_its_type(kind: str) -> None:
    loaded = schema(kind)
    assert loaded["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(loaded)
    assert loaded["properties"]["type"] == {"const": kind}
    assert "type" in loaded["required"]
    assert "additionalProperties" not in loaded  # forward compatibility: extra keys pass


def test_the_issues_two_example_messages_are_in_the_document_and_valid() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert CONFIG_EXAMPLE in text and METRIC_EXAMPLE in text
    assert check_message(json.loads(CONFIG_EXAMPLE), direction="to_plugin") == "config"
    assert check_message(json.loads(METRIC_EXAMPLE), direction="from_plugin") == "metric"


@pytest.mark.parametrize("message", [
    {"type": "hello", "protocol": 1, "hooks": []},
    {"type": "hello", "protocol": 1, "hooks": ["notify", "collect"], "plugin": "x",
     "version": "1.0", "pid": 42, "a-newer-key": True},
    {"type": "metric", "data": [{"name": "a", "value": 1}, {"name": "b", "value": -2.5,
                                 "unit": "s", "labels": {"k": "v"}, "timestamp": 1.5}]},
    {"type": "result", "id": 7, "data": None},
    {"type": "error", "id": 7, "error": "boom"},
    {"type": "error", "error": "cannot start: no /proc"},
    {"type": "log", "level": "warning", "message": "disk almost full"},
    {"type": "heartbeat"},
    {"type": "call", "id": 0, "hook": "notify", "kwargs": {"event": {"kind": "x"}}},
    {"type": "config", "data": {"interval": 0.25, "path": "/var/log"}},
    {"type": "shutdown"},
])
def test_messages_of_every_type_validate(message: dict[str, object]) -> None:
    assert check_message(message) == message["type"]


@pytest.mark.parametrize(("message", "reason"), [
    ({"type": "metric", "data": {"name": "x", "value": True}},
     "True is not of type 'number' at ['data']['value']"),
    ({"type": "metric", "data": {"name": "x", "value": "45.2"}}, "is not of type 'number'"),
    ({"type": "metric", "data": [{"name": "x", "value": 1}, {"value": 2}]},
     "'name' is a required property at ['data'][1]"),
    ({"type": "metric", "data": []}, "should be non-empty"),
    ({"type": "metric", "data": {"name": "x", "value": 1, "labels": {"k": 1}}},
     "1 is not of type 'string' at ['data']['labels']['k']"),
    ({"type": "hello", "protocol": 2, "hooks": []}, "1 was expected at ['protocol']"),
    ({"type": "hello", "protocol": 1, "hooks": ["explode"]}, "'explode' is not one of"),
    ({"type": "config", "data": {}}, "'interval' is a required property at ['data']"),
    ({"type": "config", "data": {"interval": 0}}, "less than or equal to the minimum of 0"),
    ({"type": "log", "level": "loud", "message": "x"}, "'loud' is not one of"),
    ({"type": "result", "id": "7", "data": 1}, "'7' is not of type 'integer' at ['id']"),
    ({"type": "banana"}, "'type' is 'banana', expected one of config, call"),
    ({"data": 1}, "'type' is None"),
])
def test_bad_messages_are_refused_saying_what_is_wrong(
    message: dict[str, object], reason: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        check_message(message)
    assert reason in str(caught.value)


def test_a_direction_refuses_the_other_sides_messages() -> None:
    with pytest.raises(ProtocolError, match="from_plugin: 'type' is 'config'"):
        check_message({"type": "config", "data": {"interval": 1}}, direction="from_plugin")
    with pytest.raises(ProtocolError, match="to_plugin: 'type' is 'heartbeat'"):
        check_message({"type": "heartbeat"}, direction="to_plugin")


def test_schema_hands_out_copies_and_names_the_types_for_an_unknown_one() -> None:
    schema("heartbeat")["title"] = "changed"
    assert schema("heartbeat")["title"] == "heartbeat (plugin → agent)"
    with pytest.raises(KeyError, match="the types are config, call, shutdown, hello"):
        schema("nope")
