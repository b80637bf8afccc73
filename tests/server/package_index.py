"""A real package index for tests: PEP 503 HTML (or PEP 691 JSON) pages and wheel files
served from ``tmp_path`` by ``http.server`` on loopback, in a thread.

``add(wheel)`` copies a wheel in and rewrites its project's page with the file's real sha256;
``add(wheel, published_sha256=...)`` publishes another hash (a tampered file or a lying
index); ``hashes=False`` publishes none. ``json=True`` serves PEP 691 JSON to clients asking
for it (pip and the server do).
"""

from __future__ import annotations

import hashlib
import html
import json
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from packaging.utils import canonicalize_name, parse_wheel_filename

__all__ = ["LocalIndex"]

_JSON = "application/vnd.pypi.simple.v1+json"


class LocalIndex:
    """A PEP 503/691 index at :attr:`url`; use as a context manager (closes its socket)."""

    def __init__(self, root: Path, *, json_pages: bool = False) -> None:
        self.root = root
        self.json_pages = json_pages
        (root / "simple").mkdir(parents=True, exist_ok=True)
        (root / "files").mkdir(exist_ok=True)
        self._files: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[str] = []
        index = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self) -> None:
                index.requests.append(self.path)
                page = root / self.path.lstrip("/") / "index.json"
                if (index.json_pages and self.path.startswith("/simple/") and page.is_file()
                        and "json" in self.headers.get("Accept", "")):
                    body = page.read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Type", _JSON)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/simple/"

    def add(self, wheel: Path, *, published_sha256: str | None = None,
            hashes: bool = True) -> Path:
        """Serve ``wheel``; its page publishes its sha256 (or ``published_sha256``)."""
        project = canonicalize_name(parse_wheel_filename(wheel.name)[0])
        target = self.root / "files" / wheel.name
        shutil.copyfile(wheel, target)
        digest = published_sha256 or hashlib.sha256(target.read_bytes()).hexdigest()
        entries = [e for e in self._files.get(project, []) if e["filename"] != wheel.name]
        entries.append({"filename": wheel.name, "url": f"../../files/{wheel.name}",
                        "hashes": {"sha256": digest} if hashes else {}})
        self._files[project] = entries
        self._write(project)
        return target

    def _write(self, project: str) -> None:
        directory = self.root / "simple" / project
        directory.mkdir(exist_ok=True)
        links = []
        for entry in self._files[project]:
            digest = entry["hashes"].get("sha256")
            href = entry["url"] + (f"#sha256={digest}" if digest else "")
            links.append(f'<a href="{html.escape(href)}">{html.escape(entry["filename"])}</a>')
        (directory / "index.html").write_text(
            "<!DOCTYPE html><html><body>\n" + "<br/>\n".join(links) + "\n</body></html>\n")
        (directory / "index.json").write_text(json.dumps(
            {"meta": {"api-version": "1.0"}, "name": project, "files": self._files[project]}))
        names = sorted(self._files)
        (self.root / "simple" / "index.html").write_text(
            "<!DOCTYPE html><html><body>\n" + "\n".join(
                f'<a href="{n}/">{n}</a>' for n in names) + "\n</body></html>\n")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> LocalIndex:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
