"""The desired-state change requests of :class:`arcade_server.client.ArcadeClient` ("assign"
part): install on one agent or a selector, and change an assignment in place (config,
interval, resource limits).

A mixin built only on the client's ``_waiting`` (a request answered with the change's body,
``wait``: held until the agents report), so ``client.py`` stays small.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

__all__ = ["KEEP", "AssignRequests"]


class _Keep:
    """The type of :data:`KEEP`."""

    def __repr__(self) -> str:
        return "KEEP"


#: "Not given: the assignment keeps its current value" (``None`` sends null: the default).
KEEP = _Keep()


class _Requests(Protocol):
    """What the mixin needs of its client: ``ArcadeClient._waiting``."""

    def _waiting(self, method: str, path: str, wait: float | None, **kwargs: Any
                 ) -> dict[str, Any]: ...


def _plugin_path(agent_id: str, name: str) -> str:
    return f"/agents/{quote(agent_id, safe='')}/plugins/{quote(name, safe='')}"


class AssignRequests:
    """Desired-state changes, for a client with ``_waiting`` (:class:`ArcadeClient`)."""

    def install_plugin(self: _Requests, spec: str, *, agent: str | None = None,
                       selector: Mapping[str, str] | None = None,
                       config: Mapping[str, Any] | None = None, isolation: str | None = None,
                       reset_config: bool = False, interval: float | None = None,
                       resources: Mapping[str, str] | None = None,
                       wait: float | None = None) -> dict[str, Any]:
        """Install ``spec`` on ``agent`` or every agent matching ``selector``; a config,
        isolation, interval (seconds) or resource limits (``{"memory": "128Mi"}``) not given
        are kept (``reset_config``: the default config and interval). ``timed_out`` in the
        body: ``wait`` ran out before the agents reported running or failed."""
        body: dict[str, Any] = {"plugin": spec}
        if config is not None:
            body["config"] = dict(config)
        if isolation:
            body["isolation"] = isolation
        if reset_config:
            body["reset_config"] = True
        if interval is not None:
            body["interval"] = interval
        if resources is not None:
            body["resources"] = dict(resources)
        if agent is None:
            body["selector"] = dict(selector or {})
        path = "/assignments" if agent is None else f"/agents/{quote(agent, safe='')}/plugins"
        return self._waiting("POST", path, wait, json=body)

    def update_plugin(self: _Requests, agent_id: str, name: str, *,
                      config: Mapping[str, Any] | None = None,
                      interval: float | _Keep | None = KEEP,
                      resources: Mapping[str, str] | _Keep | None = KEEP,
                      wait: float | None = None) -> dict[str, Any]:
        """Change ``name`` on ``agent_id`` in place: a new config (``None``: kept), interval
        (``None``: back to the default) and/or resource limits (``None`` or ``{}``: no
        override); :data:`KEEP` (the default) leaves one as it is."""
        body: dict[str, Any] = {}
        if config is not None:
            body["config"] = dict(config)
        if not isinstance(interval, _Keep):
            body["interval"] = interval
        if not isinstance(resources, _Keep):
            body["resources"] = None if resources is None else dict(resources)
        return self._waiting("PATCH", _plugin_path(agent_id, name), wait, json=body)
