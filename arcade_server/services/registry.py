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
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from arcade_core import ArcadeError, InvalidSpec, normalize_name, parse_spec
from arcade_core._manifest import Manifest
from arcade_core._wheel import WheelInfo, check_requirements, inspect_wheel

from ..db.engine import Database
from ..db.models import Assignment, Blob, Plugin, PluginState, PluginVersion, PluginVersionWheel
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


def _identical(existing: PluginVersion, prepared: PreparedPublish) -> bool:
    return existing.sha256 == prepared.plugin.sha256 and sorted(
        w.sha256 for w in existing.wheels
    ) == sorted(w.sha256 for w in prepared.wheels)


def _find_version(session: Session, name: str, version: str) -> PluginVersion | None:
    return session.scalars(
        select(PluginVersion)
        .where(PluginVersion.plugin_name == name, PluginVersion.version == version)
        .options(selectinload(PluginVersion.wheels))
    ).first()


def record_version(session: Session, prepared: PreparedPublish) -> PublishResult:
    """Record the published version; identical re-publish → ``created=False``; different
    content under the same ``name@version`` → :class:`Conflict`."""
    plugin = prepared.plugin
    existing = _find_version(session, plugin.name, plugin.version)
    if existing is not None:
        if _identical(existing, prepared):
            return PublishResult(version_dict(existing), False, prepared.ignored)
        raise Conflict(
            f"{plugin.name}@{plugin.version} is already published with different content "
            f"(plugin wheel sha256 {existing.sha256}); published versions are immutable: "
            "bump the version and publish again",
            {"name": plugin.name, "version": plugin.version, "sha256": existing.sha256},
        )
    now = time.time()
    insert_ignore(
        session, Blob,
        [{"sha256": w.sha256, "size": w.size, "created_at": now} for w in prepared.wheels],
    )
    insert_ignore(
        session, Plugin, [{"name": plugin.name, "enabled": True, "created_at": now,
                           "updated_at": now}],
    )
    manifest = plugin.manifest or Manifest()
    row = PluginVersion(
        plugin_name=plugin.name,
        version=plugin.version,
        summary=plugin.summary or "",
        description=manifest.description or plugin.summary or "",
        type=manifest.type,
        entry_point=plugin.entry_point.value if plugin.entry_point else "",
        requires_dist=list(plugin.requires_dist),
        requires_python=plugin.requires_python,
        manifest=plugin.manifest.to_dict() if plugin.manifest else None,
        sha256=plugin.sha256,
        filename=plugin.filename,
        size=plugin.size,
        created_at=now,
        wheels=[
            PluginVersionWheel(
                position=i, sha256=w.sha256, filename=w.filename, name=w.name,
                version=w.version, size=w.size,
            )
            for i, w in enumerate(prepared.wheels)
        ],
    )
    session.add(row)
    session.flush()
    session.execute(update(Plugin).where(Plugin.name == plugin.name).values(updated_at=now))
    return PublishResult(version_dict(row), True, prepared.ignored)


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


def version_dict(row: PluginVersion, *, agents: list[dict[str, Any]] | None = None
                 ) -> dict[str, Any]:
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
            for w in row.wheels
        ],
    }
    if agents is not None:
        data["agents"] = agents
    return data


def _sort_versions(versions: Sequence[PluginVersion]) -> list[PluginVersion]:
    return sorted(versions, key=lambda v: Version(v.version), reverse=True)


def _plugin_dict(plugin: Plugin) -> dict[str, Any]:
    versions = _sort_versions(plugin.versions)
    latest = versions[0] if versions else None
    return {
        "name": plugin.name,
        "enabled": plugin.enabled,
        "latest": latest.version if latest else None,
        "summary": latest.summary if latest else "",
        "description": latest.description if latest else "",
        "type": latest.type if latest else "",
        "versions": [v.version for v in versions],
        "created_at": plugin.created_at,
        "updated_at": plugin.updated_at,
    }


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_plugins(
    session: Session,
    *,
    type: str | None = None,
    enabled: bool | None = None,
    text: str | None = None,
) -> list[dict[str, Any]]:
    """Plugins with their versions (newest first); filters combine with AND."""
    query = select(Plugin).options(selectinload(Plugin.versions)).order_by(Plugin.name)
    if enabled is not None:
        query = query.where(Plugin.enabled == enabled)
    if type:
        query = query.where(Plugin.versions.any(PluginVersion.type == type))
    if text:
        pattern = _like(text)
        query = query.where(
            or_(
                func.lower(Plugin.name).like(pattern, escape="\\"),
                Plugin.versions.any(
                    or_(
                        func.lower(PluginVersion.summary).like(pattern, escape="\\"),
                        func.lower(PluginVersion.description).like(pattern, escape="\\"),
                    )
                ),
            )
        )
    return [_plugin_dict(p) for p in session.scalars(query)]


def _normalized(name: str) -> str:
    try:
        return normalize_name(name)
    except InvalidSpec as exc:
        raise NotFound(f"no plugin named {name!r}: {exc}") from None


def _get_plugin_row(session: Session, name: str) -> Plugin:
    normalized = _normalized(name)
    plugin = session.scalars(
        select(Plugin).where(Plugin.name == normalized).options(selectinload(Plugin.versions))
    ).first()
    if plugin is None:
        raise NotFound(
            f"no plugin named {normalized!r} is published; list them with GET /api/v1/plugins"
        )
    return plugin


