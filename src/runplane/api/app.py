"""create_app(settings): the ASGI application with its routers and lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from runplane import __version__
from runplane.api import oauth, problems, surfaces
from runplane.api.access_log import AccessLogMiddleware
from runplane.api.auth import AuthMiddleware
from runplane.api.compat.alias import PathAlias
from runplane.api.compat.boomi import router as boomi
from runplane.api.compat.mulesoft import mapping as mulesoft_mapping
from runplane.api.compat.mulesoft import router as mulesoft
from runplane.api.compat.robocorp import router as robocorp
from runplane.api.fastpath import TriggerFastPath
from runplane.api.limits import BodyLimitMiddleware
from runplane.api.native import (
    apps,
    credentials,
    executions,
    processes,
    reports,
    runtimes,
    system,
    workspaces,
)
from runplane.node import Node
from runplane.settings import Settings

ROUTERS = (
    executions.router,
    processes.router,
    system.router,
    runtimes.router,
    credentials.router,
    workspaces.router,
    apps.router,
    reports.router,
    oauth.router,
    mulesoft.router,
    mulesoft.router_v1,
    robocorp.legacy,
    robocorp.process_api,
    boomi.router,
)
"""Every router the app serves (tests walk these to check each route's access rules)."""

API_DESCRIPTION = """Start automation processes over HTTP and track them to a result.

Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`;
the OAuth2 token endpoints answer RFC 6749 errors (`{"error", "error_description"}`).
"""


class App:
    """The ASGI application of `runplane serve`.

    Layers, outermost first: authentication (an unauthenticated request is
    refused before its body is read), request body limits, the trigger fast
    path, then FastAPI with every route. The node's background parts run in
    FastAPI's lifespan.
    """

    def __init__(self, settings: Settings) -> None:
        self.node = Node(settings)
        self.api = _fastapi(self.node)
        stack: ASGIApp = AuthMiddleware(
            BodyLimitMiddleware(TriggerFastPath(self.api)), context=lambda: self.node.ctx
        )
        if settings.mulesoft_base_path:
            stack = PathAlias(stack, settings.mulesoft_base_path, mulesoft_mapping.ROOT)
        self._stack = AccessLogMiddleware(stack) if settings.access_log else stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._stack(scope, receive, send)


def create_app(settings: Settings) -> App:
    """The runplane server: native API under /api/v1, with the node's background parts."""
    return App(settings)


def _fastapi(node: Node) -> FastAPI:
    """FastAPI with every route, the problem handlers and the node's lifespan."""
    settings = node.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await node.start()
        app.state.ctx = node.ctx
        try:
            yield
        finally:
            await node.stop()

    app = FastAPI(
        title="runplane",
        version=__version__,
        description=API_DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
        # Off unless asked for: probing for OpenTelemetry providers on every request
        # cost ~10% of the accept path when none is configured (docs/benchmarks.md).
        telemetry={
            "tracing": settings.telemetry,
            "metrics": settings.telemetry,
            "logs": settings.telemetry,
            "operation_spans": settings.telemetry,
        },
    )
    app.state.node = node
    problems.install(app, surfaces.exception_response)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.document_problems(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    for router in ROUTERS:
        app.include_router(router)
    return app
