"""Metric batches from agents: stored with one batched INSERT, queried, and expired.

:func:`store_batches` writes the batches of many agents with one ``executemany`` INSERT (the
server coalesces them with a :class:`~arcade_server.db.batcher.Batcher`: one transaction for
all the batches that arrived while the previous ones were written); :func:`store_batch` is
the one-batch form.

Retention, enforced by the server's periodic sweep: rows older than the retention period (by
the metric's own timestamp) are deleted by :func:`purge`, and rows beyond the newest
``max_rows`` of each agent and plugin (by arrival order) by :func:`purge_excess`, so neither
an old fleet nor one chatty client can grow the table without bound.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Text, bindparam, cast, delete, func, select

from ..db import tables as t
from ..errors import Invalid
from .agents import get_agent_row

__all__ = [
    "MetricBatch",
    "MetricData",
    "purge",
    "purge_excess",
    "query",
    "store_batch",
    "store_batches",
]


@dataclass(frozen=True)
class MetricData:
    plugin: str
    name: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    unit: str = ""
    timestamp: float = 0.0


@dataclass(frozen=True)
class MetricBatch:
    """One agent's batch as received (``now``: when it arrived)."""

    agent_id: str
    metrics: Sequence[MetricData]
    dropped: int = 0
    now: float = field(default_factory=time.time)


def _rows(batch: MetricBatch) -> list[dict[str, Any]]:
    now = batch.now
    return [
        {"agent_id": batch.agent_id, "plugin": m.plugin[:200], "name": m.name[:300],
         "value": float(m.value), "labels": dict(m.labels), "unit": m.unit[:50],
         "timestamp": m.timestamp or now, "received_at": now}
        for m in batch.metrics
        if m.name and math.isfinite(m.value)
    ]


def store_batches(conn: Connection, batches: Sequence[MetricBatch]) -> list[int]:
    """Store several batches; non-finite values are skipped. Returns the rows stored per
    batch."""
    per_batch = [_rows(b) for b in batches]
    rows = [row for batch_rows in per_batch for row in batch_rows]
    if rows:
        conn.execute(t.metrics.insert(), rows)
    dropped: dict[str, int] = {}
    for b in batches:
        if b.dropped:
            dropped[b.agent_id] = dropped.get(b.agent_id, 0) + b.dropped
    if dropped:
        agents = t.agents
        conn.execute(
            agents.update().where(agents.c.id == bindparam("b_id"))
            .values(metrics_dropped=agents.c.metrics_dropped + bindparam("b_dropped")),
            [{"b_id": agent_id, "b_dropped": n} for agent_id, n in dropped.items()],
        )
    return [len(batch_rows) for batch_rows in per_batch]


def store_batch(
    conn: Connection,
    agent_id: str,
    metrics: Sequence[MetricData],
    *,
    dropped: int = 0,
    now: float | None = None,
) -> int:
    """Store one batch; non-finite values are skipped. Returns the number of rows stored."""
    batch = MetricBatch(agent_id, metrics, dropped, time.time() if now is None else now)
    return store_batches(conn, [batch])[0]


def query(
    conn: Connection,
    agent_id: str,
    *,
    name: str | None = None,
    plugin: str | None = None,
    since: float | None = None,
    limit: int = 1000,
    max_limit: int = 10_000,
    latest: bool = False,
) -> list[dict[str, Any]]:
    """Metrics of one agent, oldest first.

    ``name`` matches exactly, or as a prefix when it ends with ``*`` (``cpu.*``). With
    ``since`` the first ``limit`` rows at or after it are returned (for tailing); without it,
    the latest ``limit`` rows. ``latest``: only the newest value of each series (plugin,
    name, labels), chosen in SQL by a window function, so reading "what is it now" costs
    one query however many values are stored.
    """
    get_agent_row(conn, agent_id)
    if not 1 <= limit <= max_limit:
        raise Invalid(f"limit must be between 1 and {max_limit}, got {limit}")
    m = t.metrics.c
    q = select(m.plugin, m.name, m.value, m.labels, m.unit, m.timestamp).where(
        m.agent_id == agent_id)
    if name:
        if name.endswith("*"):
            prefix = name[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            q = q.where(m.name.like(prefix + "%", escape="\\"))
        else:
            q = q.where(m.name == name)
    if plugin:
        q = q.where(m.plugin == plugin)
    if since is not None:
        q = q.where(m.timestamp >= since)
    if latest:
        rank = func.row_number().over(
            partition_by=(m.plugin, m.name, cast(m.labels, Text)),
            order_by=(m.timestamp.desc(), m.id.desc())).label("rank")
        newest = q.add_columns(rank).subquery()
        n = newest.c
        rows = conn.execute(
            select(n.plugin, n.name, n.value, n.labels, n.unit, n.timestamp)
            .where(n.rank == 1).order_by(n.plugin, n.name, n.timestamp).limit(limit)).all()
    elif since is not None:
        rows = list(conn.execute(q.order_by(m.timestamp, m.id).limit(limit)))
    else:
        q = q.order_by(m.timestamp.desc(), m.id.desc())
        rows = list(reversed(conn.execute(q.limit(limit)).all()))
    return [
        {"plugin": r.plugin, "name": r.name, "value": r.value, "labels": r.labels,
         "unit": r.unit, "timestamp": r.timestamp}
        for r in rows
    ]


def purge(conn: Connection, older_than: float) -> int:
    """Delete metric rows with a timestamp before ``older_than``; return how many."""
    result = conn.execute(
        delete(t.metrics).where(t.metrics.c.timestamp < older_than)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def purge_excess(conn: Connection, max_rows: int) -> int:
    """Keep the newest ``max_rows`` rows (by arrival) of each agent and plugin; delete the
    rest and return how many. One grouped count finds the series over the limit; each of
    those costs one lookup and one ranged DELETE."""
    m = t.metrics.c
    over = conn.execute(
        select(m.agent_id, m.plugin).group_by(m.agent_id, m.plugin)
        .having(func.count() > max_rows)
    ).all()
    deleted = 0
    for agent_id, plugin in over:
        cutoff = conn.scalar(
            select(m.id).where(m.agent_id == agent_id, m.plugin == plugin)
            .order_by(m.id.desc()).offset(max_rows).limit(1)
        )
        if cutoff is None:
            continue
        result = conn.execute(delete(t.metrics).where(
            m.agent_id == agent_id, m.plugin == plugin, m.id <= cutoff))
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted
