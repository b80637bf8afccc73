"""The plugin registry: publish, validate, list, get, delete, enable and disable.

Publishing is split so no step blocks the event loop and the database transaction stays
short: :func:`inspect_upload` (blocking: reads the wheels, never runs their code) →
:func:`store_blobs` (blocking: content-addressed, verified copies) → :func:`record_version`
(one transaction). :func:`publish` runs the three from async code. Two concurrent publishes
of the same ``name@version`` race on a unique constraint: the loser's transaction rolls back
and it answers as a re-publish would (200 if identical, 409 otherwise).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version
from sqlalchemy import Connection, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from arcade_core import (
    ArcadeError,
    InvalidSpec,
    Manifest,
    WheelInfo,
    inspect_wheel,
    normalize_name,
    parse_spec,
)
from arcade_core.requirements import check_requirements

from ..db.engine import Database
from ..db.tables import AnyRow, assignments, blobs, plugin_states, plugin_versions, plugins
from ..db.tables import plugin_version_wheels as wheels_table
from ..errors import Conflict, Invalid, NotFound
from ..storage import BlobStore
from ._sql import insert_ignore

__all__ = [
    "PreparedPublish",
    "PublishResult",
    "delete_version",
    "get_plugin",
    "get_version",
    "inspect_upload",
    "list_plugins",
    "manifest_of",
    "publish",
    "record_version",
    "resolve",
    "set_enabled",
    "store_blobs",
    "validate_upload",
    "version_dict",
]


@dataclass(frozen=True)
class PreparedPublish:
    """An upload that passed inspection: the plugin and the wheels to record, in install
    order (plugin first); ``ignored`` are uploaded wheels nothing requires."""

    plugin: WheelInfo
    wheels: tuple[WheelInfo, ...]
    ignored: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        plugin = self.plugin
        return {
            "name": plugin.name,
            "version": plugin.version,
            "summary": plugin.summary,
            "entry_point": plugin.entry_point.value if plugin.entry_point else "",
            "requires_dist": list(plugin.requires_dist),
            "requires_python": plugin.requires_python,
            "manifest": plugin.manifest.to_dict() if plugin.manifest else None,
            "sha256": plugin.sha256,
            "filename": plugin.filename,
            "size": plugin.size,
            "wheels": [_wheel_info_dict(w) for w in self.wheels],
            "ignored": list(self.ignored),
        }


@dataclass(frozen=True)
class PublishResult:
    version: dict[str, Any]
    created: bool
    ignored: tuple[str, ...] = field(default=())


def _wheel_info_dict(info: WheelInfo) -> dict[str, Any]:
    return {
        "filename": info.filename,
        "sha256": info.sha256,
        "size": info.size,
        "name": info.name,
        "version": info.version,
    }


# ---------------------------------------------------------------- inspection (blocking)


def _about(filename: str, exc: Exception) -> str:
    """The error text, prefixed with the file it is about unless it already names it."""
    text = str(exc)
    return text if filename in text else f"{filename}: {text}"


def validate_upload(paths: Sequence[Path]) -> tuple[PreparedPublish | None, list[str]]:
    """Inspect uploaded wheels; return the prepared publish or every problem found."""
    problems: list[str] = []
    infos: list[WheelInfo] = []
    if not paths:
        return None, ["no wheels uploaded: send the plugin wheel (and its dependency wheels) "
                      "as multipart files in fields named 'wheels'"]
    for path in paths:
        try:
            infos.append(inspect_wheel(path, plugin=False))
        except ArcadeError as exc:
            problems.append(_about(path.name, exc))
    plugins = [info for info in infos if info.is_plugin]
    if not problems and not plugins:
        # Say why each wheel is not a plugin (no entry point, or several of them).
        for info in infos:
            try:
                inspect_wheel(info.path, plugin=True)
            except ArcadeError as exc:
                problems.append(_about(info.filename, exc))
        problems.append(
            "none of the uploaded wheels is an Arcade plugin: the plugin wheel must declare "
            "exactly one entry point in the group 'arcade.plugins'"
        )
    if len(plugins) > 1:
        problems.append(
            f"{len(plugins)} plugin wheels uploaded ({', '.join(p.filename for p in plugins)}): "
            "publish one plugin at a time, with its dependency wheels"
        )
    if problems or len(plugins) != 1:
        return None, problems
    plugin = plugins[0]
    dependencies = [info for info in infos if not info.is_plugin]
    try:
        wheels = check_requirements(plugin, dependencies)
    except ArcadeError as exc:
        return None, [str(exc)]
    needed = {w.sha256 for w in wheels}
    ignored = tuple(info.filename for info in dependencies if info.sha256 not in needed)
    return PreparedPublish(plugin, tuple(wheels), ignored), []


def inspect_upload(paths: Sequence[Path]) -> PreparedPublish:
    """Like :func:`validate_upload`, raising :class:`Invalid` (422) listing the problems."""
    prepared, problems = validate_upload(paths)
    if prepared is None:
        raise Invalid("; ".join(problems), {"problems": problems})
    return prepared


def store_blobs(store: BlobStore, prepared: PreparedPublish) -> None:
    """Copy each wheel into the blob store (once per sha256, hash verified while written)."""
    for wheel in prepared.wheels:
        store.put_path(wheel.path, wheel.sha256)


# ---------------------------------------------------------------- records (one transaction)


def _wheels_of(conn: Connection, version_id: int) -> list[AnyRow]:
    """The version's wheels, in install order (the plugin wheel first)."""
    return list(conn.execute(
        select(wheels_table).where(wheels_table.c.version_id == version_id)
        .order_by(wheels_table.c.position)
    ))


