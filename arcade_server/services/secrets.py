"""Write-only secrets: config fields a plugin's schema marks secret, and job ``env`` values.

A config field is *secret* when its JSON Schema says ``"writeOnly": true`` or
``"format": "password"``. Secret fields are looked for in the schema's ``properties`` and,
recursively, in the ``properties`` of nested object schemas (not inside ``items``,
``allOf``/``anyOf``/``oneOf`` or ``$ref``: mark the enclosing property instead — a secret
object or array is redacted whole).

The server stores secret values as given and sends them to the agent that runs the plugin or
job (the desired state, the ``Job`` message), but no REST answer ever contains one: every
service that shows a config or a job's env passes it through :func:`redact` /
:func:`redact_env` first, which put :data:`SET` (``"<set>"``) in place of each value. An
update that omits a secret field, or passes :data:`SET` back, keeps the stored value
(:func:`merge_secrets`); a nested secret is kept only while its enclosing object is still
given. Error messages that could quote a value the caller sent go through :func:`scrub`.

A config whose plugin version was deleted (a job record) has no schema any more:
:func:`redact` with ``schema=None`` and ``known=False`` hides every value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import Invalid

__all__ = [
    "SET",
    "has_secrets",
    "merge_secrets",
    "redact",
    "redact_env",
    "scrub",
    "secret_paths",
]

#: What a caller sees in place of a secret value.
SET = "<set>"

_MAX_DEPTH = 32

Path = tuple[str, ...]


def _is_secret(schema: Mapping[str, Any]) -> bool:
    return schema.get("writeOnly") is True or schema.get("format") == "password"


def _walk(schema: Any, prefix: Path, depth: int) -> Iterator[Path]:
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return
    for name, sub in properties.items():
        if not isinstance(name, str) or not isinstance(sub, Mapping):
            continue
        path = (*prefix, name)
        if _is_secret(sub):
            yield path
        else:
            yield from _walk(sub, path, depth + 1)


def secret_paths(schema: Mapping[str, Any] | None) -> tuple[Path, ...]:
    """The paths (property names from the top) of the secret fields of a config schema."""
    return tuple(_walk(schema, (), 0)) if schema else ()


def has_secrets(schema: Mapping[str, Any] | None) -> bool:
    """True when the schema marks at least one field secret."""
    return bool(schema) and next(_walk(schema, (), 0), None) is not None


def _replace(config: dict[str, Any], path: Path) -> None:
    head, rest = path[0], path[1:]
    if head not in config:
        return
    if not rest:
        config[head] = SET
        return
    child = config[head]
    if isinstance(child, Mapping):
        copy = dict(child)
        config[head] = copy
        _replace(copy, rest)


def redact(config: Mapping[str, Any] | None, schema: Mapping[str, Any] | None, *,
           known: bool = True) -> dict[str, Any]:
    """A copy of ``config`` with every secret value that is present replaced by :data:`SET`.

    ``known=False``: the schema is unknown (the plugin version is gone), so every top-level
    value is replaced."""
    if not config:
        return {}
    if not known:
        return dict.fromkeys(config, SET)
    out = dict(config)
    for path in secret_paths(schema):
        _replace(out, path)
    return out


def redact_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """A job's environment as a caller sees it: the names, each value :data:`SET`."""
    return dict.fromkeys(env or {}, SET)


def _restore(new: dict[str, Any], stored: Mapping[str, Any], path: Path, trail: str) -> None:
    head, rest = path[0], path[1:]
    where = f"{trail}.{head}"
    if rest:
        child = new.get(head)
        if isinstance(child, Mapping):
            copy = dict(child)
            new[head] = copy
            below = stored.get(head)
            _restore(copy, below if isinstance(below, Mapping) else {}, rest, where)
        return
    if head in new and new[head] != SET:
        return
    if head in stored and stored[head] != SET:
        new[head] = stored[head]
    elif head in new:
        raise Invalid(f"{where} is {SET!r} but no value is stored for this secret; "
                      "give the value itself")


def merge_secrets(new: Mapping[str, Any] | None, stored: Mapping[str, Any] | None,
                  schema: Mapping[str, Any] | None, *, where: str = "config"
                  ) -> dict[str, Any] | None:
    """``new`` with each secret field it omits (or gives as :data:`SET`) taken from
    ``stored``; ``None`` stays ``None`` when no secret needs keeping. Raises
    :class:`~arcade_server.errors.Invalid` for :data:`SET` where nothing is stored."""
    paths = secret_paths(schema)
    if not paths or (new is None and not stored):
        return None if new is None else dict(new)
    out = dict(new or {})
    for path in paths:
        _restore(out, stored or {}, path, where)
    return out if out or new is not None else None


def _values(config: Any, path: Path) -> Iterator[Any]:
    for name in path:
        if not isinstance(config, Mapping) or name not in config:
            return
        config = config[name]
    yield config


def scrub(text: str, config: Mapping[str, Any] | None, schema: Mapping[str, Any] | None
          ) -> str:
    """``text`` (an error message about ``config``) without any secret string value of
    ``config`` in it, quoted or not."""
    if not config:
        return text
    for path in secret_paths(schema):
        for value in _values(config, path):
            if isinstance(value, str) and value and value != SET:
                text = text.replace(repr(value), repr(SET))
                if len(value) >= 4:  # shorter ones would mangle the message's words
                    text = text.replace(value, SET)
    return text
