"""Native API: health and runtimes."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from starlette.responses import Response

from runplane import __version__
from runplane.api.deps import Ctx, Who
from runplane.api.native import render
from runplane.api.native.render import JSON
from runplane.service import catalog, leases

router = APIRouter(prefix="/api/v1", tags=["system"])


@router.get("/health")
async def health() -> Response:
    """Liveness: the server answers."""
    return JSON({"status": "ok", "version": __version__})


@router.get("/runtimes")
async def list_runtimes(ctx: Ctx, who: Who) -> Response:
    """Registered runtimes with their state and last heartbeat."""
    envs = {e.id: e.name for e in await catalog.list_environments(ctx, who)}
    silent_since = ctx.clock() - timedelta(seconds=ctx.settings.lease_ttl_seconds)
    return JSON(
        {
            "items": [
                render.runtime(r, envs, silent=r.last_heartbeat_at < silent_since)
                for r in await leases.list_runtimes(ctx, who)
            ]
        }
    )
