"""A small HTTP/1.1 client over one keep-alive socket, for :mod:`arcade_server.client`.

Why not httpx or :mod:`http.client`: the ``arcade`` CLI makes one or two requests and exits,
so what it imports is most of what it costs. httpx costs ~110 ms of imports (the whole of
``arcade status`` had to fit in 200 ms); :mod:`http.client` ~35 ms (it parses headers with
:mod:`email` and always imports :mod:`ssl`). This module needs :mod:`socket` alone, and
:mod:`ssl` only for an ``https`` URL.

What it does, and no more: ``http``/``https`` URLs; a request body of bytes or an iterable of
byte chunks (sent as they come, with the ``Content-Length`` the caller gives, so a large
upload never sits in memory); responses framed by ``Content-Length``, ``chunked`` or the end
of the connection; one connection kept alive between calls and opened afresh when the server
has closed it (a request whose body can be sent again is retried once then); a connect
timeout and a read/write timeout. Redirects are not followed. Transport failures raise
:class:`TransportError` (an :class:`OSError`) naming what failed.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

if TYPE_CHECKING:
    import ssl

__all__ = ["Connection", "Response", "Timeout", "TransportError", "query_string"]

_MAX_LINE = 64 * 1024
_MAX_HEADERS = 200
_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
            400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            409: "Conflict", 413: "Payload Too Large", 422: "Unprocessable Entity",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def query_string(params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> str:
    """``?a=1&b=true`` as httpx writes it (booleans in lower case, ``None`` empty)."""
    items = params.items() if isinstance(params, Mapping) else (params or ())
    pairs = []
    for key, value in items:
        for one in value if isinstance(value, list | tuple) else (value,):
            text = ("true" if one else "false") if isinstance(one, bool) else (
                "" if one is None else str(one))
            pairs.append((str(key), text))
    return "?" + urlencode(pairs) if pairs else ""


class TransportError(OSError):
    """Nothing usable came back: no connection, a timeout, a TLS failure, or a reply that is
    not HTTP/1.x."""


@dataclass(frozen=True)
class Timeout:
    """Seconds to wait: ``connect`` for the connection, ``read``/``write`` for each socket
    operation after it (default: ``connect``). Same shape as ``httpx.Timeout(30, read=600)``."""

    connect: float
    read: float | None = None
    write: float | None = None

    @property
    def io(self) -> float:
        """The socket timeout once connected: the longer of read and write."""
        return max(self.read or self.connect, self.write or self.connect)


class Response:
    """A response read whole (the API's answers are small): status, headers, body."""

    def __init__(self, status_code: int, reason: str, headers: dict[str, str], content: bytes,
                 url: str) -> None:
        self.status_code = status_code
        self.reason_phrase = reason or _REASONS.get(status_code, "")
        self.headers = headers  # lower-case names
        self.content = content
        self.url = url

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; :class:`ValueError` when it is not JSON."""
        import json

        return json.loads(self.content)


class Connection:
    """Requests to one ``scheme://host:port``, over one socket kept alive between them."""

    def __init__(self, base_url: str, *, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http:// or https:// URL")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        netloc = self.host if ":" not in self.host else f"[{self.host}]"
        default_port = self.port == (443 if self.scheme == "https" else 80)
        self.host_header = netloc if default_port else f"{netloc}:{self.port}"
        self.origin = f"{self.scheme}://{self.host_header}"
        self._ssl_context = ssl_context
        self._sock: socket.socket | None = None
        self._reader: Any = None  # a buffered binary file over the socket

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def request(self, method: str, target: str, *, headers: Mapping[str, str],
                body: bytes | Iterable[bytes] | None, timeout: Timeout) -> Response:
        """Send ``method target`` (``target``: path and query, below the base URL's path) and
        read the response. Raises :class:`TransportError`."""
        path = self.prefix + target
        replayable = body is None or isinstance(body, bytes)
        reused = self._sock is not None
        try:
            return self._exchange(method, path, headers, body, timeout)
        except (ConnectionError, _Closed) as exc:
            self.close()
            if not (reused and replayable):  # a fresh connection failed: say so
                raise TransportError(str(exc) or type(exc).__name__) from None
        except TimeoutError:
            self.close()
            raise TransportError("timed out") from None
        except OSError as exc:
            self.close()
            raise TransportError(str(exc) or type(exc).__name__) from None
        # The server had closed the kept-alive connection: once more, on a new one.
        try:
            return self._exchange(method, path, headers, body, timeout)
        except TimeoutError:
            self.close()
            raise TransportError("timed out") from None
        except (OSError, _Closed) as exc:
            self.close()
            raise TransportError(str(exc) or type(exc).__name__) from None

    # ---------------------------------------------------------------- the exchange

    def _connect(self, timeout: Timeout) -> socket.socket:
        if self._sock is None:
            # An ASCII host name as bytes: a str would import the idna codec (~2 ms).
            host: str | bytes = self.host.encode() if self.host.isascii() else self.host
            sock = socket.create_connection((host, self.port),  # type: ignore[arg-type]
                                            timeout=timeout.connect)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.scheme == "https":
                    context = self._ssl_context
                    if context is None:
                        import ssl

                        context = ssl.create_default_context()
                    sock = context.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
            self._sock = sock
            self._reader = sock.makefile("rb")
        self._sock.settimeout(timeout.io)
        return self._sock

    def _exchange(self, method: str, path: str, headers: Mapping[str, str],
                  body: bytes | Iterable[bytes] | None, timeout: Timeout) -> Response:
        sock = self._connect(timeout)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host_header}",
                 "Accept-Encoding: identity"]
        names = {name.lower() for name in headers}
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if isinstance(body, bytes) and "content-length" not in names:
            lines.append(f"Content-Length: {len(body)}")
        elif body is None and method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: 0")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if isinstance(body, bytes):
            sock.sendall(head + body)
        else:
            sock.sendall(head)
            for chunk in body or ():
                sock.sendall(chunk)
        return self._read_response(method, path)

    def _line(self) -> bytes:
        line: bytes = self._reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise TransportError("the server sent a line longer than 64 KiB")
        return line

    def _read_response(self, method: str, path: str) -> Response:
        while True:
            status_line = self._line()
            if not status_line:
                raise _Closed("the server closed the connection without answering")
            version, _, rest = status_line.decode("latin-1").rstrip("\r\n").partition(" ")
            code_text, _, reason = rest.partition(" ")
            if not version.startswith("HTTP/1.") or not code_text.isdigit():
                raise TransportError(f"not an HTTP/1.x answer: {status_line[:80]!r}")
            status = int(code_text)
            headers = self._headers()
            if not 100 <= status < 200:
                break  # a 1xx (100 Continue) is followed by the real answer
        keep_alive = version != "HTTP/1.0" and headers.get("connection", "").lower() != "close"
        if method == "HEAD" or status in (204, 304):
            content = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            content = self._chunked()
        elif "content-length" in headers:
            length = int(headers["content-length"])
            content = self._reader.read(length)
            if len(content) != length:
                raise TransportError("the server closed the connection mid-answer")
        else:
            content = self._reader.read()
            keep_alive = False
        if not keep_alive:
            self.close()
        return Response(status, reason, headers, content, self.origin + path)

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self._line().decode("latin-1").rstrip("\r\n")
            if not line:
                return headers
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        raise TransportError(f"the server sent more than {_MAX_HEADERS} headers")

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise TransportError(f"bad chunk size {size_line[:20]!r}") from None
            if size == 0:
                while self._line() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            chunk = self._reader.read(size)
            if len(chunk) != size:
                raise TransportError("the server closed the connection mid-answer")
            parts.append(chunk)
            self._line()  # the CRLF after the chunk


class _Closed(Exception):
    """The kept-alive connection was closed by the server before it answered."""
