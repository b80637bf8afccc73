"""Import a plugin from a package index, and the newer versions an index has.

``POST /api/v1/plugins/import`` (``arcade publish --from-index``): :func:`import_plugin`
checks the requirement and the index URL, finds the platforms to resolve for (every distinct
os/arch/Python the registered agents report; with no agent, the server's own, and the answer
says so), resolves and downloads the wheels with :class:`~arcade_server.index_resolver.
Resolver` (``pip download`` per platform, every file checked against the index's published
sha256), then publishes them through :func:`arcade_server.services.publishing.publish`, the
same service as an upload, with the same refusals; finally it records which index the version
came from (``plugin_imports``). The work directory is removed on every path.

``GET /api/v1/plugins/{name}/updates``: :func:`updates` reads the project page of the index
the newest imported version came from (or the one the caller names) and lists the versions
beyond the newest published one.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from sqlalchemy import Connection, select

from ..db.engine import Database
from ..db.tables import agents, plugin_imports, plugin_versions
from ..errors import Conflict, Hint, Invalid
from ..index_resolver import ImportLimits, Resolver
from ..package_index import check_index_url, fetch_project, redact
from ..platforms import Platform, server_platform
from ..storage import BlobStore
from . import publishing, registry
from ._sql import insert_ignore

__all__ = [
    "MAX_REQUIREMENT_LENGTH",
    "ImportResult",
    "import_plugin",
    "import_source",
    "parse_requirement",
    "record_import",
    "target_platforms",
    "updates",
]

MAX_REQUIREMENT_LENGTH = 500


@dataclass(frozen=True)
class ImportResult:
    """The published version (as :func:`publishing.publish` answers), where it came from and
    which platforms it was resolved for; ``note`` says when no agent was known."""

    published: publishing.PublishResult
    index_url: str
    requirement: str
    platforms: tuple[str, ...]
    note: str | None = None


def parse_requirement(text: str) -> Requirement:
    """A PEP 508 requirement naming a project on an index, e.g. ``arcade-foo==1.2``."""
    text = text.strip()
    if not text:
        raise Invalid("requirement is empty: give a project and version, e.g. 'arcade-foo==1.2'")
    if len(text) > MAX_REQUIREMENT_LENGTH:
        raise Invalid(f"requirement is longer than {MAX_REQUIREMENT_LENGTH} characters")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise Invalid(f"requirement {text!r} is not a PEP 508 requirement (e.g. "
                      f"'arcade-foo==1.2' or 'arcade-foo>=1,<2'): {exc}") from None
    if requirement.url is not None:
        raise Invalid(f"requirement {text!r} is a direct URL reference: name a project on "
                      "the index (and set index_url for another index)")
    if requirement.marker is not None:
        raise Invalid(f"requirement {text!r} has an environment marker: the server resolves "
                      "for its agents' platforms itself; leave the marker out")
    return requirement


def target_platforms(conn: Connection) -> list[Platform]:
    """Each distinct platform the registered agents report (facts they did not send skip)."""
    rows = conn.execute(select(agents.c.os, agents.c.arch, agents.c.python_version)
                        .distinct()).all()
    found = {Platform.of(row.os, row.arch, row.python_version) for row in rows}
    return sorted(p for p in found if p is not None)


def record_import(conn: Connection, name: str, version: str, index_url: str,
                  requirement: str) -> None:
    """Remember the index ``name@version`` was imported from (the first import wins)."""
    row = conn.execute(select(plugin_versions.c.id).where(
        plugin_versions.c.plugin_name == name, plugin_versions.c.version == version)).first()
    if row is not None:
        insert_ignore(conn, plugin_imports, [{"version_id": row.id, "index_url": index_url,
                                              "requirement": requirement,
                                              "imported_at": time.time()}])


def import_source(conn: Connection, name: str) -> str | None:
    """The index the newest imported version of ``name`` came from (None: never imported)."""
    rows = conn.execute(
        select(plugin_versions.c.version, plugin_imports.c.index_url)
        .join(plugin_imports, plugin_imports.c.version_id == plugin_versions.c.id)
        .where(plugin_versions.c.plugin_name == name)).all()
    if not rows:
        return None
    newest = max(rows, key=lambda row: Version(row.version))
    return str(newest.index_url)


async def import_plugin(db: Database, store: BlobStore, *, requirement: str, index_url: str,
                        limits: ImportLimits, work_root: Path,
                        allowed: Sequence[str] = ()) -> ImportResult:
    """Resolve ``requirement`` on the index for the agents' platforms, verify and publish."""
    req = parse_requirement(requirement)
    url = check_index_url(index_url, allowed)
    platforms = await db.read(target_platforms)
    note = None
    if not platforms:
        platforms = [server_platform()]
        note = ("no agent has registered its platform yet: resolved for the server's own "
                f"({platforms[0].label}); import again once agents of other platforms join")
    work_root.mkdir(parents=True, exist_ok=True)
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=work_root, prefix="import-"))
    try:
        paths = await Resolver(url, limits, workdir).resolve(req, platforms)
        result = await publishing.publish(db, store, paths)
    finally:
        await asyncio.to_thread(shutil.rmtree, workdir, True)
    name, version = result.version["name"], result.version["version"]
    if name != canonicalize_name(req.name):
        # The wheel the requirement names is not the plugin (a dependency declared the entry
        # point): published as the index had it, but say so.
        note = ((note + "; ") if note else "") + (
            f"the plugin published is {name}, a dependency of {canonicalize_name(req.name)}")
    await db.run(record_import, name, version, url, str(req))
    return ImportResult(result, url, str(req), tuple(p.label for p in platforms), note)


async def updates(db: Database, name: str, *, index_url: str | None, timeout: float,
                  allowed: Sequence[str] = ()) -> dict[str, Any]:
    """The versions on the index newer than the newest published one of ``name``."""
    plugin = await db.read(registry.get_plugin, name)
    plugin_name = plugin["name"]
    if index_url is None:
        source = await db.read(import_source, plugin_name)
        if source is None:
            hint = Hint("?index_url=", "--index-url")
            raise Conflict(
                f"{plugin_name} was never imported from a package index, so it is not known "
                f"where to look for updates: name the index with {hint}", hints=[hint])
        url = source
    else:
        url = check_index_url(index_url, allowed)
    page = await asyncio.to_thread(fetch_project, url, plugin_name, timeout=timeout)
    if page is None:
        raise Invalid(f"the index {redact(url)} has no project {plugin_name!r}")
    published = max((Version(r["version"]) for r in plugin["releases"]), default=None)
    available = page.versions()
    if published is None or not published.is_prerelease:
        available = [v for v in available if not v.is_prerelease]
    newer = [v for v in available if published is None or v > published]
    return {"name": plugin_name, "index_url": url,
            "published": str(published) if published is not None else None,
            "latest": str(available[0]) if available else None,
            "newer": [str(v) for v in newer], "up_to_date": not newer}
