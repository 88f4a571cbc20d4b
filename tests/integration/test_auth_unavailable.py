"""Authentication while the database cannot be reached: a 503 in the surface's own
shape with Retry-After, never a bare 500 from the server (found by the fault tests
during a PostgreSQL restart)."""

from __future__ import annotations

import asyncio

import httpx
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from runplane.api.auth import AuthMiddleware
from runplane.api.registry import SURFACES
from runplane.service.context import Context
from runplane.settings import Settings
from runplane.store.database import Database


async def _never(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("reached the app")(scope, receive, send)


def test_an_unreachable_database_during_authentication_is_a_503() -> None:
    async def main() -> list[httpx.Response]:
        db = Database("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2")
        db.start()
        ctx = Context(db=db, settings=Settings(data_dir="/nonexistent"))
        app = AuthMiddleware(_never, context=lambda: ctx, surfaces=SURFACES)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                headers = {"Authorization": "Bearer rpt_" + "x" * 43}
                return [
                    await c.get("/api/v1/executions", headers=headers),
                    await c.get("/process-v1/workspaces/w/processes", headers=headers),
                ]
        finally:
            await db.close()

    native, robocorp = asyncio.run(main())
    assert native.status_code == 503
    assert native.headers["content-type"].startswith("application/problem+json")
    assert native.json()["code"] == "database_unavailable"
    assert native.headers["retry-after"] == "1"
    assert robocorp.status_code == 503 and robocorp.json()["error"] == "database_unavailable"
