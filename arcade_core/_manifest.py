"""The plugin manifest: static facts about a plugin that can be read without running it.

A plugin wheel may carry ``arcade-plugin.json`` in the directory of its entry module (next to
``arcade_cpu/__init__.py`` for ``cpu = arcade_cpu:Cpu``). The registry reads it at publish
time and the host reads it before loading, so neither has to import plugin code to know a
plugin's description, type, config JSON Schema, default config, default isolation, collect
interval and resources::

    {
      "description": "CPU usage per core and in total",
      "type": "collector",
      "config_schema": {"type": "object",
                        "properties": {"percpu": {"type": "boolean", "default": true}}},
      "default_config": {},
      "isolation": "inline",
      "interval": 10
    }

An exec plugin (docs/protocol.md) names its executable instead of running Python code:
``"exec": "arcade-loadavg"``, a file the wheel installs into the environment's scripts
directory (``bin/``: a wheel's ``.data/scripts/`` or a console script). Its isolation is
``exec``; ``"isolation"``, if given, must say so.

Every key is optional. ``"$schema"`` and keys starting with ``x-`` are allowed and ignored (for
editors and vendor extensions); any other unknown key is refused, so a typo such as
``"intervall"`` is caught when the plugin is published rather than silently ignored.

Config schemas are JSON Schema, Draft 2020-12 unless the schema's own ``$schema`` names
another draft. ``jsonschema`` is imported only when a schema is actually checked, so a
plugin without a schema costs nothing.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._exceptions import InvalidConfig, InvalidWheel
from .resources import InvalidResources, Resources, parse_resources
from .states import Isolation

__all__ = ["MANIFEST_FILENAME", "Manifest"]

MANIFEST_FILENAME = "arcade-plugin.json"

_KEYS = (
    "description",
    "type",
    "config_schema",
    "default_config",
    "isolation",
    "interval",
    "resources",
    "exec",
)
# Validation errors reported at most, so a huge bad config gives a readable message.
_MAX_ERRORS = 10
# How deep nested "default"s and local "$ref"s are followed (a guard against cyclic refs).
_MAX_DEFAULT_DEPTH = 32


def _fail(reason: str) -> InvalidWheel:
    return InvalidWheel(f"invalid plugin manifest ({MANIFEST_FILENAME}): {reason}")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _validator_class(schema: Mapping[str, Any]) -> Any:
    """The jsonschema validator class for ``schema`` (its ``$schema``, else Draft 2020-12)."""
    import jsonschema  # deferred: ~70 ms to import, and most plugins have no schema

    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)


def _json_path(parts: Any) -> str:
    """``config.a[0]["b c"]`` for the path parts of a jsonschema error."""
    out = "config"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``top`` laid over it; nested objects merge key by key. Copies ``top``."""
    for key, value in top.items():
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            base[key] = _deep_merge(current, value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _resolve_local_ref(root: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``{"$ref": "#/$defs/x"}`` so defaults behind it are found too."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#"):
        return schema
    node: Any = root
    for token in ref[1:].split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or token not in node:
            return schema
        node = node[token]
    if not isinstance(node, Mapping):
        return schema
    # Keywords beside "$ref" (allowed since 2019-09) take precedence over the target's.
    return {**node, **{k: v for k, v in schema.items() if k != "$ref"}}


def _schema_defaults(
    root: Mapping[str, Any], schema: Mapping[str, Any], depth: int = 0
) -> dict[str, Any]:
    """The ``"default"`` of every property of an object schema, nested objects included.

    A nested object property without a ``default`` of its own gets one built from its
    properties' defaults; one with an object ``default`` gets its properties' defaults under it.
    """
    if depth > _MAX_DEFAULT_DEPTH:
        return {}
    schema = _resolve_local_ref(root, schema)
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    defaults: dict[str, Any] = {}
    for key, sub in properties.items():
        if not isinstance(sub, Mapping):
            continue
        sub = _resolve_local_ref(root, sub)
        inner = _schema_defaults(root, sub, depth + 1)
        if "default" in sub:
            value = copy.deepcopy(sub["default"])
            if isinstance(value, dict) and inner:
                value = _deep_merge(inner, value)
            defaults[key] = value
        elif inner:
            defaults[key] = inner
    return defaults


@dataclass(frozen=True)
class Manifest:
    """What ``arcade-plugin.json`` declares; a wheel without one gets ``Manifest()``.

    Build it with :meth:`from_json`, which checks everything (a bad manifest is refused at
    publish time, not discovered when an agent loads the plugin). Treat instances as
    read-only: :meth:`to_dict` and :meth:`validate_config` hand out copies.
    """

    description: str = ""
    type: str = "collector"
    config_schema: dict[str, Any] | None = None
    default_config: dict[str, Any] = field(default_factory=dict)
    isolation: Isolation = Isolation.INLINE
    interval: float | None = None
    #: ``memory``/``cpu``/``disk`` quantities, checked (:mod:`arcade_core.resources`).
    resources: dict[str, Any] = field(default_factory=dict)
    #: The executable of an exec plugin (a file name in the environment's ``bin/``), or None.
    exec: str | None = None
    # Compiled validator for config_schema, built on first use and reused per manifest.
    _validator: Any = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_json(cls, text: str | bytes, *, check_schema: bool = True) -> Manifest:
        """Parse and check a manifest; raise :class:`InvalidWheel` saying what to fix.

        Refused: text that is not UTF-8 JSON or not an object, unknown keys, wrong types,
        an isolation other than ``inline``/``process``, an interval that is not a positive
        number, a ``config_schema`` that is not a valid JSON Schema, and a ``default_config``
        whose values do not validate against the schema. Missing *required* properties are
        fine in ``default_config``: the operator supplies those.

        ``check_schema=False`` skips the two JSON Schema checks (and importing jsonschema),
        for a host whose plugins were checked where they were published.
        """
        try:
            data = json.loads(text)
        except UnicodeDecodeError as exc:
            raise _fail(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise _fail(
                f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        if not isinstance(data, dict):
            raise _fail(f"the top level must be a JSON object, not {_type_name(data)}")
        unknown = sorted(
            k for k in data if k not in _KEYS and k != "$schema" and not k.startswith("x-")
        )
        if unknown:
            raise _fail(
                f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                f"known keys are {', '.join(_KEYS)} (prefix vendor keys with 'x-')"
            )
        description = data.get("description", "")
        if not isinstance(description, str):
            raise _fail(f"'description' must be a string, not {_type_name(description)}")
        type_ = data.get("type", "collector")
        if not isinstance(type_, str) or not type_.strip():
            raise _fail(
                "'type' must be a non-empty string such as 'collector', 'job' or 'notifier'"
            )
        isolation = data.get("isolation", Isolation.INLINE)
        if isolation not in tuple(Isolation):
            raise _fail(
                f"'isolation' is {json.dumps(isolation)}; use one of "
                f"{', '.join(repr(str(i)) for i in Isolation)}"
            )
        exec_ = data.get("exec")
        if exec_ is not None:
            if (not isinstance(exec_, str) or not exec_.strip() or "/" in exec_
                    or "\\" in exec_ or exec_ in (".", "..") or "\0" in exec_):
                raise _fail(
                    f"'exec' is {json.dumps(exec_)}; give the file name of an executable the "
                    "wheel installs into the scripts directory (no path), e.g. "
                    "\"arcade-loadavg\""
                )
            if "isolation" in data and isolation != Isolation.EXEC:
                raise _fail(
                    f"'isolation' is {json.dumps(isolation)} but 'exec' names an executable; "
                    "an exec plugin runs as its own process: drop 'isolation' or say \"exec\""
                )
            isolation = Isolation.EXEC
        elif isolation == Isolation.EXEC:
            raise _fail("'isolation' is \"exec\" but no 'exec' names the executable to run")
        interval = data.get("interval")
        if interval is not None:
            if (
                isinstance(interval, bool)
                or not isinstance(interval, (int, float))
                or not math.isfinite(interval)
                or interval <= 0
            ):
                raise _fail(
                    f"'interval' is {json.dumps(interval)}; give a positive number of seconds"
                )
            interval = float(interval)
        resources = data.get("resources", {})
        if not isinstance(resources, dict):
            raise _fail(f"'resources' must be an object, not {_type_name(resources)}")
        try:
            parse_resources(resources)
        except InvalidResources as exc:
            raise _fail(f"'resources': {exc}") from None
        default_config = data.get("default_config", {})
        if not isinstance(default_config, dict):
            raise _fail(f"'default_config' must be an object, not {_type_name(default_config)}")
        schema = data.get("config_schema")
        if schema is not None and not isinstance(schema, dict):
            raise _fail(f"'config_schema' must be a JSON Schema object, not {_type_name(schema)}")
        manifest = cls(
            description=description,
            type=type_,
            config_schema=schema,
            default_config=default_config,
            isolation=Isolation(isolation),
            interval=interval,
            resources=resources,
            exec=exec_,
        )
        if schema is not None and check_schema:
            manifest._check_schema()
        return manifest

    def _check_schema(self) -> None:
        import jsonschema

        assert self.config_schema is not None
        validator_class = _validator_class(self.config_schema)
        try:
            validator_class.check_schema(self.config_schema)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            raise _fail(
                f"'config_schema' is not a valid JSON Schema: {exc.message}"
                + (f" (at config_schema/{where})" if where else "")
            ) from None
        defaults = _deep_merge(
            _schema_defaults(self.config_schema, self.config_schema), self.default_config
        )
        problems = [
            f"{_json_path(err.absolute_path)}: {err.message}"
            for err in self._get_validator().iter_errors(defaults)
            if err.validator not in ("required", "dependentRequired", "dependencies")
        ]
        if problems:
            raise _fail(
                "'default_config' does not match 'config_schema': "
                + "; ".join(sorted(problems)[:_MAX_ERRORS])
            )

    def _get_validator(self) -> Any:
        validator = self._validator
        if validator is None:
            assert self.config_schema is not None
            validator_class = _validator_class(self.config_schema)
            validator = validator_class(
                self.config_schema, format_checker=validator_class.FORMAT_CHECKER
            )
            object.__setattr__(self, "_validator", validator)
        return validator

    def limits(self) -> Resources:
        """The declared ``resources`` parsed (bytes, millicores)."""
        return parse_resources(self.resources)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready data; ``Manifest.from_json(json.dumps(m.to_dict()))``
        gives back an equal manifest. The dicts are copies."""
        return {
            "description": self.description,
            "type": self.type,
            "config_schema": copy.deepcopy(self.config_schema),
            "default_config": copy.deepcopy(self.default_config),
            "isolation": self.isolation,
            "interval": self.interval,
            "resources": copy.deepcopy(self.resources),
            "exec": self.exec,
        }

    def validate_config(
        self, config: Mapping[str, Any] | None, *, check: bool = True
    ) -> dict[str, Any]:
        """Return the effective config for a plugin instance, or raise :class:`InvalidConfig`.

        Layers, later ones winning and nested objects merging key by key: the schema's
        property ``"default"``s (nested objects too), then ``default_config``, then
        ``config``. The result is validated against ``config_schema`` (when there is one);
        the error names each offending JSON path and why, e.g.
        ``config.interval: -1 is less than the minimum of 0``. ``config`` is never mutated.
        ``check=False`` layers the defaults but does not validate: for a config that was
        validated against this schema already (an agent's, by the server).
        """
        if config is not None and not isinstance(config, Mapping):
            raise InvalidConfig(
                f"config must be a JSON object (a mapping of names to values), "
                f"not {_type_name(config)}"
            )
        schema = self.config_schema
        effective: dict[str, Any] = (
            _schema_defaults(schema, schema) if schema is not None else {}
        )
        _deep_merge(effective, self.default_config)
        if config:
            _deep_merge(effective, config)
        if schema is None or not check:
            return effective
        errors = sorted(
            self._get_validator().iter_errors(effective),
            key=lambda e: (list(map(str, e.absolute_path)), e.message),
        )
        if errors:
            problems = [f"{_json_path(err.absolute_path)}: {err.message}" for err in errors]
            more = len(problems) - _MAX_ERRORS
            raise InvalidConfig(
                "; ".join(problems[:_MAX_ERRORS]) + (f"; and {more} more" if more > 0 else "")
            )
        return effective