def get_plugin(session: Session, name: str) -> dict[str, Any]:
    plugin = _get_plugin_row(session, name)
    data = _plugin_dict(plugin)
    data["releases"] = [
        {"version": v.version, "sha256": v.sha256, "size": v.size, "created_at": v.created_at,
         "type": v.type, "summary": v.summary}
        for v in _sort_versions(plugin.versions)
    ]
    return data


def _get_version_row(session: Session, name: str, version: str) -> PluginVersion:
    plugin = _get_plugin_row(session, name)
    try:
        wanted = Version(version)
    except InvalidVersion:
        raise NotFound(f"{version!r} is not a PEP 440 version of {plugin.name}") from None
    for row in plugin.versions:
        if Version(row.version) == wanted:
            return row
    published = ", ".join(v.version for v in _sort_versions(plugin.versions)) or "none"
    raise NotFound(
        f"{plugin.name} has no version {version}; published versions: {published}"
    )


def get_version(session: Session, name: str, version: str) -> dict[str, Any]:
    """A version with its manifest, wheels and the agents that should or do run it."""
    row = _get_version_row(session, name, version)
    desired = session.scalars(
        select(Assignment).where(Assignment.version_id == row.id).order_by(Assignment.agent_id)
    ).all()
    actual = {
        s.agent_id: s
        for s in session.scalars(
            select(PluginState).where(
                PluginState.plugin_name == row.plugin_name, PluginState.version == row.version
            )
        )
    }
    agents: list[dict[str, Any]] = []
    for assignment in desired:
        state = actual.pop(assignment.agent_id, None)
        agents.append({"agent": assignment.agent_id, "desired": True,
                       "state": state.state if state else None})
    for agent_id, state in sorted(actual.items()):
        agents.append({"agent": agent_id, "desired": False, "state": state.state})
    return version_dict(row, agents=agents)


def delete_version(session: Session, name: str, version: str) -> list[str]:
    """Delete a version that no agent is assigned; return the sha256s of blobs no longer used
    (the caller deletes those files after the commit)."""
    row = _get_version_row(session, name, version)
    assigned = session.scalars(
        select(Assignment.agent_id).where(Assignment.version_id == row.id).limit(20)
    ).all()
    if assigned:
        raise Conflict(
            f"{row.plugin_name}@{row.version} is assigned to {len(assigned)} agent(s) "
            f"({', '.join(assigned)}): uninstall it from them first",
            {"agents": list(assigned)},
        )
    shas = {w.sha256 for w in row.wheels}
    plugin_name = row.plugin_name
    session.delete(row)
    session.flush()
    still_used = set(
        session.scalars(
            select(PluginVersionWheel.sha256).where(PluginVersionWheel.sha256.in_(shas))
        )
    )
    orphans = sorted(shas - still_used)
    if orphans:
        session.execute(delete(Blob).where(Blob.sha256.in_(orphans)))
    remaining = session.scalar(
        select(func.count()).select_from(PluginVersion).where(
            PluginVersion.plugin_name == plugin_name
        )
    )
    if not remaining:
        session.execute(delete(Plugin).where(Plugin.name == plugin_name))
    return orphans


def set_enabled(session: Session, name: str, enabled: bool) -> dict[str, Any]:
    plugin = _get_plugin_row(session, name)
    plugin.enabled = enabled
    plugin.updated_at = time.time()
    session.flush()
    return _plugin_dict(plugin)


# ---------------------------------------------------------------- resolving specs


@lru_cache(maxsize=1024)
def _manifest_from_json(text: str) -> Manifest:
    return Manifest.from_json(text)


def manifest_of(row: PluginVersion) -> Manifest:
    """The version's manifest (cached: published versions never change)."""
    if not row.manifest:
        return Manifest()
    return _manifest_from_json(json.dumps(row.manifest, sort_keys=True))


def resolve(session: Session, spec_text: str) -> PluginVersion:
    """The one enabled version that ``spec_text`` (``name``, ``name@1.0``, ``name@>=1,<2``)
    selects: 422 for a bad spec or no match, 404 for an unknown plugin, 409 if disabled."""
    try:
        spec = parse_spec(spec_text)
    except InvalidSpec as exc:
        raise Invalid(str(exc)) from None
    plugin = session.scalars(
        select(Plugin).where(Plugin.name == spec.name).options(selectinload(Plugin.versions))
    ).first()
    if plugin is None or not plugin.versions:
        raise NotFound(
            f"no plugin named {spec.name!r} is published; publish it with "
            "'arcade publish WHEEL...' or list plugins with 'arcade plugins'"
        )
    if not plugin.enabled:
        raise Conflict(
            f"plugin {plugin.name!r} is disabled and cannot be newly assigned; enable it with "
            f"POST /api/v1/plugins/{plugin.name}/enable"
        )
    by_version = {Version(v.version): v for v in plugin.versions}
    chosen = spec.select(by_version)
    if chosen is None:
        published = ", ".join(v.version for v in _sort_versions(plugin.versions))
        raise Invalid(
            f"no published version of {plugin.name} matches {spec_text!r}; "
            f"published versions: {published}"
        )
    return by_version[chosen]
