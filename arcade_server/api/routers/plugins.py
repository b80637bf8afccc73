"""``/api/v1/plugins``: the registry (publish, validate, list, get, delete, enable, disable)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from ...auth.roles import Role
from ...errors import Invalid, NotFound
from ...services import publishing, registry
from ...state import ServerState
from ..auth import needs
from ..deps import get_state
from ..schemas import (
    PluginDetail,
    PluginSummary,
    PublishedVersion,
    Release,
    ValidateResult,
    VersionDetail,
    errors,
)
from ..uploads import UploadedWheels, receive_wheels
from .signing import decode_base64

router = APIRouter(prefix="/plugins", tags=["plugins"])

State = Annotated[ServerState, Depends(get_state)]

_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["wheels"],
                    "properties": {
                        "wheels": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "the plugin wheel and its dependency wheels",
                        },
                        "public_key": {
                            "type": "string",
                            "description": "with signature: the signer's public key (base64 "
                            "of the raw 32 bytes, the line of NAME.pub)",
                        },
                        "signature": {
                            "type": "string",
                            "description": "with public_key: base64 of the ed25519 signature "
                            "of the version's statement (arcade_core.signing.statement of "
                            "exactly the wheels recorded)",
                        },
                    },
                }
            }
        },
    }
}


_UNKNOWN = "no plugin of that name is published"
_UNKNOWN_VERSION = "no plugin of that name is published, or it has no such version"


@router.post(
    "",
    status_code=201,
    openapi_extra=_UPLOAD_DOC,
    summary="Publish a plugin wheel with its dependency wheels",
    response_model=PublishedVersion,
    responses={
        200: {"model": PublishedVersion, "description": "identical re-publish"},
        **errors(
            s403="the name is claimed and the version is not signed by one of its keys "
            "(GET /plugins/{name}/keys lists them)",
            s409="name@version is already published with other content",
            s413="the upload is over the server's max_upload_bytes, or a wheel over "
            "max_wheel_bytes",
            s422="not multipart, not wheels, the wheels are refused (error says why; "
            "detail.problems lists every problem), or the signature does not verify",
        ),
    },
    dependencies=[needs(Role.PUBLISHER)],
)
async def publish(request: Request, response: Response, state: State) -> dict[str, Any]:
    """201 new version, 200 identical re-publish, 403 a claimed name not signed by its keys,
    409 same ``name@version`` with other content, 413 over ``max_upload_bytes``, 422 invalid
    (the reason says what to fix)."""
    settings = state.settings
    uploaded = await receive_wheels(request, settings.upload_dir, settings.max_upload_bytes,
                                    settings.max_wheel_bytes)
    try:
        result = await publishing.publish(state.db, state.store, uploaded.paths,
                                          _signed(uploaded))
    finally:
        await asyncio.to_thread(uploaded.cleanup)
    body = dict(result.version)
    body["created"] = result.created
    body["ignored"] = list(result.ignored)
    if not result.created:
        response.status_code = 200
    return body


def _signed(uploaded: UploadedWheels) -> publishing.Signed | None:
    """The publisher's signature sent with the wheels (both fields, or neither)."""
    key, signature = uploaded.fields.get("public_key"), uploaded.fields.get("signature")
    if key is None and signature is None:
        return None
    if key is None or signature is None:
        raise Invalid("send both form fields public_key and signature (or neither): "
                      "`arcade publish WHEEL... --sign KEY.key` does")
    return publishing.Signed(decode_base64(key, "public_key"),
                             decode_base64(signature, "signature"))


