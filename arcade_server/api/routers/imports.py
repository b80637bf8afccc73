"""``/api/v1/plugins/import`` and ``/api/v1/plugins/{name}/updates``: plugins from a package
index (issue 15, part "index"); the work is in :mod:`arcade_server.services.imports`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from ...auth.roles import Role
from ...index_resolver import ImportLimits
from ...services import imports
from ...state import ServerState
from ..audit import set_target
from ..auth import needs
from ..deps import get_state
from ..schemas import errors
from ..schemas.imports import ImportedVersion, ImportRequest, PluginUpdates

__all__ = ["router"]

router = APIRouter(prefix="/plugins", tags=["plugins"])

State = Annotated[ServerState, Depends(get_state)]


@router.post(
    "/import",
    status_code=201,
    summary="Publish a plugin and its dependencies from a package index",
    response_model=ImportedVersion,
    responses={
        200: {"model": ImportedVersion, "description": "identical re-publish"},
        **errors(
            s409="name@version is already published with other content",
            s413="a wheel over max_wheel_bytes, or all of them over max_upload_bytes",
            s422="a bad requirement or index_url (http(s) only), no version on the index "
            "matches, no wheel for an agent's platform, a hash that differs from the one the "
            "index publishes, or wheels refused as an upload would be (error says which)",
            s502="the index could not be read, or the import took longer than import_timeout",
        ),
    },
    dependencies=[needs(Role.PUBLISHER)],
)
async def import_plugin(body: ImportRequest, request: Request, response: Response,
                        state: State) -> dict[str, Any]:
    """Resolve the requirement for the platforms the agents report, download the wheels,
    check each against the sha256 the index publishes, and publish them as one version."""
    settings = state.settings
    limits = ImportLimits(settings.import_timeout, settings.max_wheel_bytes,
                          settings.max_upload_bytes)
    result = await imports.import_plugin(
        state.db, state.store, requirement=body.requirement,
        index_url=body.index_url or settings.index_url, limits=limits,
        work_root=settings.upload_dir, allowed=settings.index_allow)
    published = result.published
    # The audit log names what was published, not just the route.
    set_target(request, f"plugins/{published.version['name']}/versions/"
                        f"{published.version['version']}")
    if not published.created:
        response.status_code = 200
    return {**published.version, "created": published.created,
            "ignored": list(published.ignored), "index_url": result.index_url,
            "requirement": result.requirement, "platforms": list(result.platforms),
            "note": result.note}


@router.get(
    "/{name}/updates",
    summary="Newer versions of a plugin on its package index",
    response_model=PluginUpdates,
    responses=errors(
        s404="no plugin of that name is published",
        s409="the plugin was never imported from an index: pass ?index_url=",
        s502="the index could not be read"),
    dependencies=[needs(Role.VIEWER)],
)
async def updates(
    name: str, state: State,
    index_url: Annotated[str | None, Query(
        max_length=1000, description="the index to ask (default: the one the newest "
        "imported version came from)")] = None,
) -> dict[str, Any]:
    settings = state.settings
    return await imports.updates(state.db, name, index_url=index_url,
                                 timeout=min(60.0, settings.import_timeout),
                                 allowed=settings.index_allow)
