"""The plugin registry: list, get, delete, enable and disable published plugins, and
resolve ``name@spec`` to one enabled version.

Publishing (inspect, store, record uploaded wheels) is in
:mod:`~arcade_server.services.publishing`; a version's JSON is built in
:mod:`~arcade_server.services._versions`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from packaging.version import InvalidVersion, Version
from sqlalchemy import Connection, delete, func, or_, select, update

from arcade_core import InvalidSpec, Manifest, normalize_name, parse_spec

from ..db.tables import (
    AnyRow,
    assignments,
    blobs,
    plugin_signatures,
    plugin_states,
    plugin_versions,
    plugins,
)
from ..db.tables import plugin_version_wheels as wheels_table
from ..errors import Conflict, Hint, Invalid, NotFound
from ..limits import MAX_VERSION_LENGTH
from ._versions import sort_versions, version_dict, wheels_of
from .signatures import signers_of

__all__ = [
    "delete_version",
    "get_plugin",
    "get_version",
    "list_plugins",
    "manifest_of",
    "resolve",
    "set_enabled",
]


# ---------------------------------------------------------------- queries


def _plugin_dict(plugin: AnyRow, versions: Sequence[AnyRow]) -> dict[str, Any]:
    ordered = sort_versions(versions)
    latest = ordered[0] if ordered else None
    return {
        "name": plugin.name,
        "enabled": plugin.enabled,
        "latest": latest.version if latest else None,
        "summary": latest.summary if latest else "",
        "description": latest.description if latest else "",
        "type": latest.type if latest else "",
        "versions": [v.version for v in ordered],
        "created_at": plugin.created_at,
        "updated_at": plugin.updated_at,
    }


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _versions_by_plugin(conn: Connection, names: Sequence[str]) -> dict[str, list[AnyRow]]:
    """The ``plugin_versions`` rows of the named plugins (one query), by plugin name."""
    by_plugin: dict[str, list[AnyRow]] = {name: [] for name in names}
    if names:
        for row in conn.execute(
            select(plugin_versions).where(plugin_versions.c.plugin_name.in_(names))
        ):
            by_plugin[row.plugin_name].append(row)
    return by_plugin


def list_plugins(
    conn: Connection,
    *,
    type: str | None = None,
    enabled: bool | None = None,
    text: str | None = None,
) -> list[dict[str, Any]]:
    """Plugins with their versions (newest first); filters combine with AND."""
    pv = plugin_versions.c
    query = select(plugins).order_by(plugins.c.name)
    if enabled is not None:
        query = query.where(plugins.c.enabled == enabled)
    if type:
        query = query.where(plugins.c.name.in_(select(pv.plugin_name).where(pv.type == type)))
    if text:
        pattern = _like(text)
        query = query.where(
            or_(
                func.lower(plugins.c.name).like(pattern, escape="\\"),
                plugins.c.name.in_(select(pv.plugin_name).where(
                    or_(
                        func.lower(pv.summary).like(pattern, escape="\\"),
                        func.lower(pv.description).like(pattern, escape="\\"),
                    )
                )),
            )
        )
    rows = list(conn.execute(query))
    versions = _versions_by_plugin(conn, [p.name for p in rows])
    return [_plugin_dict(p, versions[p.name]) for p in rows]


def _normalized(name: str) -> str:
    try:
        return normalize_name(name)
    except InvalidSpec as exc:
        raise NotFound(f"no plugin named {name!r}: {exc}") from None


def _find_plugin(conn: Connection, name: str) -> tuple[AnyRow, list[AnyRow]] | None:
    """The row of the plugin with this (normalized) name and its versions' rows, or None."""
    plugin = conn.execute(select(plugins).where(plugins.c.name == name)).first()
    if plugin is None:
        return None
    return plugin, _versions_by_plugin(conn, [name])[name]


def _get_plugin_row(conn: Connection, name: str) -> tuple[AnyRow, list[AnyRow]]:
    """The plugin's row and its versions' rows (404 if it is not published)."""
    normalized = _normalized(name)
    found = _find_plugin(conn, normalized)
    if found is None:
        hint = Hint("GET /api/v1/plugins", "arcade plugins")
        raise NotFound(f"no plugin named {normalized!r} is published; list them with {hint}",
                       hints=[hint])
    return found


def get_plugin(conn: Connection, name: str) -> dict[str, Any]:
    plugin, versions = _get_plugin_row(conn, name)
    data = _plugin_dict(plugin, versions)
    signers = signers_of(conn, [v.id for v in versions])
    data["releases"] = [
        {"version": v.version, "sha256": v.sha256, "size": v.size, "created_at": v.created_at,
         "type": v.type, "summary": v.summary, "signers": signers[v.id]}
        for v in sort_versions(versions)
    ]
    return data


def _get_version_row(conn: Connection, name: str, version: str) -> AnyRow:
    plugin, versions = _get_plugin_row(conn, name)
    if len(version) > MAX_VERSION_LENGTH:
        raise NotFound(f"{version[:40]!r}... is not a version of {plugin.name}: versions are at "
                       f"most {MAX_VERSION_LENGTH} characters")
    try:
        wanted = Version(version)
    except (InvalidVersion, ValueError):
        raise NotFound(f"{version!r} is not a PEP 440 version of {plugin.name}") from None
    for row in versions:
        if Version(row.version) == wanted:
            return row
    published = ", ".join(v.version for v in sort_versions(versions)) or "none"
    raise NotFound(
        f"{plugin.name} has no version {version}; published versions: {published}"
    )


