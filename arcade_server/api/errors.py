"""Error responses: every error is JSON ``{"error": "...", "detail": ...}`` (the ``Error``
schema of :mod:`arcade_server.api.schemas`), with ``"hints"`` (``[{"rest", "cli"}]``) when a
service error carries :class:`~arcade_server.errors.Hint`\\ s.

Service errors keep their status (404, 409, 413, 422); request validation errors are 422 with
the first problem in ``error`` and all of them (``loc``, ``msg``, ``type``) in ``detail``; a
JSON body that cannot even be decoded is 400; an
unknown route is 404 and a method the path does not support is 405 with ``Allow`` listing
those it does; anything unexpected is logged and answered 500 without a traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import Hint, ServiceError

__all__ = ["allowed_methods", "error_response", "install_error_handlers"]

log = logging.getLogger("arcade.server.api")

_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def error_response(status: int, error: str, detail: Any = None,
                   headers: dict[str, str] | None = None,
                   hints: Sequence[Hint] = ()) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "detail": jsonable_encoder(detail)}
    if hints:
        body["hints"] = [hint.to_dict() for hint in hints]
    return JSONResponse(body, status_code=status, headers=headers)


def _location(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _problems(errors: Any) -> list[dict[str, Any]]:
    """The validation problems without the echoed input (which may be large) or doc links."""
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
             "type": str(e.get("type", ""))} for e in errors]


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the API document lists for ``path`` (HEAD with GET), from the most
    specific matching templates only: like OpenAPI, a concrete path such as
    ``/plugins/validate`` is matched before ``/plugins/{name}``."""
    found: list[tuple[int, set[str]]] = []
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\{[^}]*\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            found.append((template.count("{"), {m.upper() for m in operations}))
    if not found:
        return []
    fewest = min(params for params, _ in found)
    methods = set().union(*(m for params, m in found if params == fewest))
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods, key=lambda m: (*_METHOD_ORDER, m).index(m))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, exc.detail, headers=exc.headers,
                              hints=exc.hints)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if errors:
            first = errors[0]
            message = f"invalid request: {_location(first.get('loc', ()))}: {first.get('msg')}"
            if len(errors) > 1:
                message += f" (and {len(errors) - 1} more problem(s), listed in detail)"
        else:
            message = "invalid request"
        return error_response(422, message, _problems(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        message = str(exc.detail)
        path = request.url.path
        if exc.status_code == 404 and message == "Not Found":
            message = (f"no route {path!r}: the API is under /api/v1 (its description is at "
                       "/openapi.json, browsable at /docs)")
        elif exc.status_code == 400 and message == "There was an error parsing the body":
            message = ("the request body cannot be read as JSON (it must be UTF-8 encoded "
                       "JSON); send a JSON object")
        elif exc.status_code == 405:
            allowed = allowed_methods(app, path) or headers.get("Allow", "").split(", ")
            headers["Allow"] = ", ".join(allowed)
            message = (f"method {request.method} is not allowed on {path}; "
                       f"use {', '.join(allowed)}")
        return error_response(exc.status_code, message, None, headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return error_response(500, "internal server error; see the server log", None)
