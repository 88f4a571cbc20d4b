"""MuleSoft RPA style routes: start (PUT idempotent, POST), poll, the process's OpenAPI.

A thin translation: parse → one service call → render in MuleSoft's words
(`mapping.py`). Input keys that name no parameter (MuleSoft callers send
output parameters too) are dropped and noted in the execution log.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from runplane.api.compat.mulesoft import mapping
from runplane.api.compat.mulesoft.openapi import process_openapi
from runplane.api.deps import principal_of
from runplane.api.native.render import JSON
from runplane.api.routing import surface_route
from runplane.domain import errors
from runplane.service import catalog, refs
from runplane.service import executions as svc
from runplane.service.context import Context

log = logging.getLogger("runplane.compat.mulesoft")

routes = APIRouter(
    tags=["mulesoft"],
    route_class=surface_route(lambda _, exc: mapping.error_response(exc), log),
)


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object in the body, whatever the Content-Type says."""
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise errors.MalformedJson(f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise errors.InvalidRequest("The request body must be a JSON object.")
    arguments = body.get("inputArguments", {})
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise errors.InvalidRequest(
            "inputArguments must be an object.",
            problems=[{"name": "inputArguments", "code": "wrong_type", "detail": "An object."}],
        )
    return {**body, "inputArguments": arguments}


async def _start(request: Request, process: str) -> Response:
    ctx: Context = request.app.state.ctx
    who = principal_of(request)
    process = await refs.process_name(ctx, who, process)
    body = await _body(request)
    execution_id = None
    if request.method == "PUT":
        raw = body.get("executionId")
        if not isinstance(raw, str) or not raw:
            raise errors.InvalidRequest(
                "executionId is required (a non-empty string).",
                problems=[{"name": "executionId", "code": "missing", "detail": "A string."}],
            )
        execution_id = raw
    execution, created = await svc.start(
        ctx,
        who,
        svc.StartRequest(
            process,
            body["inputArguments"],
            environment=body.get("environment")
            if isinstance(body.get("environment"), str)
            else None,
            execution_id=execution_id,
            drop_undeclared=True,
        ),
    )
    if not created:
        return Response(status_code=204)
    return JSON(mapping.status_document(execution), status_code=201)


@routes.put("/processes/{process}/executions", status_code=201)
async def start_idempotent(process: str, request: Request) -> Response:
    """startProcessV2: start under the caller's executionId (201), or a repeat (204)."""
    return await _start(request, process)


@routes.post("/processes/{process}/executions", status_code=201)
async def start(process: str, request: Request) -> Response:
    """startProcessNonIdempotentV2: start with a server-made executionId."""
    return await _start(request, process)


@routes.get("/processes/{process}/executions/{execution_id:path}")
async def status(process: str, execution_id: str, request: Request) -> Response:
    """getProcessesExecutionStatusV2: the status document of an execution."""
    ctx: Context = request.app.state.ctx
    who = principal_of(request)
    name = await refs.process_name(ctx, who, process)
    execution = await svc.get_by_client_id(ctx, who, name, execution_id)
    return JSON(mapping.status_document(execution))


@routes.get("/processes/{process}/openapi.json")
async def openapi(process: str, request: Request) -> Response:
    """An OpenAPI document of this process's invocation API, typed from its declarations."""
    ctx: Context = request.app.state.ctx
    who = principal_of(request)
    process = await refs.process_name(ctx, who, process)
    _, versions, deployments = await catalog.get_process(ctx, who, process)
    live = [d for d in deployments if d.invokable]
    version = next(
        (v for v in versions if live and v.number == live[0].version_number), versions[0]
    )
    v1 = request.url.path.startswith(mapping.V1_PREFIX + "/")
    base = str(request.base_url).rstrip("/") + (mapping.V1_PREFIX if v1 else mapping.PREFIX)
    return JSON(process_openapi(process, version.spec, base, api_key=v1))


# The same routes under v2 (OAuth2 bearer tokens) and v1 (an API key in x-apikey).
router = APIRouter(prefix=mapping.PREFIX)
router.include_router(routes)
router_v1 = APIRouter(prefix=mapping.V1_PREFIX)
router_v1.include_router(routes)
