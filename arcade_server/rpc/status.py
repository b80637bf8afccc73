"""The gRPC status of a :class:`~arcade_server.errors.ServiceError` (each names its own)."""

from __future__ import annotations

import grpc

from ..errors import ServiceError

__all__ = ["status_code"]


def status_code(error: ServiceError) -> grpc.StatusCode:
    """The error's ``grpc_code`` as a :class:`grpc.StatusCode` (INVALID_ARGUMENT if unknown)."""
    return getattr(grpc.StatusCode, error.grpc_code, grpc.StatusCode.INVALID_ARGUMENT)
