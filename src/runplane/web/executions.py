"""Executions: the home page (newest first, filtered, keyset-paginated, live) and one
execution (timeline, inputs, result, error, live log, Cancel, Run again)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from runplane.api.native.render import attachment
from runplane.domain import errors
from runplane.domain.auth import Scope
from runplane.domain.model import Execution
from runplane.domain.states import Status
from runplane.service import artifacts, catalog, robot_runs
from runplane.service import executions as svc
from runplane.web.common import ctx_of, is_htmx, who_of
from runplane.web.errors import console_route
from runplane.web.templating import CANCELLABLE, render

router = APIRouter(route_class=console_route(), include_in_schema=False)

PAGE_SIZE = 50
LOG_TAIL_CHUNKS = 200  # the log opens at its tail; earlier chunks load on demand
TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


def _time(name: str, raw: str | None, problems: list[dict[str, Any]]) -> datetime | None:
    if not raw:
        return None
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    problems.append({"name": name, "code": "invalid_time", "detail": f"Not a time: {raw!r}."})
    return None


def _status(raw: str | None, problems: list[dict[str, Any]]) -> list[Status] | None:
    if not raw:
        return None
    try:
        return [Status(raw)]
    except ValueError:
        allowed = ", ".join(s.value for s in Status)
        problems.append(
            {"name": "status", "code": "invalid_status", "detail": f"One of {allowed}."}
        )
        return None


@router.get("/")
async def executions_page(
    request: Request,
    process: str | None = None,
    environment: str | None = None,
    status: str | None = None,
    since: str | None = None,
    until: str | None = None,
    cursor: str | None = None,
) -> Response:
    """Executions, newest first: filters, a page of rows, the link to older ones."""
    ctx, who = ctx_of(request), who_of(request)
    problems: list[dict[str, Any]] = []
    statuses = _status(status, problems)
    since_at, until_at = _time("since", since, problems), _time("until", until, problems)
    if problems:
        raise errors.InvalidRequest("The filter is not valid.", problems=problems)
    page = await svc.list_executions(
        ctx,
        who,
        process=process or None,
        environment=environment or None,
        statuses=statuses,
        since=since_at,
        until=until_at,
        cursor=cursor or None,
        limit=PAGE_SIZE,
    )
    filters = {
        k: v
        for k, v in {
            "process": process,
            "environment": environment,
            "status": status,
            "since": since,
            "until": until,
        }.items()
        if v
    }
    older = urlencode({**filters, "cursor": page.next_cursor}) if page.next_cursor else ""
    values: dict[str, Any] = {
        "executions": page.items,
        "older": older,
        "filters": filters,
        "first_page": not cursor,
        "live_query": urlencode(
            {k: v for k, v in filters.items() if k in ("process", "environment")}
        ),
    }
    if is_htmx(request) and request.headers.get("hx-target") == "executions":
        return render(request, "_executions_table.html", **values)
    processes = [p.name for p, _ in await catalog.list_processes(ctx, who)]
    environments = [e.name for e in await catalog.list_environments(ctx, who)]
    return render(
        request,
        "executions.html",
        title="Executions",
        nav="executions",
        processes=processes,
        environments=environments,
        statuses=[s.value for s in Status],
        **values,
    )


@router.get("/executions/{execution_id}/row")
async def execution_row(request: Request, execution_id: str) -> Response:
    """One row of the executions table (the live list adds and refreshes rows with it)."""
    execution = await svc.get(ctx_of(request), who_of(request), execution_id)
    return render(request, "_execution_row.html", e=execution)


async def _summary(request: Request, execution: Execution) -> dict[str, Any]:
    ctx, who = ctx_of(request), who_of(request)
    ended = execution.status not in CANCELLABLE
    return {
        "e": execution,
        "can_cancel": who.has(Scope.EXECUTIONS_START) and execution.status in CANCELLABLE,
        "can_start": who.has(Scope.EXECUTIONS_START),
        # a robot's run: its work items, and the files it left (kept once it ended)
        "work_items": await robot_runs.items_of(ctx, execution),
        "artifacts": await artifacts.artifacts_of(ctx, execution) if ended else [],
    }


@router.get("/executions/{execution_id}")
async def execution_page(request: Request, execution_id: str) -> Response:
    """One execution: status and timeline, inputs, result, error, the live log."""
    execution = await svc.get(ctx_of(request), who_of(request), execution_id)
    return render(
        request,
        "execution.html",
        title=f"{execution.process_name} · {execution.id}",
        nav="executions",
        log_tail=LOG_TAIL_CHUNKS,
        **await _summary(request, execution),
    )


@router.get("/executions/{execution_id}/summary")
async def execution_summary(request: Request, execution_id: str) -> Response:
    """The live part of the execution page (status, timeline, result, buttons)."""
    execution = await svc.get(ctx_of(request), who_of(request), execution_id)
    return render(request, "_execution_summary.html", **await _summary(request, execution))


@router.get("/executions/{execution_id}/artifacts/{name:path}")
async def artifact(request: Request, execution_id: str, name: str) -> Response:
    """An artifact's bytes, for the signed-in user who may see the execution."""
    file_name, content = await artifacts.get_artifact(
        ctx_of(request), who_of(request), execution_id, name
    )
    return attachment(content, file_name)


@router.post("/executions/{execution_id}/cancel")
async def cancel(request: Request, execution_id: str) -> Response:
    """Cancel; the summary comes back (a running execution ends once its runtime killed it)."""
    execution = await svc.cancel(ctx_of(request), who_of(request), execution_id)
    return render(request, "_execution_summary.html", **await _summary(request, execution))
