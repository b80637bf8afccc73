"""How a published version is read and shown: its wheels in install order, its API form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from packaging.version import Version
from sqlalchemy import Connection, select

from ..db.tables import AnyRow
from ..db.tables import plugin_version_wheels as wheels_table

__all__ = ["sort_versions", "version_dict", "wheels_of"]


def wheels_of(conn: Connection, version_id: int) -> list[AnyRow]:
    """The version's wheels, in install order (the plugin wheel first)."""
    return list(conn.execute(
        select(wheels_table).where(wheels_table.c.version_id == version_id)
        .order_by(wheels_table.c.position)
    ))


def version_dict(row: AnyRow, wheels: Sequence[AnyRow], *,
                 agents: list[dict[str, Any]] | None = None,
                 signers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A ``plugin_versions`` row and its wheels (in install order) as the API shows them,
    with who signed it (``signers``: ``[{"key_id", "created_at"}]``, from
    :func:`.signatures.signers_of`)."""
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
    data["signers"] = list(signers or [])
    if agents is not None:
        data["agents"] = agents
    return data


def sort_versions(versions: Sequence[AnyRow]) -> list[AnyRow]:
    """Newest (PEP 440) first."""
    return sorted(versions, key=lambda v: Version(v.version), reverse=True)
