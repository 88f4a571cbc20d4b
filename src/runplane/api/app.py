"""create_app(settings): the ASGI application with its routers and lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from runplane import __version__
from runplane.api import problems
from runplane.api.limits import BodyLimitMiddleware
from runplane.api.native import executions, processes, system
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
    )
    app.state.node = node
    problems.install(app)
    app.add_middleware(BodyLimitMiddleware)
    app.include_router(executions.router)
    app.include_router(processes.router)
    app.include_router(system.router)
    return app
