"""The plugin manifest (``arcade-plugin.json``): parsing, refusals and config validation."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from arcade_core import InvalidConfig, InvalidWheel, Isolation, Manifest
from arcade_core._manifest import MANIFEST_FILENAME
from arcade_core.resources import Resources

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "interval": {"type": "number", "minimum": 0, "default": 10},
        "percpu": {"type": "boolean", "default": True},
        "thresholds": {
            "type": "object",
            "properties": {
                "high": {"type": "number", "default": 90},
                "low": {"type": "number", "default": 10},
            },
        },
        "paths": {"type": "array", "items": {"type": "string"}},
        "token": {"type": "string"},
    },
    "additionalProperties": False,
}


def manifest(**fields: Any) -> Manifest:
    return Manifest.from_json(json.dumps(fields))


def test_empty_manifest_gives_the_defaults() -> None:
    assert Manifest.from_json("{}") == Manifest()
    default = Manifest()
    assert (default.type, default.isolation, default.interval) == ("collector", "inline", None)
    assert MANIFEST_FILENAME == "arcade-plugin.json"
    assert default.isolation is Isolation.INLINE
    assert Manifest.from_json('{"isolation": "process"}').isolation is Isolation.PROCESS


def test_full_manifest_round_trips_through_to_dict() -> None:
    text = json.dumps(
        {
            "$schema": "https://example.invalid/arcade-plugin.schema.json",
            "description": "CPU usage",
            "type": "collector",
            "config_schema": SCHEMA,
            "default_config": {"interval": 5},
            "isolation": "process",
            "interval": 2,
            "resources": {"memory": "64Mi", "cpu": "100m", "disk": 1000000},
            "x-vendor": {"anything": True},
        }
    ).encode()
    parsed = Manifest.from_json(text)
    assert parsed.description == "CPU usage"
    assert parsed.isolation == "process"
    assert parsed.interval == 2.0 and isinstance(parsed.interval, float)
    assert parsed.resources == {"memory": "64Mi", "cpu": "100m", "disk": 1000000}
    assert parsed.limits() == Resources(memory=64 << 20, cpu=100, disk=1000000)
    data = parsed.to_dict()
    assert set(data) == {
        "description", "type", "config_schema", "default_config", "isolation", "interval",
        "resources", "exec",
    }
    assert Manifest.from_json(json.dumps(data)) == parsed


def test_an_exec_manifest_names_a_file_and_runs_as_exec() -> None:
    manifest = Manifest.from_json('{"exec": "arcade-loadavg", "interval": 5}')
    assert (manifest.exec, manifest.isolation) == ("arcade-loadavg", Isolation.EXEC)
    assert Manifest.from_json(json.dumps(manifest.to_dict())) == manifest
    assert Manifest.from_json('{"exec": "x", "isolation": "exec"}').isolation is Isolation.EXEC
    for text, fix in [
        ('{"exec": "bin/x"}', "no path"),
        ('{"exec": ".."}', "no path"),
        ('{"exec": ""}', "no path"),
        ('{"exec": 3}', "no path"),
        ('{"exec": "x", "isolation": "process"}', "drop 'isolation'"),
        ('{"isolation": "exec"}', "no 'exec' names the executable"),
    ]:
        with pytest.raises(InvalidWheel, match=re.escape(fix)):
            Manifest.from_json(text)


def test_to_dict_hands_out_copies() -> None:
    parsed = manifest(config_schema=SCHEMA, default_config={"interval": 5})
    data = parsed.to_dict()
    data["default_config"]["interval"] = 99
    data["config_schema"]["properties"].clear()
    assert parsed.default_config == {"interval": 5}
    assert "interval" in parsed.config_schema["properties"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not valid JSON: Expecting property name enclosed in double quotes at"),
        (b"\xff\xfe{", "not UTF-8 text"),
        ("[1, 2]", "the top level must be a JSON object, not an array"),
        ('{"intervall": 5}', "unknown key 'intervall'; known keys are description, type"),
        ('{"isolation": "thread"}', "'isolation' is \"thread\"; use one of 'inline', 'process'"),
        ('{"interval": 0}', "'interval' is 0; give a positive number of seconds"),
        ('{"interval": -1.5}', "'interval' is -1.5; give a positive number of seconds"),
        ('{"interval": true}', "'interval' is true; give a positive number of seconds"),
        ('{"interval": "5"}', "'interval' is \"5\"; give a positive number of seconds"),
        ('{"description": 3}', "'description' must be a string, not a number"),
        ('{"type": ""}', "'type' must be a non-empty string"),
        ('{"resources": []}', "'resources' must be an object, not an array"),
        ('{"resources": {"memory_mb": 64}}', "'resources': unknown resource 'memory_mb'; the "
         "keys are memory, cpu, disk"),
        ('{"resources": {"memory": "64MB"}}', "'resources': memory is '64MB': unknown unit 'MB'"),
        ('{"resources": {"cpu": "-1"}}', "'resources': cpu is '-1'; write a quantity"),
        ('{"resources": {"memory": "none"}}', "'resources': memory is 'none'; write a quantity"),
        ('{"default_config": "x"}', "'default_config' must be an object, not a string"),
        ('{"config_schema": true}', "'config_schema' must be a JSON Schema object, not a boolean"),
        (
            '{"config_schema": {"type": "bogus"}}',
            "'config_schema' is not a valid JSON Schema: 'bogus' is not valid under any of the "
            "given schemas (at config_schema/type)",
        ),
        (
            '{"config_schema": {"type": "object", "properties": {"n": {"minimum": "zero"}}}}',
            "'config_schema' is not a valid JSON Schema: 'zero' is not of type 'number'",
        ),
    ],
)
def test_invalid_manifest_is_refused_with_the_reason(text: str | bytes, reason: str) -> None:
    with pytest.raises(InvalidWheel) as excinfo:
        Manifest.from_json(text)
    assert str(excinfo.value).startswith("invalid plugin manifest (arcade-plugin.json): ")
    assert reason in str(excinfo.value)


def test_default_config_that_breaks_the_schema_is_refused() -> None:
    with pytest.raises(InvalidWheel) as excinfo:
        manifest(config_schema=SCHEMA, default_config={"interval": -1, "percpu": "yes"})
    assert str(excinfo.value).endswith(
        "'default_config' does not match 'config_schema': "
        "config.interval: -1 is less than the minimum of 0; "
        "config.percpu: 'yes' is not of type 'boolean'"
    )


def test_schema_default_that_breaks_the_schema_is_refused() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "default": "ten"}}}
    with pytest.raises(InvalidWheel, match=r"config\.n: 'ten' is not of type 'integer'"):
        manifest(config_schema=schema)


def test_schema_checks_can_be_left_to_whoever_published_the_plugin() -> None:
    text = json.dumps({"config_schema": SCHEMA, "default_config": {"interval": -1}})
    parsed = Manifest.from_json(text, check_schema=False)
    assert parsed.default_config == {"interval": -1}
    # Defaults are still layered; nothing is validated.
    assert parsed.validate_config({"percpu": "yes"}, check=False) == {
        "interval": -1, "percpu": "yes", "thresholds": {"high": 90, "low": 10},
    }
    with pytest.raises(InvalidConfig, match="minimum of 0"):
        parsed.validate_config({})


def test_required_property_may_be_left_to_the_operator() -> None:
    schema = {**SCHEMA, "required": ["token"]}
    parsed = manifest(config_schema=schema)
    with pytest.raises(InvalidConfig, match=r"^config: 'token' is a required property$"):
        parsed.validate_config({})
    assert parsed.validate_config({"token": "t"})["token"] == "t"


def test_config_gets_schema_defaults_then_default_config_then_given_values() -> None:
    parsed = manifest(config_schema=SCHEMA, default_config={"interval": 5})
    assert parsed.validate_config(None) == {
        "interval": 5,
        "percpu": True,
        "thresholds": {"high": 90, "low": 10},
    }
    assert parsed.validate_config({"interval": 1, "thresholds": {"high": 80}}) == {
        "interval": 1,
        "percpu": True,
        "thresholds": {"high": 80, "low": 10},
    }


def test_nested_object_default_is_completed_by_its_properties_defaults() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tls": {
                "type": "object",
                "default": {"verify": False},
                "properties": {"verify": {"default": True}, "ca": {"default": "system"}},
            }
        },
    }
    assert manifest(config_schema=schema).validate_config({}) == {
        "tls": {"verify": False, "ca": "system"}
    }


def test_defaults_behind_a_local_ref_are_applied() -> None:
    schema = {
        "type": "object",
        "$defs": {"limits": {"type": "object", "properties": {"max": {"default": 3}}}},
        "properties": {"limits": {"$ref": "#/$defs/limits"}},
    }
    assert manifest(config_schema=schema).validate_config({}) == {"limits": {"max": 3}}


def test_invalid_config_names_the_json_path_and_reason() -> None:
    parsed = manifest(config_schema=SCHEMA)
    with pytest.raises(InvalidConfig) as excinfo:
        parsed.validate_config({"interval": -1})
    assert str(excinfo.value) == "config.interval: -1 is less than the minimum of 0"


def test_every_invalid_value_is_reported_with_nested_and_array_paths() -> None:
    parsed = manifest(config_schema=SCHEMA)
    with pytest.raises(InvalidConfig) as excinfo:
        parsed.validate_config(
            {"thresholds": {"high": "x"}, "paths": ["/ok", 7], "colour": "red"}
        )
    assert str(excinfo.value) == (
        "config: Additional properties are not allowed ('colour' was unexpected); "
        "config.paths[1]: 7 is not of type 'string'; "
        "config.thresholds.high: 'x' is not of type 'number'"
    )


def test_a_long_list_of_errors_is_cut_short() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    parsed = manifest(config_schema=schema)
    with pytest.raises(InvalidConfig) as excinfo:
        parsed.validate_config({f"k{i:02}": "x" for i in range(15)})
    assert str(excinfo.value).count("is not of type 'integer'") == 10
    assert str(excinfo.value).endswith("; and 5 more")


def test_validate_config_never_mutates_its_input_or_the_manifest() -> None:
    parsed = manifest(config_schema=SCHEMA, default_config={"thresholds": {"high": 70}})
    given = {"thresholds": {"low": 1}, "paths": ["/a"]}
    snapshot = copy.deepcopy(given)
    result = parsed.validate_config(given)
    assert given == snapshot
    result["thresholds"]["high"] = 1
    result["paths"].append("/b")
    assert parsed.default_config == {"thresholds": {"high": 70}}
    assert given == snapshot
    assert parsed.validate_config(given)["thresholds"] == {"high": 70, "low": 1}


def test_config_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(InvalidConfig, match=r"config must be a JSON object .*not an array"):
        Manifest().validate_config([1, 2])  # type: ignore[arg-type]


def test_without_schema_config_is_merged_over_defaults_unchecked() -> None:
    parsed = manifest(default_config={"a": 1, "nested": {"x": 1}})
    assert parsed.validate_config({"b": 2, "nested": {"y": 2}}) == {
        "a": 1,
        "b": 2,
        "nested": {"x": 1, "y": 2},
    }


def test_schema_naming_another_draft_is_checked_under_that_draft() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"n": {"type": "integer", "exclusiveMinimum": 0}},
    }
    parsed = manifest(config_schema=schema)
    with pytest.raises(InvalidConfig, match=r"config\.n: 0 is less than or equal to the minimum"):
        parsed.validate_config({"n": 0})
