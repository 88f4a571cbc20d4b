"""Native API: start, track, list and cancel executions (their logs: logs.py).

Routers translate only: parse → one service call → render.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.responses import Response

from runplane.api.deps import Ctx, Who, principal_of
from runplane.api.native import render
from runplane.api.native.render import JSON
from runplane.domain import errors
from runplane.domain.states import Status
from runplane.service import executions as svc
from runplane.service.context import Context

router = APIRouter(prefix="/api/v1", tags=["executions"])

TRIGGER_PATH = "/api/v1/processes/{process}/executions"

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


# The two trigger routes are the hot path: they validate their body with a
# prebuilt TypeAdapter instead of FastAPI's per-request dependency solving
# (measured: docs/benchmarks.md), and document the same contract by hand.
_START_BODY = TypeAdapter(StartBody)
_PUT_BODY = TypeAdapter(PutBody)
_WAIT_DOC = {
    "name": "wait",
    "in": "query",
    "required": False,
    "schema": {"type": "number", "minimum": 0, "default": 0},
    "description": "Hold the response up to this many seconds until the execution is "
    "terminal (capped by the server's maximum, 60 s by default).",
}
_PROCESS_DOC = {"name": "process", "in": "path", "required": True, "schema": {"type": "string"}}


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": model.model_json_schema()}},
    }


async def _parse(adapter: TypeAdapter[Any], request: Request) -> Any:
    raw = await request.body()
    try:
        return adapter.validate_json(raw if raw.strip() else b"{}")
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from exc


def _wait(request: Request) -> float:
    raw = request.query_params.get("wait")
    if raw is None:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:  # also refuses nan
        raise errors.InvalidRequest(
            "wait must be a number of seconds from 0 to 3600.",
            problems=[
                {"name": "wait", "in": "query", "code": "invalid_wait", "detail": "0 to 3600."}
            ],
        )
    return value


@router.put(
    "/processes/{process}/executions",
    status_code=201,
    responses={204: {"description": "The same executionId again, same inputs"}, 409: _PROBLEM},
    openapi_extra={"parameters": [_PROCESS_DOC, _WAIT_DOC], "requestBody": _body_doc(PutBody)},
)
async def put_execution(request: Request) -> Response:
    """Start an execution under a client execution id (201), or accept a repeat (204)."""
    body: PutBody = await _parse(_PUT_BODY, request)
    wait = _wait(request)
    ctx: Context = request.app.state.ctx
    who = principal_of(request)
    execution, created = await svc.start(
        ctx,
        who,
        svc.StartRequest(
            request.path_params["process"], body.inputArguments, body.environment, body.executionId
        ),
    )
    if not created:
        return Response(status_code=204)
    if wait:
        execution = await svc.get(ctx, who, execution.id, wait)
    record = render.execution(execution)
    return JSON(record, status_code=201, headers=_location(record))


@router.post(
    "/processes/{process}/executions",
    status_code=201,
    responses={200: {"description": "A repeated Idempotency-Key"}, 409: _PROBLEM},
    openapi_extra={
        "parameters": [
            _PROCESS_DOC,
            _WAIT_DOC,
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": "The client execution id: a repeat answers 200 with the "
                "first execution.",
            },
        ],
        "requestBody": _body_doc(StartBody),
    },
)
async def post_execution(request: Request) -> Response:
    """Start an execution (201 + Location). With an Idempotency-Key, a repeat answers 200
    with the first execution (header `Idempotent-Replayed: true`)."""
    body: StartBody = await _parse(_START_BODY, request)
    wait = _wait(request)
    key = request.headers.get("idempotency-key")
    if key is not None and not (
        0 < len(key) <= svc.MAX_CLIENT_EXECUTION_ID_CHARS and "\x00" not in key
    ):
        raise errors.InvalidRequest(
            "The Idempotency-Key header must be 1 to 255 characters.",
            problems=[
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "code": "invalid_length",
                    "detail": "1 to 255 characters.",
                }
            ],
        )
    ctx: Context = request.app.state.ctx
    who = principal_of(request)
    process = request.path_params["process"]
    execution, created = await svc.start(
        ctx, who, svc.StartRequest(process, body.inputArguments, body.environment, key)
    )
    if wait:
        execution = await svc.get(ctx, who, execution.id, wait)
    record = render.execution(execution)
    headers = _location(record)
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSON(record, status_code=201 if created else 200, headers=headers)


async def trigger(request: Request) -> Response:
    """PUT and POST on the trigger path, for the fast route (one route: one Allow header)."""
    if request.method == "PUT":
        return await put_execution(request)
    return await post_execution(request)


@router.get("/processes/{process}/executions/{execution_id:path}")
async def get_by_execution_id(
    process: str, execution_id: str, ctx: Ctx, who: Who, wait: WaitQuery = 0
) -> Response:
    """An execution by its client execution id."""
    return JSON(render.execution(await svc.get_by_client_id(ctx, who, process, execution_id, wait)))


@router.get("/executions")
async def list_executions(
    ctx: Ctx,
    who: Who,
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
        who,
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
async def get_execution(execution_id: str, ctx: Ctx, who: Who, wait: WaitQuery = 0) -> Response:
    """An execution record; `?wait=N` long-polls until it is terminal."""
    return JSON(render.execution(await svc.get(ctx, who, execution_id, wait)))


@router.post("/executions/{execution_id}/cancel", responses={202: {}, 409: _PROBLEM})
async def cancel_execution(execution_id: str, ctx: Ctx, who: Who) -> Response:
    """Cancel: 200 when cancelled at once (queued), 202 when its runtime is killing it."""
    execution = await svc.cancel(ctx, who, execution_id)
    return JSON(render.execution(execution), status_code=200 if execution.status.terminal else 202)


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
