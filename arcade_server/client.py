"""A small typed client for Arcade's REST API, used by the ``arcade`` CLI.

Every error becomes an :class:`ApiError` whose message is the server's one-line ``error``
(what to fix), :class:`ApiUnauthorized` when the server refuses the credentials (a 401: the
message says how to log in), or :class:`ApiUnreachable` when nothing answers at the URL.
Calls carry ``Authorization: Bearer <token>`` when a token is given; an HTTPS server is
trusted through ``ca_file`` (the server's ``ca.pem``) or the system's CAs. Uploads stream
from disk as multipart, with a progress callback, never reading a wheel whole into memory.

The transport is :mod:`arcade_server._http` (the standard library's :mod:`socket`, and
:mod:`ssl` for HTTPS only), not httpx: ``arcade status`` imports little more than argparse, so
it answers within 200 ms. :meth:`ArcadeClient._request` takes httpx's keyword arguments
(``params``, ``json``, ``content``, ``headers``, ``timeout``: seconds or a :class:`Timeout`) and
returns a :class:`Response` with httpx's ``status_code``, ``content``, ``text`` and ``json()``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ._api_errors import (
    DEFAULT_API,
    LOGIN_HINT,
    ApiError,
    ApiUnauthorized,
    ApiUnreachable,
    default_api_url,
)
from ._client_assign import AssignRequests
from ._client_index import IndexRequests
from ._client_signing import SigningRequests
from ._client_views import FleetViews
from ._http import Connection, Response, Timeout, TransportError, query_string

if TYPE_CHECKING:
    import ssl

__all__ = ["DEFAULT_API", "LOGIN_HINT", "ApiError", "ApiUnauthorized", "ApiUnreachable",
           "ArcadeClient", "Response", "Timeout", "default_api_url"]


def _query(**params: Any) -> dict[str, Any]:
    """Query parameters without the ones left unset (``None``)."""
    return {key: value for key, value in params.items() if value is not None}


class ArcadeClient(AssignRequests, FleetViews, IndexRequests, SigningRequests):
    """Typed calls to ``/api/v1``; use as a context manager or call :meth:`close`."""

    def __init__(self, api_url: str | None = None, *, token: str | None = None,
                 ca_file: str | os.PathLike[str] | None = None, timeout: float = 30.0) -> None:
        """``token``: sent as ``Authorization: Bearer``; ``ca_file``: the CA certificate(s)
        an HTTPS server's certificate must chain to (default: the system's)."""
        self.api_url = (api_url or default_api_url()).rstrip("/")
        context: ssl.SSLContext | None = None
        if ca_file is not None:
            import ssl

            try:
                context = ssl.create_default_context(cafile=os.fspath(ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise ApiError(0, f"cannot use the CA file {os.fspath(ca_file)!r}: "
                               f"{getattr(exc, 'strerror', None) or exc}") from None
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = Timeout(timeout)
        try:
            self._http = Connection(self.api_url + "/api/v1", ssl_context=context)
        except ValueError:
            raise ApiError(0, f"the API URL {self.api_url!r} is not an http:// or https:// "
                           f"URL: give one such as {DEFAULT_API}") from None

    def __enter__(self) -> ArcadeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ---------------------------------------------------------------- plumbing

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        json: Any = None,
        content: bytes | str | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | Timeout | None = None,
    ) -> Response:
        """Send one request below ``/api/v1``; an error status raises :class:`ApiError`."""
        sent = {**self._headers, **(headers or {})}
        body: bytes | Iterable[bytes] | None
        if json is not None:
            import json as jsonlib

            body = jsonlib.dumps(json).encode()
            sent.setdefault("Content-Type", "application/json")
        elif isinstance(content, str):
            body = content.encode()
        else:
            body = content
        if timeout is None:
            limit = self._timeout
        else:
            limit = timeout if isinstance(timeout, Timeout) else Timeout(timeout)
        try:
            response = self._http.request(method, path + query_string(params), headers=sent,
                                          body=body, timeout=limit)
        except TransportError as exc:
            raise ApiUnreachable(self.api_url, str(exc)) from None
        if response.status_code >= 400:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if response.status_code == 401:
                reason = answer.get("error") if isinstance(answer, dict) else None
                reason = str(reason or "the server needs an API token").split(": send ")[0]
                raise ApiUnauthorized(401, f"{self.api_url} refused the request ({reason}): "
                                      + LOGIN_HINT)
            if isinstance(answer, dict) and "error" in answer:
                raise ApiError(response.status_code, str(answer["error"]), answer.get("detail"),
                               answer.get("hints"))
            if isinstance(answer, dict) and "detail" in answer:
                raise ApiError(response.status_code, str(answer["detail"]), answer.get("detail"))
            raise ApiError(
                response.status_code,
                f"HTTP {response.status_code} from {response.url}: "
                f"{response.text[:200] or response.reason_phrase}",
            )
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        return response.json() if response.content else None

    # ---------------------------------------------------------------- registry

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", "/health")
        return result

    def publish(
        self,
        wheels: Sequence[str | os.PathLike[str]],
        *,
        progress: Callable[[int], None] | None = None,
        validate_only: bool = False,
        fields: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Upload the plugin wheel and its dependency wheels (with ``fields``: a signature,
        see :func:`arcade_server.cli._signing.sign_upload`); return (status, version)."""
        from ._multipart import MultipartWheels

        paths = [Path(w) for w in wheels]
        for path in paths:
            if not path.is_file():
                raise ApiError(0, f"{path} is not a file")
        body = MultipartWheels(paths, progress, fields)
        response = self._request(
            "POST",
            "/plugins/validate" if validate_only else "/plugins",
            content=iter(body),
            headers={"Content-Type": body.content_type, "Content-Length": str(body.length)},
            timeout=Timeout(30.0, read=600.0, write=600.0),
        )
        result: dict[str, Any] = response.json()
        return response.status_code, result

    def upload_size(self, wheels: Sequence[str | os.PathLike[str]]) -> int:
        """The number of bytes :meth:`publish` will send for ``wheels``."""
        from ._multipart import MultipartWheels

        return MultipartWheels([Path(w) for w in wheels], None).length

    def plugins(self, *, type: str | None = None, enabled: bool | None = None,
                text: str | None = None) -> list[dict[str, Any]]:
        params = _query(type=type, enabled=enabled, text=text)
        result: list[dict[str, Any]] = self._json("GET", "/plugins", params=params)
        return result

    def plugin(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/plugins/{quote(name, safe='')}")
        return result

    def version(self, name: str, version: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json(
            "GET", f"/plugins/{quote(name, safe='')}/versions/{quote(version, safe='')}"
        )
        return result

    def delete_version(self, name: str, version: str) -> None:
        self._request(
            "DELETE", f"/plugins/{quote(name, safe='')}/versions/{quote(version, safe='')}"
        )

    def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        action = "enable" if enabled else "disable"
        result: dict[str, Any] = self._json("POST", f"/plugins/{quote(name, safe='')}/{action}")
        return result

    # ---------------------------------------------------------------- agents

    def agents(self, *, labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        params = [("label", f"{k}={v}") for k, v in (labels or {}).items()]
        result: list[dict[str, Any]] = self._json("GET", "/agents", params=params)
        return result

    def agent(self, agent_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/agents/{quote(agent_id, safe='')}")
        return result

    def agent_plugins(self, agent_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json(
            "GET", f"/agents/{quote(agent_id, safe='')}/plugins"
        )
        return result

    def metrics(self, agent_id: str, *, name: str | None = None, since: float | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
        params = _query(name=name, since=since, limit=limit)
        result: list[dict[str, Any]] = self._json(
            "GET", f"/agents/{quote(agent_id, safe='')}/metrics", params=params
        )
        return result

    # ---------------------------------------------------------------- desired state

    def _wait_params(self, wait: float | None) -> tuple[dict[str, Any], Timeout | None]:
        if not wait:
            return {}, None
        return {"wait": wait}, Timeout(30.0, read=wait + 30.0)

    def install(
        self,
        agent_id: str,
        spec: str,
        *,
        config: Mapping[str, Any] | None = None,
        isolation: str | None = None,
        wait: float | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Install ``spec`` on one agent; return (status, body): 200 reported, 202 accepted."""
        params, timeout = self._wait_params(wait)
        body: dict[str, Any] = {"plugin": spec}
        if config is not None:
            body["config"] = dict(config)
        if isolation:
            body["isolation"] = isolation
        extra: dict[str, Any] = {"timeout": timeout} if timeout else {}
        response = self._request(
            "POST", f"/agents/{quote(agent_id, safe='')}/plugins", json=body, params=params,
            **extra,
        )
        result: dict[str, Any] = response.json()
        return response.status_code, result

    # ---------------------------------------------------------------- jobs

    def create_job(
        self,
        agent_id: str,
        commands: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        plugins: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """Create a job (queued); ``plugins`` are ``{"plugin", "stage", "order", "config",
        "isolation"}`` entries. Returns the job, with ``connected`` (sent at once or not)."""
        body: dict[str, Any] = {"agent": agent_id, "commands": list(commands),
                                "env": dict(env or {}), "plugins": [dict(p) for p in plugins]}
        if timeout is not None:
            body["timeout"] = timeout
        result: dict[str, Any] = self._json("POST", "/jobs", json=body)
        return result

    def job(self, job_id: str) -> dict[str, Any]:
        """One job with its output tail and per-plugin records."""
        result: dict[str, Any] = self._json("GET", f"/jobs/{quote(job_id, safe='')}")
        return result

    def jobs(self, *, agent: str | None = None, status: str | None = None,
             limit: int | None = None) -> list[dict[str, Any]]:
        """Jobs, newest first."""
        params = _query(agent=agent, status=status, limit=limit)
        result: list[dict[str, Any]] = self._json("GET", "/jobs", params=params)
        return result

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued (at once) or running (via its agent) job."""
        result: dict[str, Any] = self._json("POST", f"/jobs/{quote(job_id, safe='')}/cancel")
        return result

    # ---------------------------------------------------------------- access

    def whoami(self) -> dict[str, Any]:
        """The caller the token stands for: name, role, kind."""
        result: dict[str, Any] = self._json("GET", "/whoami")
        return result

    def create_token(self, name: str, role: str, *, ttl: float | None = None
                     ) -> dict[str, Any]:
        """A new API token; its secret is in ``token`` (shown once)."""
        body: dict[str, Any] = {"name": name, "role": role}
        if ttl is not None:
            body["ttl"] = ttl
        result: dict[str, Any] = self._json("POST", "/tokens", json=body)
        return result

    def tokens(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json("GET", "/tokens")
        return result

    def revoke_token(self, ref: str) -> dict[str, Any]:
        """Revoke a token by name or id."""
        result: dict[str, Any] = self._json("DELETE", f"/tokens/{quote(ref, safe='')}")
        return result

    def audit(self, *, since: float | None = None, until: float | None = None,
              actor: str | None = None, target: str | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
        """Audit rows, newest first."""
        params = _query(since=since, until=until, actor=actor, target=target, limit=limit)
        result: list[dict[str, Any]] = self._json("GET", "/audit", params=params)
        return result

    # ---------------------------------------------------------------- agent identity

    def create_enrollment_token(self, *, labels: Mapping[str, str] | None = None,
                                ttl: float | None = None, uses: int | None = None,
                                name: str = "") -> dict[str, Any]:
        """A new enrollment token; its secret is in ``token`` (shown once), the CA pin in
        ``ca_hash``."""
        body = _query(labels=dict(labels or {}), ttl=ttl, uses=uses, name=name)
        result: dict[str, Any] = self._json("POST", "/enrollment-tokens", json=body)
        return result

    def enrollment_tokens(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json("GET", "/enrollment-tokens")
        return result

    def delete_enrollment_token(self, token_id: str) -> None:
        self._json("DELETE", f"/enrollment-tokens/{quote(token_id, safe='')}")

    def revoke_agent(self, agent_id: str) -> dict[str, Any]:
        """End the agent's stream and refuse its certificates from now on."""
        result: dict[str, Any] = self._json("POST", f"/agents/{quote(agent_id, safe='')}/revoke")
        return result

    # ---------------------------------------------------------------- desired-state changes

    def uninstall_plugin(self, name: str, *, agent: str | None = None,
                         selector: Mapping[str, str] | None = None,
                         wait: float | None = None) -> dict[str, Any]:
        """Remove ``name`` from ``agent`` or every agent matching ``selector`` (``wait``:
        until they report it removed, else ``timed_out``)."""
        if agent is None:
            return self._waiting("POST", "/assignments/remove", wait,
                                 json={"selector": dict(selector or {}), "plugin": name})
        return self._waiting(
            "DELETE", f"/agents/{quote(agent, safe='')}/plugins/{quote(name, safe='')}", wait)

    def _waiting(self, method: str, path: str, wait: float | None, **kwargs: Any
                 ) -> dict[str, Any]:
        params, timeout = self._wait_params(wait)
        extra: dict[str, Any] = {"timeout": timeout} if timeout else {}
        result: dict[str, Any] = self._json(method, path, params=params, **kwargs, **extra)
        return result
