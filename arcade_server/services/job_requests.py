"""Job requests and their checks: what ``POST /api/v1/jobs`` asks for, and why it may not.

:func:`check_commands`, :func:`check_env` and :func:`check_timeout` validate the command
part; :func:`resolve_entry` resolves one plugin entry to an enabled version, validates its
config against that version's schema and settles its isolation. Each raises
:class:`~arcade_server.errors.Invalid` with a message that says what to fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from arcade_core import ArcadeError, InvalidConfig
from arcade_core.states import Isolation, Stage

from ..db.tables import AnyRow
from ..errors import Invalid, ServiceError
from ..limits import canonical_config
from . import registry, secrets
from ._isolation import requested_isolation

__all__ = [
    "MAX_COMMANDS",
    "MAX_COMMAND_CHARS",
    "MAX_ENV",
    "MAX_ENV_VALUE",
    "MAX_ORDER",
    "MAX_PLUGINS",
    "JobRequest",
    "PluginEntryRequest",
    "check_commands",
    "check_env",
    "check_timeout",
    "resolve_entry",
]

MAX_COMMANDS = 100
MAX_COMMAND_CHARS = 64 * 1024
MAX_ENV = 256
MAX_ENV_VALUE = 32 * 1024
MAX_PLUGINS = 32
MAX_ORDER = 1_000_000

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STAGES = frozenset(Stage)


@dataclass(frozen=True)
class PluginEntryRequest:
    """One plugin entry of a job request: ``plugin`` is ``name``, ``name@1.0`` or a range;
    ``stage`` and ``isolation`` are words of :class:`~arcade_core.states.Stage` and
    :class:`~arcade_core.states.Isolation` (checked by :func:`resolve_entry`)."""

    plugin: str
    stage: str
    order: int = 0
    config: Mapping[str, Any] | None = None
    isolation: str | None = None


@dataclass(frozen=True)
class JobRequest:
    """What ``POST /api/v1/jobs`` asks for (``timeout`` ``None``: the server's default)."""

    agent: str
    commands: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    plugins: Sequence[PluginEntryRequest] = ()


def check_commands(commands: Any) -> list[str]:
    """The commands, if they are a non-empty list of sane shell commands."""
    if isinstance(commands, str) or not isinstance(commands, Sequence):
        raise Invalid('commands must be a list of shell commands, e.g. ["make test"]')
    if not commands:
        raise Invalid('commands is empty: give at least one shell command, e.g. ["make test"]')
    if len(commands) > MAX_COMMANDS:
        raise Invalid(f"{len(commands)} commands given; at most {MAX_COMMANDS} per job")
    out: list[str] = []
    for i, command in enumerate(commands):
        if not isinstance(command, str) or not command.strip():
            raise Invalid(f"commands[{i}] is empty: each command must be a non-empty string")
        if "\0" in command:
            raise Invalid(f"commands[{i}] contains a NUL character")
        if len(command) > MAX_COMMAND_CHARS:
            raise Invalid(f"commands[{i}] is longer than {MAX_COMMAND_CHARS} characters; "
                          "put long scripts in a file and run that")
        out.append(command)
    return out


def check_env(env: Any) -> dict[str, str]:
    """The environment variables, if names and values are acceptable (``None``: none)."""
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise Invalid('env must be an object of variable names to strings, e.g. {"CI": "1"}')
    if len(env) > MAX_ENV:
        raise Invalid(f"env has {len(env)} variables; at most {MAX_ENV} per job")
    out: dict[str, str] = {}
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise Invalid(f"env: {key!r} is not a variable name (letters, digits and _, "
                          "not starting with a digit)")
        if not isinstance(value, str):
            raise Invalid(f"env: the value of {key} must be a string")
        if "\0" in value or len(value) > MAX_ENV_VALUE:
            raise Invalid(f"env: the value of {key} must be at most {MAX_ENV_VALUE} characters "
                          "without NUL")
        out[key] = value
    return out


def check_timeout(timeout: Any, default: float, maximum: float) -> float:
    """The timeout in seconds (``default`` when ``None``), if within ``(0, maximum]``."""
    if timeout is None:
        return default
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
            or not math.isfinite(timeout) or not 0 < timeout <= maximum:
        raise Invalid(f"timeout must be a number of seconds above 0 and at most {maximum:g}, "
                      f"not {timeout!r}")
    return float(timeout)


def resolve_entry(conn: Connection, i: int, entry: PluginEntryRequest, *,
                  max_config_bytes: int = 64 * 1024
                  ) -> tuple[AnyRow, dict[str, Any], Isolation]:
    """Entry ``i`` of a job: its plugin version, its effective config (finite numbers, at
    most ``max_config_bytes`` as canonical JSON) and its isolation."""
    where = f"plugins[{i}] ({entry.plugin!r})"
    if entry.stage not in _STAGES:
        raise Invalid(f"{where}: stage {entry.stage!r} is not one of {', '.join(Stage)}")
    if isinstance(entry.order, bool) or not isinstance(entry.order, int) \
            or abs(entry.order) > MAX_ORDER:
        raise Invalid(f"{where}: order must be a whole number between -{MAX_ORDER} and "
                      f"{MAX_ORDER}")
    try:
        version = registry.resolve(conn, entry.plugin)
    except ServiceError as exc:  # unknown plugin, bad spec, no match, disabled: fix the spec
        raise Invalid(f"{where}: {exc.message}") from None
    if entry.config is not None and not isinstance(entry.config, Mapping):
        raise Invalid(f"{where}: config must be a JSON object")
    if entry.config is not None:
        canonical_config(entry.config, where, max_config_bytes)
    schema = (version.manifest or {}).get("config_schema")
    # A new job has no stored secrets: this only refuses "<set>" in a secret field.
    given = secrets.merge_secrets(entry.config, None, schema, where=f"plugins[{i}].config")
    try:
        manifest = registry.manifest_of(version)
        config = manifest.validate_config(given)
    except InvalidConfig as exc:
        raise Invalid(
            f"{where}: invalid config for {version.plugin_name}@{version.version}: "
            f"{secrets.scrub(str(exc), entry.config, schema)}",
            {"schema": schema},
        ) from None
    except ArcadeError as exc:
        raise Invalid(f"{where}: cannot validate config for {version.plugin_name}: {exc}") \
            from None
    canonical_config(config, where, max_config_bytes)
    return version, config, requested_isolation(entry.isolation or None, manifest, where)