def _identical(existing: AnyRow, wheels: Sequence[AnyRow], prepared: PreparedPublish
               ) -> bool:
    return existing.sha256 == prepared.plugin.sha256 and sorted(
        w.sha256 for w in wheels
    ) == sorted(w.sha256 for w in prepared.wheels)


def _find_version(conn: Connection, name: str, version: str) -> AnyRow | None:
    return conn.execute(
        select(plugin_versions)
        .where(plugin_versions.c.plugin_name == name, plugin_versions.c.version == version)
    ).first()


def record_version(conn: Connection, prepared: PreparedPublish) -> PublishResult:
    """Record the published version; identical re-publish → ``created=False``; different
    content under the same ``name@version`` → :class:`Conflict`."""
    plugin = prepared.plugin
    existing = _find_version(conn, plugin.name, plugin.version)
    if existing is not None:
        wheels = _wheels_of(conn, existing.id)
        if _identical(existing, wheels, prepared):
            return PublishResult(version_dict(existing, wheels), False, prepared.ignored)
        raise Conflict(
            f"{plugin.name}@{plugin.version} is already published with different content "
            f"(plugin wheel sha256 {existing.sha256}); published versions are immutable: "
            "bump the version and publish again",
            {"name": plugin.name, "version": plugin.version, "sha256": existing.sha256},
        )
    now = time.time()
    insert_ignore(
        conn, blobs,
        [{"sha256": w.sha256, "size": w.size, "created_at": now} for w in prepared.wheels],
    )
    insert_ignore(
        conn, plugins, [{"name": plugin.name, "enabled": True, "created_at": now,
                         "updated_at": now}],
    )
    manifest = plugin.manifest or Manifest()
    row = conn.execute(
        plugin_versions.insert().returning(*plugin_versions.c),
        {
            "plugin_name": plugin.name,
            "version": plugin.version,
            "summary": plugin.summary or "",
            "description": manifest.description or plugin.summary or "",
            "type": manifest.type,
            "entry_point": plugin.entry_point.value if plugin.entry_point else "",
            "requires_dist": list(plugin.requires_dist),
            "requires_python": plugin.requires_python,
            "manifest": plugin.manifest.to_dict() if plugin.manifest else None,
            "sha256": plugin.sha256,
            "filename": plugin.filename,
            "size": plugin.size,
            "created_at": now,
        },
    ).one()
    stored = conn.execute(
        wheels_table.insert().returning(*wheels_table.c, sort_by_parameter_order=True),
        [{"version_id": row.id, "position": i, "sha256": w.sha256, "filename": w.filename,
          "name": w.name, "version": w.version, "size": w.size}
         for i, w in enumerate(prepared.wheels)],
    ).all()
    conn.execute(update(plugins).where(plugins.c.name == plugin.name).values(updated_at=now))
    return PublishResult(version_dict(row, stored), True, prepared.ignored)