@router.post(
    "/validate",
    openapi_extra=_UPLOAD_DOC,
    summary="Dry-run a publish",
    response_model=ValidateResult,
    response_model_exclude_unset=True,
    responses=errors(
        s413="the upload is over the server's max_upload_bytes, or a wheel over "
            "max_wheel_bytes",
        s422="not multipart, not wheels, or the wheels are refused: detail is "
        "{valid: false, problems: [...]}",
    ),
    dependencies=[needs(Role.PUBLISHER)],
)
async def validate(request: Request, state: State) -> dict[str, Any]:
    """What publishing these wheels would record (200), or every problem found (422)."""
    settings = state.settings
    uploaded = await receive_wheels(request, settings.upload_dir, settings.max_upload_bytes,
                                    settings.max_wheel_bytes)
    try:
        prepared, problems = await asyncio.to_thread(publishing.validate_upload, uploaded.paths)
    finally:
        await asyncio.to_thread(uploaded.cleanup)
    if prepared is None:
        raise Invalid("; ".join(problems), {"valid": False, "problems": problems})
    existing: dict[str, Any] | None
    try:
        existing = await state.db.read(
            registry.get_version, prepared.plugin.name, prepared.plugin.version
        )
    except NotFound:
        existing = None
    would = prepared.to_dict()
    if existing is not None:
        if existing["sha256"] == prepared.plugin.sha256:
            note = "already published with identical content (publishing would answer 200)"
        else:
            note = "already published with different content (publishing would answer 409)"
        return {"valid": existing["sha256"] == prepared.plugin.sha256,
                "would_record": would, "existing": note}
    return {"valid": True, "would_record": would}


@router.get("", summary="List plugins", response_model=list[PluginSummary],
            responses=errors(),
            dependencies=[needs(Role.VIEWER)])
async def list_plugins(
    state: State,
    type: Annotated[str | None, Query(description="manifest type, e.g. collector")] = None,
    enabled: bool | None = None,
    text: Annotated[str | None, Query(description="in name, summary or description")] = None,
) -> list[dict[str, Any]]:
    return await state.db.read(registry.list_plugins, type=type, enabled=enabled, text=text)


@router.get("/{name}", summary="A plugin with its versions and the latest one",
            response_model=PluginDetail, responses=errors(s404=_UNKNOWN),
            dependencies=[needs(Role.VIEWER)])
async def get_plugin(name: str, state: State) -> dict[str, Any]:
    return await state.db.read(registry.get_plugin, name)


@router.get("/{name}/versions", summary="The versions of a plugin, newest first",
            response_model=list[Release], responses=errors(s404=_UNKNOWN),
            dependencies=[needs(Role.VIEWER)])
async def list_versions(name: str, state: State) -> list[dict[str, Any]]:
    plugin = await state.db.read(registry.get_plugin, name)
    releases: list[dict[str, Any]] = plugin["releases"]
    return releases


@router.get("/{name}/versions/{version}", summary="One version: manifest, wheels, agents",
            response_model=VersionDetail, responses=errors(s404=_UNKNOWN_VERSION),
            dependencies=[needs(Role.VIEWER)])
async def get_version(name: str, version: str, state: State) -> dict[str, Any]:
    return await state.db.read(registry.get_version, name, version)


@router.delete(
    "/{name}/versions/{version}",
    status_code=204,
    summary="Delete a version no agent is assigned",
    response_class=Response,
    responses={204: {"description": "deleted (no body)"},
               **errors(s404=_UNKNOWN_VERSION,
                        s409="agents are assigned this version: uninstall it first")},
    dependencies=[needs(Role.ADMIN)],
)
async def delete_version(name: str, version: str, state: State) -> Response:
    """Delete a version no agent is assigned (409 while assigned); unused blobs go too."""
    orphans = await state.db.run(registry.delete_version, name, version)
    for sha256 in orphans:
        await asyncio.to_thread(state.store.delete, sha256)
    return Response(status_code=204)


@router.post("/{name}/enable", summary="Allow new assignments of the plugin",
             response_model=PluginSummary, responses=errors(s404=_UNKNOWN),
             dependencies=[needs(Role.OPERATOR)])
async def enable(name: str, state: State) -> dict[str, Any]:
    return await state.db.run(registry.set_enabled, name, True)


@router.post("/{name}/disable", summary="Refuse new assignments (running ones stay)",
             response_model=PluginSummary, responses=errors(s404=_UNKNOWN),
             dependencies=[needs(Role.OPERATOR)])
async def disable(name: str, state: State) -> dict[str, Any]:
    return await state.db.run(registry.set_enabled, name, False)
