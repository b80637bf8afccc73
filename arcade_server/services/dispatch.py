"""What is handed to an agent for one job: its commands and plugin entries with their wheels.

:func:`build_dispatches` turns queued jobs into :class:`Dispatch` values (plain data: the
gRPC layer turns them into ``Job`` messages, :func:`arcade_server.rpc.convert.job_to_pb`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from arcade_core.signing import Signature
from arcade_core.states import Isolation, JobStatus, Stage

from ..db import tables as t
from . import signatures
from ._jobrows import LoadedJob, finish

__all__ = ["Dispatch", "DispatchEntry", "build_dispatches"]


@dataclass(frozen=True)
class DispatchEntry:
    """One job plugin entry as the agent receives it (wheels: plugin first, then deps)."""

    index: int
    name: str
    version: str
    stage: Stage
    order: int
    config: Mapping[str, Any]
    isolation: Isolation
    wheels: tuple[tuple[str, str, int], ...]
    #: Its version's signatures (the agent checks them against its own trusted keys).
    signatures: tuple[Signature, ...] = ()


@dataclass(frozen=True)
class Dispatch:
    """A job ready to be sent to its agent."""

    job_id: str
    agent_id: str
    commands: tuple[str, ...]
    env: Mapping[str, str]
    timeout: float
    plugins: tuple[DispatchEntry, ...]


def build_dispatches(conn: Connection, jobs: Sequence[LoadedJob], now: float
                     ) -> list[Dispatch]:
    """Build what to send for ``jobs`` (queued); a job whose plugin version was deleted since
    it was created ends ``failed`` instead (the caller saves that)."""
    version_ids = {p.version_id for j in jobs for p in j.plugins if p.version_id is not None}
    wheels: dict[int, list[tuple[str, str, int]]] = {}
    if version_ids:
        w = t.plugin_version_wheels.c
        for wheel in conn.execute(
            select(w.version_id, w.filename, w.sha256, w.size)
            .where(w.version_id.in_(version_ids)).order_by(w.version_id, w.position)
        ):
            wheels.setdefault(wheel.version_id, []).append(
                (wheel.filename, wheel.sha256, wheel.size))
    signed = signatures.of_versions(conn, version_ids) if version_ids else {}
    out: list[Dispatch] = []
    for job in jobs:
        gone = [p for p in job.plugins if p.version_id is None or p.version_id not in wheels]
        if gone:
            names = ", ".join(f"{p.plugin_name}@{p.version}" for p in gone)
            finish(job, JobStatus.FAILED, f"{names} was deleted from the registry after the "
                   "job was created; create the job again", now)
            continue
        out.append(Dispatch(
            job_id=job.id, agent_id=job.agent_id, commands=tuple(job.commands),
            env=dict(job.env), timeout=job.timeout,
            plugins=tuple(
                DispatchEntry(p.position, p.plugin_name, p.version, Stage(p.stage),
                              p.stage_order, dict(p.config), Isolation(p.isolation),
                              tuple(wheels[p.version_id or 0]),
                              tuple(signed.get(p.version_id or 0, ())))
                for p in job.plugins
            ),
        ))
    return out