def get_version(conn: Connection, name: str, version: str) -> dict[str, Any]:
    """A version with its manifest, wheels and the agents that should or do run it."""
    row = _get_version_row(conn, name, version)
    desired = conn.scalars(
        select(assignments.c.agent_id).where(assignments.c.version_id == row.id)
        .order_by(assignments.c.agent_id)
    ).all()
    ps = plugin_states.c
    actual: dict[str, str] = {
        s.agent_id: s.state
        for s in conn.execute(
            select(ps.agent_id, ps.state).where(
                ps.plugin_name == row.plugin_name, ps.version == row.version
            )
        )
    }
    agents: list[dict[str, Any]] = []
    for agent_id in desired:
        agents.append({"agent": agent_id, "desired": True, "state": actual.pop(agent_id, None)})
    for agent_id, state in sorted(actual.items()):
        agents.append({"agent": agent_id, "desired": False, "state": state})
    return version_dict(row, wheels_of(conn, row.id), agents=agents,
                        signers=signers_of(conn, [row.id])[row.id])


def delete_version(conn: Connection, name: str, version: str) -> list[str]:
    """Delete a version that no agent is assigned; return the sha256s of blobs no longer used
    (the caller deletes those files after the commit)."""
    row = _get_version_row(conn, name, version)
    assigned = conn.scalars(
        select(assignments.c.agent_id).where(assignments.c.version_id == row.id).limit(20)
    ).all()
    if assigned:
        remove = Hint(f"DELETE /api/v1/agents/{{agent_id}}/plugins/{row.plugin_name}",
                      f"arcade uninstall {row.plugin_name} --agent ID")
        raise Conflict(
            f"{row.plugin_name}@{row.version} is assigned to {len(assigned)} agent(s) "
            f"({', '.join(assigned)}): uninstall it from them first with {remove}",
            {"agents": list(assigned)}, hints=[remove],
        )
    shas = {w.sha256 for w in wheels_of(conn, row.id)}
    # The wheel rows go with the version (ON DELETE CASCADE, and explicitly: SQLite enforces
    # foreign keys only with the pragma the engine sets).
    conn.execute(delete(wheels_table).where(wheels_table.c.version_id == row.id))
    conn.execute(delete(plugin_signatures).where(plugin_signatures.c.version_id == row.id))
    conn.execute(delete(plugin_versions).where(plugin_versions.c.id == row.id))
    still_used = set(
        conn.scalars(select(wheels_table.c.sha256).where(wheels_table.c.sha256.in_(shas)))
    )
    orphans = sorted(shas - still_used)
    if orphans:
        conn.execute(delete(blobs).where(blobs.c.sha256.in_(orphans)))
    remaining = conn.scalar(
        select(func.count()).select_from(plugin_versions).where(
            plugin_versions.c.plugin_name == row.plugin_name
        )
    )
    if not remaining:
        conn.execute(delete(plugins).where(plugins.c.name == row.plugin_name))
    return orphans


def set_enabled(conn: Connection, name: str, enabled: bool) -> dict[str, Any]:
    plugin, versions = _get_plugin_row(conn, name)
    updated = conn.execute(
        update(plugins).where(plugins.c.name == plugin.name)
        .values(enabled=enabled, updated_at=time.time()).returning(*plugins.c)
    ).one()
    return _plugin_dict(updated, versions)


# ---------------------------------------------------------------- resolving specs


@lru_cache(maxsize=1024)
def _manifest_from_json(text: str) -> Manifest:
    return Manifest.from_json(text)


def manifest_of(row: AnyRow) -> Manifest:
    """The version's manifest (cached: published versions never change)."""
    if not row.manifest:
        return Manifest()
    return _manifest_from_json(json.dumps(row.manifest, sort_keys=True))


def resolve(conn: Connection, spec_text: str) -> AnyRow:
    """The ``plugin_versions`` row of the one enabled version that ``spec_text`` (``name``,
    ``name@1.0``, ``name@>=1,<2``) selects: 422 for a bad spec or no match, 404 for an unknown
    plugin, 409 if disabled."""
    try:
        spec = parse_spec(spec_text)
    except InvalidSpec as exc:
        listing = Hint("GET /api/v1/plugins", "arcade plugins")
        raise Invalid(f"{exc}; write NAME, NAME@VERSION or NAME@RANGE (such as "
                      f"cpu@1.2.0 or 'cpu@>=1.2,<2'); list the plugins with {listing}",
                      hints=[listing]) from None
    plugin, versions = _find_plugin(conn, spec.name) or (None, [])
    if plugin is None or not versions:
        publish = Hint("POST /api/v1/plugins", "arcade publish WHEEL...")
        listing = Hint("GET /api/v1/plugins", "arcade plugins")
        raise NotFound(
            f"no plugin named {spec.name!r} is published; publish it with {publish} or list "
            f"plugins with {listing}",
            hints=[publish, listing],
        )
    if not plugin.enabled:
        enable = Hint(f"POST /api/v1/plugins/{plugin.name}/enable", f"arcade enable {plugin.name}")
        raise Conflict(
            f"plugin {plugin.name!r} is disabled and cannot be newly assigned; enable it with "
            f"{enable}",
            hints=[enable],
        )
    by_version = {Version(v.version): v for v in versions}
    chosen = spec.select(by_version)
    if chosen is None:
        published = ", ".join(v.version for v in sort_versions(versions))
        show = Hint(f"GET /api/v1/plugins/{plugin.name}", f"arcade plugins {plugin.name}")
        raise Invalid(
            f"no published version of {plugin.name} matches {spec_text!r}; "
            f"published versions: {published} (shown by {show})",
            hints=[show],
        )
    return by_version[chosen]
