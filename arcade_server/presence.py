"""In-memory "last seen" and "left" times of the agents connected to this process.

A heartbeat only touches a dict; :meth:`Presence.take_dirty` hands the changes to a periodic
flush that writes them to the database in one batch (so other replicas, and this one after a
restart, see them too).

An agent is online while its last sign of life is younger than ``offline_after`` (three
heartbeat intervals by default: a half-open connection goes offline within three beats) and
it has not left since: :meth:`Presence.left` records the moment its last stream to this
process closed, so a closed stream is offline at once instead of ``offline_after`` later.
Departures are flushed with the last-seen times (``agents.disconnected_at``), so another
replica, or this one after a restart, does not show a departed agent online either.
"""

from __future__ import annotations

import time

__all__ = ["Presence"]


class Presence:
    """Last-seen and left times by agent id (event-loop thread only)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._left: dict[str, float] = {}
        self._dirty: dict[str, tuple[float, int]] = {}
        self._dirty_left: dict[str, float] = {}

    def touch(self, agent_id: str, applied_revision: int = 0, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._seen[agent_id] = now
        self._dirty[agent_id] = (now, applied_revision)

    def left(self, agent_id: str, now: float | None = None) -> None:
        """The agent's last stream to this process closed: it is offline from ``now`` until
        it is seen again."""
        now = time.time() if now is None else now
        self._left[agent_id] = now
        self._dirty_left[agent_id] = now

    def last_seen(self, agent_id: str) -> float | None:
        return self._seen.get(agent_id)

    def left_at(self, agent_id: str) -> float | None:
        """When the agent's stream to this process closed (``None``: it has not)."""
        return self._left.get(agent_id)

    def snapshot(self) -> dict[str, float]:
        return dict(self._seen)

    def departures(self) -> dict[str, float]:
        """``{agent_id: left_at}`` of every agent that left this process."""
        return dict(self._left)

    def forget(self, agent_id: str) -> None:
        """Drop everything about a deleted agent (a late flush must not touch its row)."""
        for table in (self._seen, self._left, self._dirty, self._dirty_left):
            table.pop(agent_id, None)

    def take_dirty(self) -> dict[str, tuple[float, int]]:
        dirty, self._dirty = self._dirty, {}
        return dirty

    def take_departures(self) -> dict[str, float]:
        """Departures not yet written to the database (cleared)."""
        left, self._dirty_left = self._dirty_left, {}
        return left

    def restore_dirty(self, dirty: dict[str, tuple[float, int]],
                      left: dict[str, float] | None = None) -> None:
        """Put back changes a failed flush could not write (newer changes win)."""
        for agent_id, value in dirty.items():
            self._dirty.setdefault(agent_id, value)
        for agent_id, at in (left or {}).items():
            self._dirty_left.setdefault(agent_id, at)
