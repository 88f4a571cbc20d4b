"""Reports: per process and environment over 24 h, 7 d or 30 d (counts by status,
success rate, p50/p95 duration) and executions over time by status, all computed by the
database."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from runplane.service import catalog, reports
from runplane.web import chart
from runplane.web.common import ctx_of, who_of
from runplane.web.errors import console_route
from runplane.web.templating import render

router = APIRouter(route_class=console_route(), include_in_schema=False)

PERIODS = ("24h", "7d", "30d")


@router.get("/reports")
async def reports_page(
    request: Request,
    period: str = "24h",
    process: str | None = None,
    environment: str | None = None,
) -> Response:
    """The report of a period, optionally of one process or environment."""
    ctx, who = ctx_of(request), who_of(request)
    report = await reports.report(
        ctx, who, period=period, process=process or None, environment=environment or None
    )
    processes = [p.name for p, _ in await catalog.list_processes(ctx, who)]
    environments = [e.name for e in await catalog.list_environments(ctx, who)]
    return render(
        request,
        "reports.html",
        title="Reports",
        nav="reports",
        report=report,
        chart=chart.stacked_bars(report),
        periods=PERIODS,
        period=period,
        process=process or "",
        environment=environment or "",
        processes=processes,
        environments=environments,
    )
