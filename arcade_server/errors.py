"""Errors the service functions raise on purpose, each mapped to one HTTP status and one gRPC code.

REST answers them as ``{"error": message, "detail": detail}``; gRPC aborts with the code.
Anything else escaping a handler is a bug (500), never the answer to bad input.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Conflict",
    "Invalid",
    "NotFound",
    "PayloadTooLarge",
    "ServiceError",
]


class ServiceError(Exception):
    """Base: ``message`` says what is wrong and what to do; ``detail`` is JSON-ready extra data."""

    status_code = 400
    grpc_code = "INVALID_ARGUMENT"

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(ServiceError):
    """An unknown agent, plugin, version or assignment."""

    status_code = 404
    grpc_code = "NOT_FOUND"


class Conflict(ServiceError):
    """The request clashes with the current state (republish with other content, delete of an
    assigned version, install of a disabled plugin)."""

    status_code = 409
    grpc_code = "FAILED_PRECONDITION"


class Invalid(ServiceError):
    """The request is well-formed but its content is wrong (bad spec, config or wheel)."""

    status_code = 422
    grpc_code = "INVALID_ARGUMENT"


class PayloadTooLarge(ServiceError):
    """An upload is over the configured maximum size."""

    status_code = 413
    grpc_code = "RESOURCE_EXHAUSTED"
