"""Publishing plugin versions: inspect uploaded wheels, store them, record the version.

Publishing is split so no step blocks the event loop and the database transaction stays
short: :func:`inspect_upload` (blocking: reads the wheels, never runs their code) →
:func:`store_blobs` (blocking: content-addressed, verified copies) → :func:`record_version`
(one transaction). :func:`publish` runs the three from async code. A publish may carry a
signature (:class:`Signed`) of the version's statement: it is checked before any blob is
stored and recorded in the version's transaction (:mod:`.signatures`), and the publish policy
(:mod:`.plugin_keys`: a claimed name accepts new versions signed by its keys only) is applied
before storing and again in that transaction. Two concurrent publishes
of the same ``name@version`` race on a unique constraint: the loser's transaction rolls back
and it answers as a re-publish would (200 if identical, 409 otherwise).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from arcade_core import ArcadeError, Manifest, WheelInfo, inspect_wheel, signing
from arcade_core.requirements import check_requirements

from ..db.engine import Database
from ..db.tables import AnyRow, blobs, plugin_versions, plugins
from ..db.tables import plugin_version_wheels as wheels_table
from ..errors import Conflict, Invalid
from ..limits import check_name_version
from ..storage import BlobStore
from . import plugin_keys, signatures
from ._sql import insert_ignore
from ._versions import version_dict, wheels_of

__all__ = [
    "PreparedPublish",
    "PublishResult",
    "Signed",
    "check_signature",
    "inspect_upload",
    "publish",
    "record_version",
    "store_blobs",
    "validate_upload",
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
class Signed:
    """A publisher's signature of the statement of the wheels it publishes, and its key."""

    public_key: bytes
    signature: bytes

    @property
    def key_id(self) -> str:
        return signing.key_id(self.public_key)


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
    for info in infos:
        try:
            check_name_version(info.name, info.version, info.filename)
        except Invalid as exc:
            problems.append(exc.message)
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


def _add_signature(conn: Connection, name: str, version: str, signed: Signed | None) -> None:
    if signed is not None:
        signatures.add(conn, name, version, public_key=signed.public_key,
                       signature=signed.signature)


def _signers(conn: Connection, version_id: int) -> list[dict[str, Any]]:
    return signatures.signers_of(conn, [version_id])[version_id]


def record_version(conn: Connection, prepared: PreparedPublish,
                   signed: Signed | None = None) -> PublishResult:
    """Record the published version (with its signature, if ``signed``); identical re-publish
    → ``created=False`` (a new signature is added); different content under the same
    ``name@version`` → :class:`Conflict`; a new version of a claimed name not signed by one of
    its keys → :class:`Forbidden`; a signature that does not verify → :class:`Invalid`."""
    plugin = prepared.plugin
    existing = _find_version(conn, plugin.name, plugin.version)
    if existing is not None:
        wheels = wheels_of(conn, existing.id)
        if _identical(existing, wheels, prepared):
            _add_signature(conn, plugin.name, plugin.version, signed)
            return PublishResult(version_dict(existing, wheels,
                                              signers=_signers(conn, existing.id)),
                                 False, prepared.ignored)
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
    # The plugin's row, locked, serializes this name's publishes (PostgreSQL; SQLite has one
    # writer): two first signed publishes cannot both claim it with different keys.
    conn.execute(select(plugins.c.name).where(plugins.c.name == plugin.name).with_for_update())
    plugin_keys.check_publish(conn, plugin.name, signed.key_id if signed else None)
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
    if signed is not None:
        _add_signature(conn, plugin.name, plugin.version, signed)
        plugin_keys.claim(conn, plugin.name, signed.public_key)
    return PublishResult(version_dict(row, stored, signers=_signers(conn, row.id)), True,
                         prepared.ignored)


