"""The config, isolation, interval and resource limits an assignment change gives each agent,
checked before it is written.

An install names a version and, optionally, a config, an isolation, an interval, resource
limits and ``reset_config``.
What each matched agent gets (:func:`settings_for`):

* config given: that config (secret fields it omits keep the agent's stored values);
* ``reset_config``: the new version's defaults (nothing kept, secrets included);
* neither: what the operator set before, on whatever version the agent runs now: its stored
  config minus the values still equal to that version's defaults (the new version's defaults
  apply to those), secrets included; an agent without the plugin gets the defaults;
* isolation: the given one, else the agent's current one, else the manifest's (the rules of
  exec plugins: :mod:`._isolation`);
* interval: the given one, else (without ``reset_config``) the agent's current one, else none
  (the manifest's, then the agent's default apply: :mod:`._overrides`);
* resource limits: the given ones (``{}``: none), else the agent's current ones: an upgrade
  keeps them, ``reset_config`` too (they are the operator's limits, not the plugin's config).

So ``arcade install name@2.0`` on an agent running ``name@1.0`` with a config,
``isolation=process``, an interval and limits keeps them all. Every resulting config is
validated against the NEW version's schema, once per distinct config: a kept config that
no longer fits is a 422 whose message says to pass a config or reset it
(:class:`~arcade_server.errors.Hint`\\ s for the CLI's ``--config`` and ``--reset-config``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from arcade_core import ArcadeError, InvalidConfig
from arcade_core.states import Isolation

from ..db import tables as t
from ..db.tables import AnyRow
from ..errors import Hint, Invalid
from ..limits import ConfigLimits, canonical_config
from . import registry, secrets
from ._isolation import kept_isolation, requested_isolation

__all__ = [
    "DEFAULT_LIMITS",
    "AgentSettings",
    "current_assignments",
    "schema_of",
    "settings_for",
    "validated",
]

DEFAULT_LIMITS = ConfigLimits()
#: The fix for a kept config the new version refuses, as the message names it and as flags.
_NEW_CONFIG = Hint('"config"', "--config JSON")
_RESET = Hint('"reset_config": true', "--reset-config")


def schema_of(version: AnyRow) -> dict[str, Any] | None:
    """The version's config JSON Schema, or ``None``."""
    schema = (version.manifest or {}).get("config_schema")
    return schema if isinstance(schema, dict) else None


def validated(version: AnyRow, config: Mapping[str, Any] | None,
              limits: ConfigLimits = DEFAULT_LIMITS, *, kept_from: str | None = None
              ) -> dict[str, Any]:
    """The effective config (defaults applied), checked against the schema and the limits
    (finite numbers only, at most ``max_config_bytes``: :mod:`arcade_server.limits`).
    ``kept_from`` (``"agent web-1 (cpu@1.0.0)"``): the config was kept from there, and the
    error says how to replace or reset it."""
    what = f"{version.plugin_name}@{version.version}"
    if config is not None:
        canonical_config(config, what, limits.max_config_bytes)
    try:
        effective = registry.manifest_of(version).validate_config(config)
    except InvalidConfig as exc:
        schema = schema_of(version)
        problem = secrets.scrub(str(exc), config, schema)
        if kept_from is not None:
            raise Invalid(
                f"the config kept from {kept_from} does not fit {what}: {problem}; pass "
                f"{_NEW_CONFIG} or {_RESET} (the new version's defaults)",
                {"schema": schema}, hints=[_NEW_CONFIG, _RESET],
            ) from None
        show = Hint(f"GET /api/v1/plugins/{version.plugin_name}/versions/{version.version}",
                    f"arcade plugins {version.plugin_name} --json")
        raise Invalid(f"invalid config for {what}: {problem} (the schema is shown by {show})",
                      {"schema": schema}, hints=[show]) from None
    except ArcadeError as exc:  # a stored manifest that no longer parses: still the input's fault
        raise Invalid(f"cannot validate config for {version.plugin_name}: {exc}") from None
    canonical_config(effective, what, limits.max_config_bytes)
    return effective


