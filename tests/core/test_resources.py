"""The resources map: quantities parsed strictly, overrides on top, text for status."""

from __future__ import annotations

import pytest

from arcade_core.resources import (
    InvalidResources,
    Resources,
    format_bytes,
    format_cpu,
    parse_bytes,
    parse_cpu,
    parse_resources,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("128Mi", 128 << 20), ("1Gi", 1 << 30), ("1.5Gi", 3 << 29), ("500M", 500_000_000),
    ("2k", 2000), (65536, 65536), ("65536", 65536), (1e6, 1_000_000),
])
def test_byte_quantities(text: object, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("100m", 100), ("0.5", 500), (2, 2000), ("1.25", 1250), ("2500m", 2500),
])
def test_cpu_quantities(text: object, expected: int) -> None:
    assert parse_cpu(text) == expected


@pytest.mark.parametrize(("data", "message"), [
    ({"memory": "12XB"}, "unknown unit 'XB'"),
    ({"memory": 0}, "it must be more than zero"),
    ({"memory": True}, "memory must be a quantity such as '128Mi', not True"),
    ({"cpu": "1Gi"}, "write cores (0.5) or millicores (500m)"),
    ({"cpu": "0.0001"}, "it must be at least 1m"),
    ({"ram": "1Gi"}, "unknown resource 'ram'; the keys are memory, cpu, disk"),
    ({"memory": "lots"}, "write a quantity such as '128Mi'"),
])
def test_bad_resources_say_what_to_write(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidResources) as info:
        parse_resources(data)
    assert message in str(info.value)


def test_text_forms_round_trip() -> None:
    limits = parse_resources({"memory": "128Mi", "cpu": "100m", "disk": "1.5Gi"})
    assert limits == Resources(memory=128 << 20, cpu=100, disk=3 << 29)
    assert limits.to_dict() == {"memory": "128Mi", "cpu": "100m", "disk": "1.5Gi"}
    assert str(limits) == "memory 128Mi, cpu 100m, disk 1.5Gi"
    assert parse_resources(limits.to_dict()) == limits
    assert format_bytes(1000) == "1000" and format_bytes(140 << 20) == "140Mi"
    assert format_cpu(2000) == "2" and format_cpu(250) == "250m"
    assert not Resources() and str(Resources()) == "none"


def test_an_override_wins_per_key_and_none_lifts_a_limit() -> None:
    declared = parse_resources({"memory": "128Mi", "cpu": "100m"})
    assert declared.override({"memory": "256Mi"}) == Resources(memory=256 << 20, cpu=100)
    assert declared.override({"cpu": "none"}) == Resources(memory=128 << 20)
    assert declared.override(None) is declared
    assert parse_resources({"memory": "none"}, override=True) == Resources()
    with pytest.raises(InvalidResources, match="unknown resource 'mem'"):
        declared.override({"mem": "1Gi"})