async def publish(db: Database, store: BlobStore, paths: Sequence[Path]) -> PublishResult:
    """Inspect, store and record uploaded wheels (from async code, never blocking the loop)."""
    prepared = await asyncio.to_thread(inspect_upload, paths)
    await asyncio.to_thread(store_blobs, store, prepared)
    try:
        result = await db.run(record_version, prepared)
    except IntegrityError:
        # A concurrent publish of the same name@version won the race: answer as a re-publish.
        result = await db.run(record_version, prepared)
    # A concurrent delete may have removed a blob file we found already present: restore it.
    await asyncio.to_thread(store_blobs, store, prepared)
    return result


# ---------------------------------------------------------------- queries


def version_dict(row: AnyRow, wheels: Sequence[AnyRow], *,
                 agents: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A ``plugin_versions`` row and its wheels (in install order) as the API shows them."""
    data: dict[str, Any] = {
        "name": row.plugin_name,
        "version": row.version,
        "summary": row.summary,
        "description": row.description,
        "type": row.type,
        "entry_point": row.entry_point,
        "requires_dist": list(row.requires_dist or []),
        "requires_python": row.requires_python,
        "manifest": row.manifest,
        "sha256": row.sha256,
        "filename": row.filename,
        "size": row.size,
        "created_at": row.created_at,
        "wheels": [
            {"filename": w.filename, "sha256": w.sha256, "size": w.size, "name": w.name,
             "version": w.version}
            for w in wheels
        ],
    }
    if agents is not None:
        data["agents"] = agents
    return data


def _sort_versions(versions: Sequence[AnyRow]) -> list[AnyRow]:
    return sorted(versions, key=lambda v: Version(v.version), reverse=True)


def _plugin_dict(plugin: AnyRow, versions: Sequence[AnyRow]) -> dict[str, Any]:
    ordered = _sort_versions(versions)
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
        raise NotFound(
            f"no plugin named {normalized!r} is published; list them with GET /api/v1/plugins"
        )
    return found


def get_plugin(conn: Connection, name: str) -> dict[str, Any]:
    plugin, versions = _get_plugin_row(conn, name)
    data = _plugin_dict(plugin, versions)
    data["releases"] = [
        {"version": v.version, "sha256": v.sha256, "size": v.size, "created_at": v.created_at,
         "type": v.type, "summary": v.summary}
        for v in _sort_versions(versions)
    ]
    return data


def _get_version_row(conn: Connection, name: str, version: str) -> AnyRow:
    plugin, versions = _get_plugin_row(conn, name)
    try:
        wanted = Version(version)
    except InvalidVersion:
        raise NotFound(f"{version!r} is not a PEP 440 version of {plugin.name}") from None
    for row in versions:
        if Version(row.version) == wanted:
            return row
    published = ", ".join(v.version for v in _sort_versions(versions)) or "none"
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
    return version_dict(row, _wheels_of(conn, row.id), agents=agents)


def delete_version(conn: Connection, name: str, version: str) -> list[str]:
    """Delete a version that no agent is assigned; return the sha256s of blobs no longer used
    (the caller deletes those files after the commit)."""
    row = _get_version_row(conn, name, version)
    assigned = conn.scalars(
        select(assignments.c.agent_id).where(assignments.c.version_id == row.id).limit(20)
    ).all()
    if assigned:
        raise Conflict(
            f"{row.plugin_name}@{row.version} is assigned to {len(assigned)} agent(s) "
            f"({', '.join(assigned)}): uninstall it from them first",
            {"agents": list(assigned)},
        )
    shas = {w.sha256 for w in _wheels_of(conn, row.id)}
    # The wheel rows go with the version (ON DELETE CASCADE, and explicitly: SQLite enforces
    # foreign keys only with the pragma the engine sets).
    conn.execute(delete(wheels_table).where(wheels_table.c.version_id == row.id))
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
        raise Invalid(str(exc)) from None
    plugin, versions = _find_plugin(conn, spec.name) or (None, [])
    if plugin is None or not versions:
        raise NotFound(
            f"no plugin named {spec.name!r} is published; publish it with "
            "'arcade publish WHEEL...' or list plugins with 'arcade plugins'"
        )
    if not plugin.enabled:
        raise Conflict(
            f"plugin {plugin.name!r} is disabled and cannot be newly assigned; enable it with "
            f"POST /api/v1/plugins/{plugin.name}/enable"
        )
    by_version = {Version(v.version): v for v in versions}
    chosen = spec.select(by_version)
    if chosen is None:
        published = ", ".join(v.version for v in _sort_versions(versions))
        raise Invalid(
            f"no published version of {plugin.name} matches {spec_text!r}; "
            f"published versions: {published}"
        )
    return by_version[chosen]
