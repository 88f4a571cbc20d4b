"""Native API: start, track, list, cancel executions and read their logs.

Routers translate only: parse → one service call → render.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from runplane.api.deps import Ctx
from runplane.api.native import render
from runplane.api.native.render import JSON
from runplane.domain import errors
from runplane.domain.states import Status
from runplane.service import executions as svc

router = APIRouter(prefix="/api/v1", tags=["executions"])

WaitQuery = Annotated[
    float,
    Query(
        ge=0,
        le=3600,
        description="Hold the request up to this many seconds until the execution is terminal "
        "(capped by the server's maximum, 60 s by default).",
    ),
]

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


class StartBody(BaseModel):
    """Start an execution: input arguments and, optionally, the environment."""

    model_config = ConfigDict(extra="forbid")

    inputArguments: dict[str, Any] = Field(default_factory=dict)
    environment: str | None = Field(
        default=None,
        description="Target environment; optional when the process is invokable in only one.",
    )


class PutBody(StartBody):
    """Start an execution idempotently under the client's execution id."""

    executionId: str = Field(min_length=1, max_length=255)


def _location(record: dict[str, Any]) -> dict[str, str]:
    return {"Location": record["links"]["self"]}


@router.put(
    "/processes/{process}/executions",
    status_code=201,
    responses={204: {"description": "The same executionId again, same inputs"}, 409: _PROBLEM},
)
async def put_execution(process: str, body: PutBody, ctx: Ctx, wait: WaitQuery = 0) -> Response:
    """Start an execution under a client execution id (201), or accept a repeat (204)."""
    execution, created = await svc.start(
        ctx,
        svc.StartRequest(process, body.inputArguments, body.environment, body.executionId),
    )
    if not created:
        return Response(status_code=204)
    if wait:
        execution = await svc.get(ctx, execution.id, wait)
    record = render.execution(execution)
    return JSON(record, status_code=201, headers=_location(record))


@router.post("/processes/{process}/executions", status_code=201, responses={409: _PROBLEM})
async def post_execution(
    process: str,
    body: StartBody,
    ctx: Ctx,
    wait: WaitQuery = 0,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
) -> Response:
    """Start an execution (201 + Location). With an Idempotency-Key, a repeat answers 200
    with the first execution (header `Idempotent-Replayed: true`)."""
    execution, created = await svc.start(
        ctx, svc.StartRequest(process, body.inputArguments, body.environment, idempotency_key)
    )
    if wait:
        execution = await svc.get(ctx, execution.id, wait)
    record = render.execution(execution)
    headers = _location(record)
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSON(record, status_code=201 if created else 200, headers=headers)


@router.get("/processes/{process}/executions/{execution_id:path}")
async def get_by_execution_id(
    process: str, execution_id: str, ctx: Ctx, wait: WaitQuery = 0
) -> Response:
    """An execution by its client execution id."""
    return JSON(render.execution(await svc.get_by_client_id(ctx, process, execution_id, wait)))


@router.get("/executions")
async def list_executions(
    ctx: Ctx,
    process: str | None = None,
    status: Annotated[list[str] | None, Query(description="Repeat or comma-separate.")] = None,
    environment: str | None = None,
    since: Annotated[datetime | None, Query(description="Created at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Created before (ISO 8601).")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """Executions, newest first, keyset-paginated: follow `nextCursor`."""
    statuses = _statuses(status)
    page = await svc.list_executions(
        ctx,
        process=process,
        statuses=statuses,
        environment=environment,
        since=_aware(since),
        until=_aware(until),
        cursor=cursor,
        limit=limit,
    )
    return JSON(
        {"items": [render.execution(e) for e in page.items], "nextCursor": page.next_cursor}
    )


@router.get("/executions/{execution_id}")
async def get_execution(execution_id: str, ctx: Ctx, wait: WaitQuery = 0) -> Response:
    """An execution record; `?wait=N` long-polls until it is terminal."""
    return JSON(render.execution(await svc.get(ctx, execution_id, wait)))


@router.post("/executions/{execution_id}/cancel", responses={202: {}, 409: _PROBLEM})
async def cancel_execution(execution_id: str, ctx: Ctx) -> Response:
    """Cancel: 200 when cancelled at once (queued), 202 when its runtime is killing it."""
    execution = await svc.cancel(ctx, execution_id)
    return JSON(render.execution(execution), status_code=200 if execution.status.terminal else 202)


@router.get(
    "/executions/{execution_id}/logs",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
async def execution_logs(execution_id: str, ctx: Ctx, follow: bool = False) -> Response:
    """The execution's log as text; `?follow=true` streams it until the execution ends."""
    if not follow:
        text, _ = render.log_text(await svc.logs(ctx, execution_id))
        return PlainTextResponse(text)
    await svc.get(ctx, execution_id)  # a 404 must come before the 200 starts streaming

    async def body() -> AsyncIterator[str]:
        attempt = None
        async for chunk in svc.follow_logs(ctx, execution_id):
            text, attempt = render.log_text([chunk], attempt)
            yield text

    return StreamingResponse(
        body(), media_type="text/plain; charset=utf-8", headers={"X-Accel-Buffering": "no"}
    )


def _statuses(values: list[str] | None) -> list[Status] | None:
    if not values:
        return None
    out: list[Status] = []
    bad: list[str] = []
    for raw in values:
        for item in filter(None, (s.strip() for s in raw.split(","))):
            try:
                out.append(Status(item))
            except ValueError:
                bad.append(item)
    if bad:
        allowed = ", ".join(s.value for s in Status)
        raise errors.InvalidRequest(
            f"Unknown status {', '.join(bad)}.",
            problems=[
                {"name": "status", "in": "query", "code": "invalid_status", "detail": allowed}
            ],
        )
    return out


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
