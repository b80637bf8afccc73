"""The signing requests of :class:`arcade_server.client.ArcadeClient`: add a signature to a
published version, read and set the keys a claimed plugin name accepts.

A mixin built only on the client's ``_json`` (like :mod:`._client_views`), which keeps
``client.py`` small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import quote

__all__ = ["SigningRequests"]


class _Requests(Protocol):
    """What the mixin needs of its client: ``ArcadeClient._json``."""

    def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...


class SigningRequests:
    """Signatures and publish-policy keys, for a client with ``_json``."""

    def add_signature(self: _Requests, name: str, version: str, *, public_key: str,
                      signature: str) -> dict[str, Any]:
        """Add a signature (base64) by ``public_key`` (base64 raw key) of the statement of
        ``name==version``; returns ``{"key_id", "created_at"}``."""
        result: dict[str, Any] = self._json(
            "POST", f"/plugins/{quote(name, safe='')}/versions/{quote(version, safe='')}"
            "/signatures", json={"public_key": public_key, "signature": signature})
        return result

    def plugin_keys(self: _Requests, name: str) -> dict[str, Any]:
        """The keys new versions of ``name`` must be signed by (none: not claimed)."""
        result: dict[str, Any] = self._json("GET", f"/plugins/{quote(name, safe='')}/keys")
        return result

    def set_plugin_keys(self: _Requests, name: str, keys: Sequence[str]) -> dict[str, Any]:
        """Replace the keys (base64 raw public keys) ``name`` accepts (an admin's call)."""
        result: dict[str, Any] = self._json("PUT", f"/plugins/{quote(name, safe='')}/keys",
                                            json={"keys": list(keys)})
        return result
