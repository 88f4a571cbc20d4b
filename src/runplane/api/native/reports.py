"""Native API: execution reports (the console's Reports page).

Routers translate only: parse → one service call → render.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from runplane.api.deps import Ctx, Who
from runplane.api.native import render
from runplane.api.native.render import JSON
from runplane.service import reports as svc

router = APIRouter(prefix="/api/v1", tags=["reports"])


@router.get("/reports")
async def get_report(
    ctx: Ctx,
    who: Who,
    period: Annotated[
        str, Query(description="24h (hourly buckets), 7d (6 h), 30d (daily).")
    ] = "24h",
    process: Annotated[str | None, Query(description="Only this process.")] = None,
    environment: Annotated[str | None, Query(description="Only this environment.")] = None,
) -> Response:
    """Counts by status, success rate and p50/p95 durations per process and environment,
    and executions created per bucket, over the period that ends now."""
    report = await svc.report(
        ctx, who, period=period, process=process or None, environment=environment or None
    )
    return JSON(render.report(report))
