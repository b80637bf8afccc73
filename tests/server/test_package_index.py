"""The package index reader and the import platforms: real page text, a real loopback
server for redirects, no network beyond loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.version import Version

from arcade_server.errors import IndexUnavailable, Invalid, SettingsError
from arcade_server.package_index import check_index_url, fetch_project, parse_page
from arcade_server.platforms import Platform, server_platform
from arcade_server.settings import Settings

DIGEST = "a" * 64


def test_pep_503_page_gives_files_hashes_and_yanked() -> None:
    page = parse_page("https://index.example/simple/foo/", "text/html", f"""
        <html><body>
        <a href="../../files/foo-1.0-py3-none-any.whl#sha256={DIGEST}">foo-1.0-py3-none-any.whl</a>
        <a href="https://cdn.example/foo-1.1-py3-none-any.whl#md5=abc">foo-1.1-py3-none-any.whl</a>
        <a href="foo-2.0-py3-none-any.whl" data-yanked="broken">foo-2.0-py3-none-any.whl</a>
        <a href="foo-1.2.tar.gz#sha256={DIGEST}">foo-1.2.tar.gz</a>
        </body></html>""".encode())
    first = page.file("foo-1.0-py3-none-any.whl")
    assert first is not None
    assert (first.url, first.sha256) == (
        "https://index.example/files/foo-1.0-py3-none-any.whl", DIGEST)
    second = page.file("foo-1.1-py3-none-any.whl")
    assert second is not None and second.sha256 is None
    assert page.versions() == [Version("1.1"), Version("1.0")]
    assert page.versions(wheels_only=False) == [Version("1.2"), Version("1.1"), Version("1.0")]


def test_pep_691_json_page() -> None:
    body = json.dumps({"meta": {"api-version": "1.1"}, "name": "foo", "files": [
        {"filename": "foo-1.0-py3-none-any.whl", "url": "/f/foo-1.0-py3-none-any.whl",
         "hashes": {"sha256": DIGEST.upper()}},
        {"filename": "foo-0.9-py3-none-any.whl", "url": "x", "hashes": None, "yanked": True},
        "junk"]}).encode()
    page = parse_page("https://i.example/simple/foo/", "application/vnd.pypi.simple.v1+json",
                      body)
    first = page.file("foo-1.0-py3-none-any.whl")
    assert first is not None and first.sha256 == DIGEST
    assert first.url == "https://i.example/f/foo-1.0-py3-none-any.whl"
    assert page.versions() == [Version("1.0")]
    with pytest.raises(Invalid, match="not a PEP 691 project page"):
        parse_page("https://i.example/simple/foo/", "application/json", b"[]")


@pytest.mark.parametrize(("url", "expected"), [
    ("https://pypi.org/simple", "https://pypi.org/simple/"),
    ("http://127.0.0.1:8080/simple/", "http://127.0.0.1:8080/simple/"),
])
def test_index_urls_accepted(url: str, expected: str) -> None:
    assert check_index_url(url) == expected


@pytest.mark.parametrize(("url", "message"), [
    ("file:///etc/", "http:// or https://"),
    ("gopher://x/", "http:// or https://"),
    ("https://u:p@x.example/simple/", "credentials"),
    ("https:///simple/", "no host"),
    ("https://x.example/simple/#frag", "fragment"),
    ("https://x.example:99999/", "not a URL"),
])
def test_index_urls_refused(url: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        check_index_url(url)


def test_allowed_prefixes() -> None:
    allowed = ("https://pypi.internal/simple/",)
    assert check_index_url("https://pypi.internal/simple", allowed)
    with pytest.raises(Invalid, match="index_allow"):
        check_index_url("https://pypi.org/simple/", allowed)


def test_settings_check_the_index_block() -> None:
    settings = Settings.from_mapping({"index_allow": "https://a.example/simple, "
                                      "https://b.example/simple/",
                                      "index_url": "https://a.example/simple",
                                      "import_timeout": "2m"})
    assert settings.index_allow == ("https://a.example/simple/", "https://b.example/simple/")
    assert (settings.index_url, settings.import_timeout) == ("https://a.example/simple/", 120)
    with pytest.raises(SettingsError, match=r"index_url: .*http:// or https://"):
        Settings(index_url="file:///srv/index/")
    with pytest.raises(SettingsError, match=r"index_url: .*index_allow"):
        Settings(index_allow=("https://a.example/simple/",))
    with pytest.raises(SettingsError, match="import_timeout"):
        Settings(import_timeout=0)


class _Redirect(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        target = {"/ftp/": "ftp://127.0.0.1/x", "/file/": "file:///etc/passwd"}
        self.send_header("Location", target.get(self.path, self.path + "again/"))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def redirector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


def test_redirects_only_to_http(redirector: str) -> None:
    with pytest.raises(IndexUnavailable, match="not http"):
        fetch_project(redirector, "ftp", timeout=10)
    with pytest.raises(IndexUnavailable, match="redirect"):
        fetch_project(redirector, "file", timeout=10)
    with pytest.raises(IndexUnavailable, match="redirect"):  # a loop ends, it does not hang
        fetch_project(redirector, "loop", timeout=10)


def test_platforms_of_agent_facts() -> None:
    linux = Platform.of("linux", "aarch64", "3.12.1")
    assert linux is not None
    assert "manylinux_2_17_aarch64" in linux.pip_platforms
    assert linux.pip_platforms[-1] == "linux_aarch64"
    windows = Platform.of("Windows", "AMD64", "3.11.9+")
    assert windows is not None and windows.pip_platforms == ["win_amd64"]
    assert windows.label == "windows AMD64, Python 3.11.9"
    assert Marker("sys_platform == 'win32' and python_version >= '3.11'").evaluate(
        windows.markers)
    assert not Marker("platform_system == 'Linux'").evaluate(windows.markers)
    mac = Platform.of("darwin", "arm64", "3.11")
    assert mac is not None and mac.pip_platforms == ["macosx_14_0_arm64"]
    assert mac.markers["python_full_version"] == "3.11.0"
    assert Platform.of("", "x86_64", "3.11.1") is None
    assert Platform.of("linux", "x86_64", "") is None
    assert server_platform().python_version.startswith("3.")
