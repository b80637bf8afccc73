"""The package index requests of :class:`arcade_server.client.ArcadeClient` (issue 15, part
"index"): import a plugin from an index, and the newer versions an index has.

A mixin built only on the client's ``_json``, like :mod:`arcade_server._client_views`.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

from ._http import Timeout

__all__ = ["IndexRequests"]

#: An import resolves and downloads on the server (its import_timeout, 300 s by default):
#: the answer may take that long.
IMPORT_TIMEOUT = Timeout(30.0, read=900.0, write=60.0)


class _Requests(Protocol):
    """What the mixin needs of its client: ``ArcadeClient._json``."""

    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...


class IndexRequests:
    """Requests of the package index routes, for a client with ``_json``."""

    def import_plugin(self: _Requests, requirement: str, *, index_url: str | None = None
                      ) -> dict[str, Any]:
        """Publish ``requirement`` (e.g. ``arcade-foo==1.2``) and its dependencies from the
        index (default: the server's); ``created`` is false for an identical re-publish."""
        body: dict[str, Any] = {"requirement": requirement}
        if index_url is not None:
            body["index_url"] = index_url
        result: dict[str, Any] = self._json("POST", "/plugins/import", json=body,
                                            timeout=IMPORT_TIMEOUT)
        return result

    def plugin_updates(self: _Requests, name: str, *, index_url: str | None = None
                       ) -> dict[str, Any]:
        """The versions newer than the newest published one on the plugin's index."""
        params = {"index_url": index_url} if index_url is not None else {}
        result: dict[str, Any] = self._json(
            "GET", f"/plugins/{quote(name, safe='')}/updates", params=params,
            timeout=Timeout(30.0, read=90.0))
        return result
