"""In-memory "last seen" times of the agents connected to this process.

A heartbeat only touches a dict; :meth:`Presence.take_dirty` hands the changes to a periodic
flush that writes them to the database in one batch (so other replicas, and this one after a
restart, see them too).
"""

from __future__ import annotations

import time

__all__ = ["Presence"]


class Presence:
    """Last-seen times and applied revisions by agent id (event-loop thread only)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._dirty: dict[str, tuple[float, int]] = {}

    def touch(self, agent_id: str, applied_revision: int = 0, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._seen[agent_id] = now
        self._dirty[agent_id] = (now, applied_revision)

    def last_seen(self, agent_id: str) -> float | None:
        return self._seen.get(agent_id)

    def snapshot(self) -> dict[str, float]:
        return dict(self._seen)

    def take_dirty(self) -> dict[str, tuple[float, int]]:
        dirty, self._dirty = self._dirty, {}
        return dirty

    def restore_dirty(self, dirty: dict[str, tuple[float, int]]) -> None:
        """Put back changes a failed flush could not write (newer touches win)."""
        for agent_id, value in dirty.items():
            self._dirty.setdefault(agent_id, value)
