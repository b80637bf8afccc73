"""The fleet-view requests of :class:`arcade_server.client.ArcadeClient` ("views" part):
the fleet status, deleting an agent, a plugin's versions, metrics with ``latest``, a
plugin's logs ("truth" part).

A mixin built only on the client's ``_json`` (same arguments as every other method), so it
works whatever transport the client uses, and keeps ``client.py`` small.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

__all__ = ["FleetViews"]


def _query(**params: Any) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


class _Requests(Protocol):
    """What the mixin needs of its client: ``ArcadeClient._json``."""

    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...


class FleetViews:
    """Requests of the fleet views, for a client with ``_json`` (:class:`ArcadeClient`)."""

    def fleet_status(self: _Requests, selector: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Every agent (with all of ``selector``'s labels) × its plugins, with counts."""
        text = ",".join(f"{k}={v}" for k, v in (selector or {}).items())
        result: dict[str, Any] = self._json("GET", "/status",
                                            params=_query(selector=text or None))
        return result

    def delete_agent(self: _Requests, agent_id: str, *, force: bool = False) -> dict[str, Any]:
        """Delete an agent's rows and revoke its identity (refused while online unless
        ``force``)."""
        result: dict[str, Any] = self._json(
            "DELETE", f"/agents/{quote(agent_id, safe='')}",
            params=_query(force="true" if force else None))
        return result

    def plugin_versions(self: _Requests, name: str) -> list[dict[str, Any]]:
        """A plugin's published versions, newest first."""
        result: list[dict[str, Any]] = self._json(
            "GET", f"/plugins/{quote(name, safe='')}/versions")
        return result

    def metric_values(self: _Requests, agent_id: str, *, name: str | None = None,
                      since: float | None = None, limit: int | None = None,
                      latest: bool = False) -> list[dict[str, Any]]:
        """Stored metrics, oldest first; ``latest``: only the newest value of each series."""
        params = _query(name=name, since=since, limit=limit,
                        latest="true" if latest else None)
        result: list[dict[str, Any]] = self._json(
            "GET", f"/agents/{quote(agent_id, safe='')}/metrics", params=params)
        return result

    def plugin_logs(self: _Requests, agent_id: str, name: str, *, after: int = 0, limit: int = 100
                    ) -> dict[str, Any]:
        """The last lines ``name`` logged on ``agent_id``: ``lines`` (oldest first) and
        ``last_seq`` (pass it as ``after`` to read only newer ones)."""
        path = f"/agents/{quote(agent_id, safe='')}/plugins/{quote(name, safe='')}/logs"
        result: dict[str, Any] = self._json("GET", path, params={"after": after, "limit": limit})
        return result
