"""Runtimes: every runtime with its environment, state, slots in use, labels, version and
last heartbeat (the table refreshes itself as executions change)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from runplane.service import catalog, leases
from runplane.web.common import ctx_of, is_htmx, who_of
from runplane.web.errors import console_route
from runplane.web.templating import render

router = APIRouter(route_class=console_route(), include_in_schema=False)


@router.get("/runtimes")
async def runtimes_page(request: Request) -> Response:
    """The runtimes of the workspace."""
    ctx, who = ctx_of(request), who_of(request)
    envs = {e.id: e.name for e in await catalog.list_environments(ctx, who)}
    silent_since = ctx.clock() - timedelta(seconds=ctx.settings.lease_ttl_seconds)
    rows = [
        (
            rt,
            envs.get(rt.environment_id, "") if rt.environment_id else "every environment",
            "unresponsive"
            if rt.state == "online" and rt.last_heartbeat_at < silent_since
            else rt.state,
        )
        for rt in await leases.list_runtimes(ctx, who)
    ]
    template = "_runtimes_table.html" if is_htmx(request) else "runtimes.html"
    return render(request, template, title="Runtimes", nav="runtimes", rows=rows)
