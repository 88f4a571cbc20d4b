"""create_app(settings): the ASGI application with its routers and lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.routing import Route

from runplane import __version__
from runplane.api import problems
from runplane.api.auth import AuthMiddleware
from runplane.api.limits import BodyLimitMiddleware
from runplane.api.native import credentials, executions, processes, system
from runplane.node import Node
from runplane.settings import Settings

API_DESCRIPTION = """Start automation processes over HTTP and track them to a result.

Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`.
"""


def create_app(settings: Settings) -> FastAPI:
    """The runplane server: native API under /api/v1, with the node's background parts."""
    node = Node(settings)

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
    problems.install(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.document_problems(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(BodyLimitMiddleware)
    # Added last, so it runs first: an unauthenticated request is refused before
    # its body is read.
    app.add_middleware(AuthMiddleware, context=lambda: node.ctx)
    app.include_router(executions.router)
    app.include_router(processes.router)
    app.include_router(system.router)
    app.include_router(credentials.router)
    # The trigger handlers take the bare Request; serving them as plain Starlette
    # routes ahead of FastAPI's skips its per-request routing and dependency layers
    # on the hot path (measured: docs/benchmarks.md). FastAPI's entries for the
    # same handlers stay, and document them in the OpenAPI schema.
    app.router.routes.insert(
        0, Route(executions.TRIGGER_PATH, executions.trigger, methods=["PUT", "POST"])
    )
    return app
