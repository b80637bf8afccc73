"""``/docs`` works without internet: the page names only the server's own URLs, and each of
them answers (without a token) with the asset it names."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx

from arcade_server.runner import ServerThread


class _Urls(HTMLParser):
    """Every ``src``/``href`` of the page, and every quoted URL in its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.urls += re.findall(r"""(?:url|URL)['"]?\s*[:=]\s*['"]([^'"]+)['"]""", data)


def test_the_docs_page_loads_only_local_assets_and_they_are_served(
    server: ServerThread
) -> None:
    with httpx.Client(base_url=server.http_url, timeout=30) as client:  # no token
        page = client.get("/docs")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        parser = _Urls()
        parser.feed(page.text)
        urls = parser.urls
        assert "//" not in "".join(urls), urls          # no CDN, no other host
        assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css",
                "/openapi.json"} <= set(urls), urls
        for url in urls:
            answer = client.get(url)
            assert answer.status_code == 200, (url, answer.status_code)
            assert len(answer.content) > 100, url
        script = client.get("/docs/assets/swagger-ui-bundle.js")
        assert "javascript" in script.headers["content-type"]
        assert b"SwaggerUIBundle" in script.content
        assert "text/css" in client.get("/docs/assets/swagger-ui.css").headers["content-type"]
        assert client.get("/docs/oauth2-redirect").status_code == 200
        assert client.get("/docs/assets/no-such-file.js").status_code == 404
        assert client.get("/redoc").status_code == 404  # it would load from a CDN
