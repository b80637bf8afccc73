"""Error responses: every error is JSON ``{"error": "...", "detail": ...}``.

Service errors keep their status (404, 409, 413, 422); request validation errors are 422 with
the first problem in ``error`` and all of them in ``detail``; anything unexpected is logged and
answered 500 without a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ServiceError

__all__ = ["error_response", "install_error_handlers"]

log = logging.getLogger("arcade.server.api")


def error_response(status: int, error: str, detail: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": error, "detail": jsonable_encoder(detail)}, status_code=status, headers=headers
    )


def _location(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if errors:
            first = errors[0]
            message = f"invalid request: {_location(first.get('loc', ()))}: {first.get('msg')}"
        else:
            message = "invalid request"
        return error_response(422, message, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), None,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return error_response(500, "internal server error; see the server log", None)
