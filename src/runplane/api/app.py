"""create_app(settings): the ASGI application with its routers and lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from runplane import __version__
from runplane.api import problems
from runplane.api.access_log import AccessLogMiddleware
from runplane.api.alias import PathAlias
from runplane.api.auth import AuthMiddleware
from runplane.api.limits import BodyLimitMiddleware
from runplane.api.registry import SURFACES
from runplane.api.surface import Surfaces
from runplane.node import Node
from runplane.settings import Settings

ROUTERS = SURFACES.routers
"""Every router the app serves (tests walk these to check each route's access rules)."""

API_DESCRIPTION = """Start automation processes over HTTP and track them to a result.

Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`;
the OAuth2 token endpoints answer RFC 6749 errors (`{"error", "error_description"}`).
"""


class App:
    """The ASGI application of `runplane serve`.

    Layers, outermost first: the access log (opt-in), path aliases,
    authentication (an unauthenticated request is refused before its body is
    read), request body limits, the surfaces' inner layers (the trigger fast
    path), then FastAPI with every surface's routes. Each layer asks the
    registry of surfaces what it needs. The node's background parts run in
    FastAPI's lifespan.
    """

    def __init__(self, settings: Settings, surfaces: Surfaces = SURFACES) -> None:
        self.node = Node(settings)
        self.surfaces = surfaces
        self.api = _fastapi(self.node, surfaces)
        stack: ASGIApp = AuthMiddleware(
            BodyLimitMiddleware(surfaces.inner(self.api, self.api), surfaces),
            context=lambda: self.node.ctx,
            surfaces=surfaces,
        )
        for alias, target in surfaces.aliases(settings):
            stack = PathAlias(stack, alias, target)
        if settings.access_log:
            stack = AccessLogMiddleware(stack, surfaces.redacted_params)
        self._stack = stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._stack(scope, receive, send)


def create_app(settings: Settings) -> App:
    """The runplane server: native API under /api/v1, with the node's background parts."""
    return App(settings)


def _fastapi(node: Node, surfaces: Surfaces) -> FastAPI:
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
    surfaces.include(app)
    return app