def check_signature(prepared: PreparedPublish, signed: Signed) -> None:
    """:class:`Invalid` unless ``signed`` verifies for the statement of the wheels this
    publish records (the message names the wheels it had to cover)."""
    if len(signed.public_key) != 32:
        raise Invalid(f"public_key: {len(signed.public_key)} bytes; an ed25519 public key has 32")
    if len(signed.signature) != signing.SIGNATURE_LENGTH:
        raise Invalid(f"signature: {len(signed.signature)} bytes; an ed25519 signature has "
                      f"{signing.SIGNATURE_LENGTH}")
    plugin = prepared.plugin
    data = signing.statement(plugin.name, plugin.version,
                             {w.filename: w.sha256 for w in prepared.wheels})
    if signing.verify(signed.public_key, signed.signature, data):
        return
    covered = ", ".join(w.filename for w in prepared.wheels)
    extra = (f"; the upload also held wheels nothing requires ({', '.join(prepared.ignored)}), "
             "which are not recorded: leave them out" if prepared.ignored else "")
    raise Invalid(
        f"the signature by key {signed.key_id} does not verify for "
        f"{plugin.name}=={plugin.version}: sign the statement of exactly the wheels "
        f"recorded ({covered}){extra}",
        {"key_id": signed.key_id, "wheels": [w.filename for w in prepared.wheels]})


def _check_conflict(conn: Connection, prepared: PreparedPublish,
                    signed: Signed | None = None) -> None:
    """:class:`Conflict` now, before any blob is stored, when the version exists with other
    content (the common 409: nothing is written for it), and :class:`Forbidden` when the
    publish policy refuses a new version."""
    existing = _find_version(conn, prepared.plugin.name, prepared.plugin.version)
    if existing is not None and not _identical(existing, wheels_of(conn, existing.id), prepared):
        record_version(conn, prepared)  # raises the Conflict with its message
    if existing is None:
        plugin_keys.check_publish(conn, prepared.plugin.name, signed.key_id if signed else None)


def _unrecorded(conn: Connection, shas: Sequence[str]) -> list[str]:
    """Those of ``shas`` no ``blobs`` row names (safe to delete from the store)."""
    known = set(conn.scalars(select(blobs.c.sha256).where(blobs.c.sha256.in_(list(shas)))))
    return [sha for sha in shas if sha not in known]


async def _remove_new_blobs(db: Database, store: BlobStore, added: Sequence[str]) -> None:
    """After a refused publish: delete the blobs it added that nothing recorded since."""
    if not added:
        return
    for sha256 in await db.read(_unrecorded, added):
        await asyncio.to_thread(store.delete, sha256)


async def publish(db: Database, store: BlobStore, paths: Sequence[Path],
                  signed: Signed | None = None) -> PublishResult:
    """Inspect, store and record uploaded wheels (from async code, never blocking the loop),
    with the publisher's signature if ``signed``.

    A refused publish leaves nothing behind: a conflict found before storing stores nothing,
    and blobs stored for a publish that then fails are deleted again (unless another publish
    recorded them meanwhile)."""
    prepared = await asyncio.to_thread(inspect_upload, paths)
    if signed is not None:
        await asyncio.to_thread(check_signature, prepared, signed)
    await db.read(_check_conflict, prepared, signed)
    present = await asyncio.to_thread(lambda: {w.sha256 for w in prepared.wheels
                                               if store.exists(w.sha256)})
    added = [w.sha256 for w in prepared.wheels if w.sha256 not in present]
    try:
        await asyncio.to_thread(store_blobs, store, prepared)
        try:
            result = await db.run(record_version, prepared, signed)
        except IntegrityError:
            # A concurrent publish of the same name@version won the race: answer as a
            # re-publish.
            result = await db.run(record_version, prepared, signed)
    except BaseException:
        await _remove_new_blobs(db, store, added)
        raise
    # A concurrent delete may have removed a blob file we found already present: restore it.
    await asyncio.to_thread(store_blobs, store, prepared)
    return result
