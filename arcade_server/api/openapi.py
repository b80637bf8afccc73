"""The OpenAPI document, with the limits that come from the server's settings written in.

Routers are built once per process, but some limits are settings (``max_wait``,
``job_max_timeout``, ``metric_query_limit``, ``max_upload_bytes``, ``max_wheel_bytes``,
``max_config_bytes``): :func:`install_openapi`
makes ``/openapi.json`` state this server's values, so the document is true for the server
that serves it (and documents the 400 FastAPI answers for an undecodable JSON body). The
document is built on first request and cached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..settings import Settings

__all__ = ["ERROR_REF", "install_openapi", "state_limits"]

ERROR_REF = "#/components/schemas/Error"


def _number_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The schema itself, or its non-null ``anyOf`` branches (``float | None``)."""
    branches = schema.get("anyOf")
    if branches is None:
        return [schema]
    return [b for b in branches if b.get("type") != "null"]


def _set_maximum(schema: dict[str, Any], maximum: float | int) -> None:
    for branch in _number_schemas(schema):
        branch["maximum"] = maximum


def state_limits(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Write the settings' limits into ``document`` (in place) and return it; operations
    with a JSON body also get their 400 (a body that is not UTF-8 JSON at all)."""
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                name, schema = parameter["name"], parameter["schema"]
                if name == "wait":
                    _set_maximum(schema, settings.max_wait)
                elif name == "limit" and path.endswith("/metrics"):
                    _set_maximum(schema, settings.metric_query_limit)
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                operation["responses"].setdefault("400", {
                    "description": "the body cannot be decoded as JSON",
                    "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
                })
            if "multipart/form-data" in content:
                operation["requestBody"]["description"] = (
                    f"at most {settings.max_upload_bytes} bytes in all (max_upload_bytes), "
                    f"each wheel at most {settings.max_wheel_bytes} (max_wheel_bytes)")
    schemas = document.get("components", {}).get("schemas", {})
    job = schemas.get("JobCreateRequest")
    if job is not None:
        _set_maximum(job["properties"]["timeout"], settings.job_max_timeout)
    for name in ("InstallRequest", "SelectorInstallRequest", "JobPluginRequest"):
        config = schemas.get(name, {}).get("properties", {}).get("config")
        if config is not None:
            config["description"] = (
                f"{config.get('description', 'plugin config')}; at most "
                f"{settings.max_config_bytes} bytes as canonical JSON (max_config_bytes), "
                "finite numbers only")
    return document


def install_openapi(app: FastAPI, settings: Settings,
                    *more: Callable[[dict[str, Any]], None]) -> None:
    """Serve the document with ``settings``' limits stated, after ``more`` edits (such as
    the auth answers, :func:`arcade_server.api.auth.document_auth`)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, openapi_version=app.openapi_version,
                description=app.description, routes=app.routes,
            )
            for edit in more:
                edit(document)
            app.openapi_schema = state_limits(document, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
