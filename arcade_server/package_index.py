"""A package index read by the server: PEP 691 JSON or PEP 503 HTML project pages.

``POST /api/v1/plugins/import`` and ``GET /api/v1/plugins/{name}/updates`` make the server
fetch from an index that a publisher names, so the URL is checked here first
(:func:`check_index_url`): only ``http``/``https`` (never ``file:``, ``ftp:`` or others),
no credentials in it (they would be stored with the version and shown), optionally only
the prefixes the operator allows (``index_allow``); redirects are followed only to
``http``/``https``. Pages are read with a timeout and at most :data:`MAX_PAGE_BYTES`.
A page gives each file's URL and the hashes the index publishes (``#sha256=`` fragments in
HTML, ``hashes`` in JSON), which the importer checks every downloaded wheel against.

Blocking (``urllib``): call from a worker thread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from .errors import IndexUnavailable, Invalid, ServiceError, SettingsError

__all__ = [
    "DEFAULT_INDEX_URL",
    "MAX_PAGE_BYTES",
    "IndexFile",
    "ProjectPage",
    "check_index_url",
    "fetch_project",
    "index_settings",
    "parse_page",
    "redact",
]

DEFAULT_INDEX_URL = "https://pypi.org/simple/"
#: Largest project page read (PyPI's biggest pages are a few MiB).
MAX_PAGE_BYTES = 32 * 1024 * 1024
_ACCEPT = ("application/vnd.pypi.simple.v1+json, "
           "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class IndexFile:
    """One file a project page lists, with the sha256 the index publishes (if any)."""

    filename: str
    url: str
    sha256: str | None
    yanked: bool = False

    @property
    def version(self) -> Version | None:
        """The version its filename carries (None for a name that is no wheel or sdist)."""
        try:
            if self.filename.endswith(".whl"):
                return parse_wheel_filename(self.filename)[1]
            return parse_sdist_filename(self.filename)[1]
        except (InvalidWheelFilename, InvalidVersion, ValueError):
            return None


@dataclass(frozen=True)
class ProjectPage:
    """A project's files on an index."""

    url: str
    files: tuple[IndexFile, ...]

    def file(self, filename: str) -> IndexFile | None:
        return next((f for f in self.files if f.filename == filename), None)

    def versions(self, *, wheels_only: bool = True) -> list[Version]:
        """Distinct versions, newest first, of files not yanked (only wheels by default)."""
        found = {f.version for f in self.files
                 if not f.yanked and (f.filename.endswith(".whl") or not wheels_only)}
        return sorted((v for v in found if v is not None), reverse=True)