def current_assignments(conn: Connection, plugin: str, agents: Any) -> dict[str, AnyRow]:
    """The current assignment of ``plugin`` (config, isolation, interval, resources, version
    and its manifest) of each agent ``agents`` selects (a SQL condition on ``agents``)."""
    a, v = t.assignments.c, t.plugin_versions.c
    return {
        row.agent_id: row
        for row in conn.execute(
            select(a.agent_id, a.config, a.isolation, a.interval, a.resources, v.plugin_name,
                   v.version, v.manifest)
            .join(t.plugin_versions, v.id == a.version_id)
            .where(a.plugin_name == plugin, a.agent_id.in_(select(t.agents.c.id).where(agents)))
        )
    }


def _defaults(current: AnyRow) -> dict[str, Any]:
    """The default config of the version ``current`` is assigned ({} if it cannot tell)."""
    try:
        return registry.manifest_of(current).validate_config(None, check=False)
    except ArcadeError:
        return {}


def _set_by_operator(current: AnyRow, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The stored config without the top-level values equal to its version's defaults."""
    return {key: value for key, value in (current.config or {}).items()
            if key not in defaults or defaults[key] != value}


@dataclass(frozen=True)
class AgentSettings:
    """Each agent's validated config, isolation, interval (``None``: the default) and resource
    limits (``None``: the manifest's), and the ones to show in the answer (the first agent's:
    secrets redacted)."""

    configs: dict[str, dict[str, Any]]
    isolations: dict[str, Isolation]
    intervals: dict[str, float | None]
    resources: dict[str, dict[str, str] | None]
    shown_config: dict[str, Any]
    shown_isolation: Isolation
    shown_interval: float | None = None
    shown_resources: dict[str, str] | None = None


def settings_for(
    version: AnyRow,
    agent_ids: Sequence[str],
    current: Mapping[str, AnyRow],
    *,
    config: Mapping[str, Any] | None,
    isolation: str | None,
    reset_config: bool,
    interval: float | None = None,
    resources: Mapping[str, str] | None = None,
    limits: ConfigLimits = DEFAULT_LIMITS,
) -> AgentSettings:
    """What each agent gets (the rules in the module docstring); raises :class:`Invalid`
    before anything is written when a config does not fit ``version`` (``interval`` and
    ``resources`` come checked: :mod:`._overrides`)."""
    if reset_config and config is not None:
        raise Invalid('give either "config" or "reset_config", not both',
                      hints=[Hint('"config"', "--config"),
                             Hint('"reset_config"', "--reset-config")])
    manifest = registry.manifest_of(version)
    requested = requested_isolation(isolation, manifest,
                                    f"{version.plugin_name}@{version.version}") \
        if isolation else None
    given_resources = None if resources is None else (dict(resources) or None)
    schema = schema_of(version)
    has_secrets = secrets.has_secrets(schema)
    done: dict[str, dict[str, Any]] = {}
    defaults: dict[str, dict[str, Any]] = {}  # by the version an agent runs now
    configs: dict[str, dict[str, Any]] = {}
    isolations: dict[str, Isolation] = {}
    intervals: dict[str, float | None] = {}
    limits_of: dict[str, dict[str, str] | None] = {}
    for agent_id in agent_ids:
        now = current.get(agent_id)
        kept_from = None
        if config is not None:
            base: Mapping[str, Any] | None = config
            if has_secrets:
                base = secrets.merge_secrets(config, now.config if now else None, schema)
        elif reset_config or now is None:
            base = None
        else:
            if now.version not in defaults:
                defaults[now.version] = _defaults(now)
            base = _set_by_operator(now, defaults[now.version])
            kept_from = f"agent {agent_id} ({now.plugin_name}@{now.version})"
        key = json.dumps(base, sort_keys=True)
        if key not in done:
            done[key] = validated(version, base, limits, kept_from=kept_from)
        configs[agent_id] = done[key]
        isolations[agent_id] = requested or kept_isolation(
            now.isolation if now is not None else None, manifest)
        intervals[agent_id] = interval if interval is not None else (
            None if reset_config or now is None else now.interval)
        limits_of[agent_id] = given_resources if resources is not None else (
            None if now is None else (now.resources or None))
    if not agent_ids:
        base = None if config is None else secrets.merge_secrets(config, None, schema)
        shown = validated(version, base, limits)
        return AgentSettings({}, {}, {}, {}, secrets.redact(shown, schema),
                             requested or manifest.isolation, interval, given_resources)
    first = min(agent_ids)
    return AgentSettings(configs, isolations, intervals, limits_of,
                         secrets.redact(configs[first], schema), isolations[first],
                         intervals[first], limits_of[first])
