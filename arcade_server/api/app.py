"""``create_app``: the FastAPI application (REST under ``/api/v1``, OpenAPI at ``/docs``).

Every route but the few public ones needs a bearer token with a role
(:mod:`arcade_server.api.auth`), and every mutating call is written to the audit log
(:mod:`arcade_server.api.audit`).

The app shares one :class:`~arcade_server.state.ServerState` with the gRPC servicer. When the
runner passes its state the runner owns its lifetime; when ``create_app`` is called with only
settings (e.g. ``uvicorn --factory``), the app starts and closes its own state in its lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from arcade_core import __version__

from ..auth.roles import Role
from ..settings import Settings
from ..state import ServerState
from .audit import AuditMiddleware
from .auth import document_auth, install_auth, needs
from .docs import install_docs
from .errors import install_error_handlers
from .openapi import install_openapi
from .routers import access, agents, fleet, identity, imports, jobs, plugins, signing
from .schemas import Health, errors

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, *, state: ServerState | None = None) -> FastAPI:
    """Build the REST app over ``state`` (or a new one from ``settings``, owned by the app)."""
    owned = state is None
    if state is None:
        state = ServerState(settings or Settings.load())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        assert state is not None
        if owned:
            await state.start()
        try:
            yield
        finally:
            await authenticator.close()
            if owned:
                await state.close()

    app = FastAPI(
        title="Arcade",
        version=__version__,
        description="Plugin registry, per-agent desired state, metrics and jobs for Arcade "
        "agents.",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs from local assets: offline too
        redoc_url=None,
    )
    app.state.arcade = state
    install_docs(app, "Arcade")
    install_error_handlers(app)
    app.include_router(imports.router, prefix=API_PREFIX)
    app.include_router(plugins.router, prefix=API_PREFIX)
    app.include_router(signing.router, prefix=API_PREFIX)
    app.include_router(agents.router, prefix=API_PREFIX)
    app.include_router(fleet.router, prefix=API_PREFIX)
    app.include_router(jobs.router, prefix=API_PREFIX)
    app.include_router(access.router, prefix=API_PREFIX)
    app.include_router(identity.router, prefix=API_PREFIX)
    app.include_router(identity.probes)

    @app.get(f"{API_PREFIX}/health", tags=["server"], summary="Liveness and a few counters",
             response_model=Health, responses=errors(), dependencies=[needs(Role.VIEWER)])
    async def health() -> Health:
        return Health(status="ok", version=__version__,
                      connected_agents=len(state.hub.connected_ids()))

    authenticator = install_auth(app, state.db)
    app.add_middleware(AuditMiddleware, state=state)
    install_openapi(app, state.settings,
                    lambda document: document_auth(document, app.state.route_roles))

    return app