def redact(url: str) -> str:
    """``url`` without any user or password, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.hostname or "").geturl()


def check_index_url(url: str, allowed: Sequence[str] = ()) -> str:
    """The index URL, normalised to end with ``/``, or :class:`Invalid` saying what to fix."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        raise Invalid(f"index_url {redact(text)!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise Invalid(
            f"index_url must be an http:// or https:// URL of a PEP 503/691 index, got "
            f"{parts.scheme + ':' if parts.scheme else 'no scheme'} ({redact(text)!r}); the "
            "server fetches it, so local files and other schemes are refused")
    if not parts.hostname:
        raise Invalid(f"index_url {text!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise Invalid(
            "index_url must not carry credentials (they would be stored with the imported "
            "version): give the server network access to the index instead")
    if parts.fragment:
        raise Invalid(f"index_url {text!r} must not have a #fragment")
    if len(text) > 1000:
        raise Invalid("index_url is longer than 1000 characters")
    if not parts.path.endswith("/"):
        text = parts._replace(path=parts.path + "/").geturl()
    if allowed and not any(text.startswith(prefix) for prefix in allowed):
        raise Invalid(
            f"index_url {text!r} is not one of the indexes this server may import from "
            f"(setting index_allow: {', '.join(allowed)})")
    return text


def index_settings(index_url: str, allow: Sequence[str] | str) -> dict[str, Any]:
    """The server settings ``index_url`` and ``index_allow`` checked and normalised (a
    comma-separated string of prefixes is split), or :class:`SettingsError` naming them."""
    if isinstance(allow, str):
        allow = [part.strip() for part in allow.split(",") if part.strip()]
    try:
        prefixes = tuple(check_index_url(str(prefix)) for prefix in allow)
    except ServiceError as exc:
        raise SettingsError(f"index_allow: {exc.message}") from None
    try:
        url = check_index_url(str(index_url), prefixes)
    except ServiceError as exc:
        raise SettingsError(f"index_url: {exc.message}") from None
    return {"index_url": url, "index_allow": prefixes}


class _Links(HTMLParser):
    """The ``<a>`` elements of a PEP 503 page: (href, text, data-yanked present)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, bool]] = []
        self._open: tuple[str, bool] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            values = dict(attrs)
            self._open = (values.get("href") or "", "data-yanked" in values)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.links.append((self._open[0], "".join(self._text).strip(), self._open[1]))
            self._open = None


def _sha256_of_fragment(url: str) -> str | None:
    fragment = urlsplit(url).fragment
    if fragment.startswith("sha256="):
        digest = fragment[len("sha256="):].lower()
        return digest if _SHA256.match(digest) else None
    return None


def parse_page(url: str, content_type: str, body: bytes) -> ProjectPage:
    """A project page from its bytes: PEP 691 JSON when the type says so, else PEP 503 HTML.
    Relative file URLs are resolved against ``url``; fragments are dropped from them."""
    files: list[IndexFile] = []
    if "json" in content_type:
        try:
            data: Any = json.loads(body)
            entries = data["files"]
        except (ValueError, KeyError, TypeError):
            raise Invalid(f"{url} is not a PEP 691 project page (JSON without 'files')"
                          ) from None
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
                continue
            hashes = entry.get("hashes")
            hashes = hashes if isinstance(hashes, dict) else {}
            digest = str(hashes.get("sha256", "")).lower()
            files.append(IndexFile(entry["filename"],
                                   urljoin(url, str(entry.get("url", ""))).split("#")[0],
                                   digest if _SHA256.match(digest) else None,
                                   bool(entry.get("yanked"))))
        return ProjectPage(url, tuple(files))
    parser = _Links()
    parser.feed(body.decode("utf-8", "replace"))
    for href, text, yanked in parser.links:
        absolute = urljoin(url, href)
        filename = text or urlsplit(absolute).path.rsplit("/", 1)[-1]
        files.append(IndexFile(filename, absolute.split("#")[0],
                               _sha256_of_fragment(absolute), yanked))
    return ProjectPage(url, tuple(files))


def _opener() -> Any:
    """A urllib opener that follows redirects only to http(s) (imported here: the settings
    import this module, and the CLI must not load ``http.client``)."""
    import urllib.request

    class HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                             headers: Any, newurl: str) -> urllib.request.Request | None:
            if urlsplit(newurl).scheme not in ("http", "https"):
                raise IndexUnavailable(f"{req.full_url} redirects to {redact(newurl)!r}, "
                                       "which is not http(s): refused")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return urllib.request.build_opener(HttpOnlyRedirects())


def fetch_project(index_url: str, name: str, *, timeout: float) -> ProjectPage | None:
    """The project page of ``name`` on the index (None when the index has no such project).
    :class:`IndexUnavailable` when the index cannot be read."""
    import urllib.error
    import urllib.request

    url = f"{index_url}{canonicalize_name(name)}/"
    opener = _opener()
    request = urllib.request.Request(url, headers={"Accept": _ACCEPT,
                                                   "User-Agent": "arcade-server"})
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_PAGE_BYTES + 1)
            content_type = response.headers.get("Content-Type", "")
            final_url = response.geturl()
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 404:
            return None
        if 300 <= exc.code < 400:
            raise IndexUnavailable(f"{redact(url)} redirects to a URL that is not http(s), or "
                                   "too many times: refused") from None
        raise IndexUnavailable(f"the index answered {exc.code} for {redact(url)}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise IndexUnavailable(f"cannot read the index at {redact(url)}: {reason}") from None
    if len(body) > MAX_PAGE_BYTES:
        raise IndexUnavailable(f"{redact(url)} is over {MAX_PAGE_BYTES} bytes: refused")
    return parse_page(final_url, content_type.lower(), body)
