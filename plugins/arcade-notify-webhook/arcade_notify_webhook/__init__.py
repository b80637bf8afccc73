"""Arcade built-in plugin ``arcade-notify-webhook``: events POSTed as JSON to a URL.

Every event the plugin hears of (a job finished, a plugin failed, ...) is sent as one HTTP
``POST`` of ``event.to_dict()`` — ``{"kind": ..., "data": {...}, "timestamp": ...}`` — to the
configured ``url``. Connection errors, timeouts and ``5xx`` answers are retried with
exponential backoff; a ``4xx`` answer is not (the request itself is wrong, sending it again
cannot help), nor is a redirect (a ``POST`` must not silently turn into a body-less ``GET``).
When no attempt succeeds, ``notify`` raises :class:`DeliveryError`, which the host records
against the plugin.

Only the standard library (:mod:`urllib.request`) is used, so the plugin's environment holds
nothing but the plugin. Error messages name the receiving host but never the URL's path,
query or credentials, nor any header value: webhook URLs and headers often carry secrets.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from typing import IO, Any

from arcade_core import Event, hookimpl

__all__ = ["DeliveryError", "NotifyWebhook"]
__version__ = "1.0.0"

USER_AGENT = f"arcade-notify-webhook/{__version__}"

# RFC 9110 token: what a header field name may consist of.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# How much of a refusing server's answer goes into the error message.
_BODY_EXCERPT = 200


class DeliveryError(RuntimeError):
    """An event could not be delivered: every attempt failed, or the server refused it."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Turns every redirect into an :class:`urllib.error.HTTPError`.

    urllib would follow a ``301``/``302``/``303`` answer to a ``POST`` with a ``GET`` that
    drops the body, and report success for an event nobody received.
    """

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


class _Attempt(Exception):
    """One failed attempt: ``reason`` for the message, ``retry`` whether another may help."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what an error message may show of it."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _parse_url(url: object) -> tuple[str, str | None]:
    """The URL to request (credentials removed) and a Basic ``Authorization`` value for
    credentials written into it (``https://user:pass@host/``), or raise ``ValueError``."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("url is required: the http:// or https:// address to POST events to")
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(
            f"url must start with http:// or https://, not {parts.scheme or 'no scheme'}://"
        )
    if not parts.hostname:
        raise ValueError(f"url {_origin(url)}/... has no host name")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"url {_origin(url)}/... has an invalid port number") from None
    if any(c.isspace() for c in url.strip()):
        raise ValueError("url must not contain whitespace; percent-encode it (%20)")
    authorization = None
    if parts.username is not None or parts.password is not None:
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        authorization = f"Basic {token}"
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host + (f":{port}" if port is not None else "")
    clean = urllib.parse.urlunsplit(
        (parts.scheme.lower(), netloc, parts.path or "/", parts.query, "")
    )
    return clean, authorization


def _check_headers(headers: object) -> dict[str, str]:
    """``headers`` as a ``str → str`` dict of valid header fields, or raise ``ValueError``."""
    if not isinstance(headers, Mapping):
        raise ValueError("headers must be an object of header names to string values")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ValueError(
                f"header name {name!r} is not a valid HTTP field name "
                "(letters, digits and !#$%&'*+.^_`|~- only)"
            )
        if not isinstance(value, str):
            raise ValueError(f"header {name!r} must have a string value")
        if "\r" in value or "\n" in value or "\0" in value:
            raise ValueError(f"header {name!r} must not contain line breaks or NUL")
        checked[name] = value
    return checked


def _excerpt(data: bytes) -> str:
    """The start of a response body, on one line."""
    text = " ".join(data.decode("utf-8", "replace").split())
    return text[:_BODY_EXCERPT] + ("..." if len(text) > _BODY_EXCERPT else "")


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or (
        isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, TimeoutError)
    )


class NotifyWebhook:
    """POSTs each ``notify`` event as JSON to ``url``.

    Config (validated and defaulted by the host against ``arcade-plugin.json``):
    ``url`` (required, ``http://`` or ``https://``; ``user:password@`` in it becomes Basic
    auth); ``timeout`` — seconds to wait for the connection and for each read of one attempt
    (default 5); ``retries`` — further attempts after a connection error, a timeout or a
    ``5xx`` (default 3); ``backoff`` — seconds before the first retry, doubled before each
    further one (default 0.5); ``headers`` — extra request headers (default none).

    One event takes at most ``(retries + 1) * timeout`` plus the backoff pauses; with the
    defaults that is under 24 s, inside the host's default 30 s call timeout. Keep it so
    when changing them.

    Every attempt of one event carries the same ``X-Arcade-Delivery`` id, so a receiver can
    drop the duplicate that a retry after a lost response produces; ``X-Arcade-Event`` holds
    the event's kind.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.url, authorization = _parse_url(config.get("url"))
        self.origin = _origin(self.url)
        timeout = config.get("timeout", 5.0)
        retries = config.get("retries", 3)
        backoff = config.get("backoff", 0.5)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a whole number >= 0, not {retries!r}")
        if isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 0:
            raise ValueError(f"backoff must be a number of seconds >= 0, not {backoff!r}")
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.headers: dict[str, str] = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        if authorization is not None:
            self.headers["Authorization"] = authorization
        self.headers.update(_check_headers(config.get("headers") or {}))
        # The default handlers (proxies from the environment, https with certificate
        # checks) minus redirects.
        self._opener = urllib.request.build_opener(_NoRedirect)

    @hookimpl
    def notify(self, event: Event | Mapping[str, Any]) -> None:
        """POST ``event`` as JSON; raise :class:`DeliveryError` when it cannot be delivered.

        An event that arrives as a plain mapping (already serialised) is sent as is; values
        that are not JSON are sent as their ``str``.
        """
        payload = event.to_dict() if isinstance(event, Event) else dict(event)
        body = json.dumps(payload, separators=(",", ":"), default=str).encode("utf-8")
        headers = {
            **self.headers,
            "X-Arcade-Delivery": uuid.uuid4().hex,
            "X-Arcade-Event": str(payload.get("kind", "")),
        }
        failures: list[str] = []
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                self._post(body, headers)
            except _Attempt as failed:
                failures.append(failed.reason)
                if not failed.retry:
                    raise DeliveryError(
                        f"webhook POST to {self.origin} failed and was not retried: "
                        f"{failed.reason}"
                    ) from None
            else:
                return
        if len(failures) == 1:
            raise DeliveryError(f"webhook POST to {self.origin} failed: {failures[0]}")
        raise DeliveryError(
            f"webhook POST to {self.origin} gave up after {len(failures)} attempts: "
            + "; ".join(f"{i}: {reason}" for i, reason in enumerate(failures, 1))
        )

    def _post(self, body: bytes, headers: Mapping[str, str]) -> None:
        """One attempt; returns on a 2xx answer, else raises :class:`_Attempt`."""
        request = urllib.request.Request(self.url, data=body, headers=dict(headers),
                                         method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(65536)  # let the server finish; the content is not used
        except urllib.error.HTTPError as exc:
            with exc:  # an HTTPError holds the open response
                raise self._refused(exc) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            if _is_timeout(exc):
                raise _Attempt(f"no answer within {self.timeout:g} s (timeout)", retry=True) \
                    from None
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise _Attempt(
                    f"the server's TLS certificate was refused: {reason.verify_message}",
                    retry=False,
                ) from None
            text = reason if isinstance(reason, str) else f"{type(reason).__name__}: {reason}"
            raise _Attempt(f"connection failed ({text})", retry=True) from None

    def _refused(self, exc: urllib.error.HTTPError) -> _Attempt:
        """The :class:`_Attempt` for a non-2xx answer (redirects included)."""
        status = f"HTTP {exc.code} {exc.reason}".rstrip()
        if 300 <= exc.code < 400:
            target = exc.headers.get("Location") if exc.headers else None
            where = f" to {_origin(urllib.parse.urljoin(self.url, target))}" if target else ""
            return _Attempt(
                f"{status}: the server redirects{where}; set url to the final address "
                "(redirects are not followed: a POST would lose its body)",
                retry=False,
            )
        try:
            excerpt = _excerpt(exc.read(4096))
        except (OSError, http.client.HTTPException):
            excerpt = ""
        detail = f" ({excerpt})" if excerpt else ""
        if exc.code >= 500:
            return _Attempt(f"{status}{detail}", retry=True)
        return _Attempt(
            f"{status}{detail}; a 4xx answer means the request is wrong (check the url and "
            "headers), so it is not retried",
            retry=False,
        )
