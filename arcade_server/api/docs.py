"""``/docs``: the Swagger UI page of the REST API, served whole by the server, offline.

FastAPI's own page loads Swagger UI's script and stylesheet from a CDN (jsDelivr) and its
favicon from fastapi.tiangolo.com, so on a machine without internet — a server room, an
air-gapped fleet — ``/docs`` was blank. Here the page names only the server's own URLs, and
the assets come from the ``swagger-ui-bundle`` package (Swagger UI's release files, Apache-2.0,
with their license in its dist-info), installed with the ``server`` extra. They are mounted
read-only at :data:`ASSETS_PATH`, public like the page and ``/openapi.json`` (no token: the
assets and the document say nothing secret; every API call the page makes still needs one).

ReDoc (``/redoc``) is off: it too loads from a CDN, and no package ships it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

__all__ = ["ASSETS_PATH", "DOCS_PATH", "assets_directory", "install_docs"]

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
_OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def assets_directory() -> Path:
    """The directory of Swagger UI's files (``swagger-ui-bundle.js``, ``swagger-ui.css``, ...)."""
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def install_docs(app: FastAPI, title: str) -> None:
    """Serve ``/docs`` (and its OAuth2 redirect) with Swagger UI from :data:`ASSETS_PATH`.
    The app must be made with ``docs_url=None, redoc_url=None``."""
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_directory()), name="docs-assets")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
            oauth2_redirect_url=root + _OAUTH2_REDIRECT,
        )

    async def oauth2_redirect(_request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_route(DOCS_PATH, swagger_ui, include_in_schema=False)
    app.add_route(_OAUTH2_REDIRECT, oauth2_redirect, include_in_schema=False)
