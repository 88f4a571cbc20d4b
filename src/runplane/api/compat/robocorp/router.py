"""Robocorp Control Room style routes.

Legacy API (`/workspace-v1`, the per-process secret in the
`robocloud-process-secret` header or query parameter) and Process API
(`/process-v1`, `Authorization: RC-WSKEY <API token>`). Workspace and process
ids in paths take the runplane name or id. Bodies are read as JSON whatever
the Content-Type says (callers send none on some calls). Each route is one
use case of `service.work_items` rendered by `mapping.py`.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import Response

from runplane.api.compat.robocorp import mapping
from runplane.api.deps import principal_of
from runplane.api.native.render import JSON, attachment
from runplane.api.routing import surface_route
from runplane.domain import errors
from runplane.service import artifacts, catalog, refs
from runplane.service import work_items as svc
from runplane.service.context import Context

log = logging.getLogger("runplane.compat.robocorp")
Route = surface_route(lambda _, exc: mapping.error_response(exc), log)

legacy = APIRouter(prefix=mapping.LEGACY_PREFIX, tags=["robocorp"], route_class=Route)
process_api = APIRouter(prefix=mapping.PROCESS_PREFIX, tags=["robocorp"], route_class=Route)

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
UPLOADS = "/uploads/{file_id}"
LEGACY_RUN = "/workspaces/{workspace}/processes/{process}/runs/{run_id}"
P = "/workspaces/{workspace}/processes/{process}"


async def json_body(request: Request, default: Any) -> Any:
    """The JSON value of the body, whatever the Content-Type; `default` when empty."""
    raw = await request.body()
    if not raw.strip():
        return default
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.MalformedJson(f"The request body is not valid JSON: {exc}.") from exc


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise errors.InvalidRequest(
            f"{name} must be true or false.",
            problems=[{"name": name, "code": "invalid", "detail": "true or false."}],
        )
    return value in ("true", "1")


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise errors.InvalidRequest(
            f"limit must be an integer from 1 to {MAX_LIMIT}.",
            problems=[{"name": "limit", "code": "invalid", "detail": f"1 to {MAX_LIMIT}."}],
        )
    return int(raw)


async def _scope(request: Request, workspace: str, process: str | None = None) -> str:
    """Check the path's workspace; the process's runplane name (or "" without one)."""
    ctx: Context = request.app.state.ctx
    who = principal_of(request)
    await refs.workspace(ctx, who, workspace)
    return "" if process is None else await refs.process_name(ctx, who, process)


# --- Legacy API: workspace-v1 -------------------------------------------------------


@legacy.post("/workspaces/{workspace}/processes/{process}/runs")
async def legacy_start(workspace: str, process: str, request: Request) -> Response:
    """Start a run; the body is its work item's payload (bare or `{"variables": …}`)."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    payload = await json_body(request, {})
    [run] = await svc.start_runs(ctx, principal_of(request), name, [payload])
    return JSON(
        {
            "message": "OK",
            "processRunId": run.execution.id,
            "processId": run.execution.process_id,
            "workspaceId": run.execution.workspace_id,
            "workItemId": run.work_item_ids[0],
        }
    )


@legacy.get(LEGACY_RUN)
@legacy.post(LEGACY_RUN)
async def legacy_status(workspace: str, process: str, run_id: str, request: Request) -> Response:
    """A run's status (old callers poll with POST)."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    run = await svc.get_run(ctx, principal_of(request), name, run_id)
    return JSON(mapping.legacy_run(run.execution, ctx.clock()))


# --- Process API: process-v1 --------------------------------------------------------


@process_api.get("/workspaces/{workspace}/processes")
async def list_processes(workspace: str, request: Request) -> Response:
    """The workspace's processes (callers look them up by name)."""
    ctx: Context = request.app.state.ctx
    await _scope(request, workspace)
    rows = await catalog.list_processes(ctx, principal_of(request))
    return JSON({"data": [{"id": p.id, "name": p.name} for p, _ in rows]})


@process_api.get("/workspaces/{workspace}/pruns")
async def list_workspace_runs(workspace: str, request: Request) -> Response:
    """The newest runs of every process: a bare array, as Control Room answers it."""
    ctx: Context = request.app.state.ctx
    await _scope(request, workspace)
    runs = await svc.list_runs(ctx, principal_of(request), None, _limit(request))
    now = ctx.clock()
    return JSON([mapping.run(r, now) for r in runs])


@process_api.post(P + "/runs")
async def start_run(workspace: str, process: str, request: Request) -> Response:
    """Start a run; the body (any JSON value) is its work item's payload."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    payload = await json_body(request, {})
    [run] = await svc.start_runs(ctx, principal_of(request), name, [payload])
    return JSON(mapping.started(run))


@process_api.post(P + "/runs-batch")
async def start_runs(workspace: str, process: str, request: Request) -> Response:
    """Start one run per element of a JSON array; all or none."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    payloads = await json_body(request, None)
    if not isinstance(payloads, list) or not payloads:
        raise errors.InvalidRequest(
            "The body must be a non-empty JSON array of work item payloads.",
            problems=[{"name": "body", "code": "wrong_type", "detail": "A non-empty array."}],
        )
    runs = await svc.start_runs(ctx, principal_of(request), name, payloads)
    return JSON({"data": [mapping.started(r) for r in runs]})


@process_api.post(P + "/run-request")
async def run_request(workspace: str, process: str, request: Request) -> Response:
    """Start runs: `{"type": "workItemIds", "workItemIds": [...]}` one per named waiting
    item; `{"type": "default"}` one per waiting item, or one with an empty payload."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    body = await json_body(request, {})
    if not isinstance(body, dict):
        raise errors.InvalidRequest(
            "The body must be a JSON object.",
            problems=[{"name": "body", "code": "wrong_type", "detail": "An object."}],
        )
    kind = body.get("type", "workItemIds" if "workItemIds" in body else "default")
    item_ids: list[str] | None = None
    if kind == "workItemIds":
        item_ids = body.get("workItemIds")
        if (
            not isinstance(item_ids, list)
            or not item_ids
            or not all(isinstance(i, str) for i in item_ids)
        ):
            raise errors.InvalidRequest(
                "workItemIds must be a non-empty array of work item ids.",
                problems=[
                    {"name": "workItemIds", "code": "wrong_type", "detail": "Array of strings."}
                ],
            )
    elif kind != "default":
        raise errors.InvalidRequest(
            f"Unknown run-request type {kind!r}.",
            problems=[{"name": "type", "code": "invalid", "detail": "'default' or 'workItemIds'."}],
        )
    runs = await svc.run_items(ctx, principal_of(request), name, item_ids)
    return JSON({"data": [mapping.started(r) for r in runs]})


@process_api.get(P + "/runs")
async def list_runs(workspace: str, process: str, request: Request) -> Response:
    """The process's newest runs."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    runs = await svc.list_runs(ctx, principal_of(request), name, _limit(request))
    now = ctx.clock()
    return JSON({"data": [mapping.run(r, now) for r in runs]})


@process_api.get(P + "/runs/{run_id}")
async def get_run(workspace: str, process: str, run_id: str, request: Request) -> Response:
    """A run's status."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    run = await svc.get_run(ctx, principal_of(request), name, run_id)
    return JSON(mapping.run(run, ctx.clock()))


@process_api.get(P + "/runs/{run_id}/robotRuns/{robot_run_id}")
async def get_robot_run(
    workspace: str, process: str, run_id: str, robot_run_id: str, request: Request
) -> Response:
    """The robot run (attempt) of a run."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    run = await svc.get_run(ctx, principal_of(request), name, run_id)
    found = next((r for r in mapping.robot_runs(run.execution) if r["id"] == robot_run_id), None)
    if found is None:
        raise errors.ExecutionNotFound(f"No robot run {robot_run_id!r} in run {run_id!r}.")
    return JSON(found)


@process_api.get(P + "/runs/{run_id}/robotRuns/{robot_run_id}/artifacts")
async def list_artifacts(
    workspace: str, process: str, run_id: str, robot_run_id: str, request: Request
) -> Response:
    """The files the robot run (attempt) left in its artifacts folder: a bare array."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    run = await svc.get_run(ctx, principal_of(request), name, run_id)
    attempt = _attempt_of(run_id, robot_run_id)
    listed = await artifacts.list_artifacts(ctx, principal_of(request), run.execution.id)
    return JSON(
        [
            {"id": a["id"], "fileName": a["name"], "fileSize": a["size"]}
            for a in listed
            if a["attempt"] == attempt
        ]
    )


@process_api.get(P + "/runs/{run_id}/robotRuns/{robot_run_id}/artifacts/{artifact_id}/{file_name}")
async def artifact_link(
    workspace: str,
    process: str,
    run_id: str,
    robot_run_id: str,
    artifact_id: str,
    file_name: str,
    request: Request,
) -> Response:
    """A JSON string: a link (good for an hour, no Authorization) to the artifact's bytes."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    run = await svc.get_run(ctx, principal_of(request), name, run_id)
    token = await artifacts.link_token(ctx, principal_of(request), run.execution.id, artifact_id)
    base = str(request.base_url).rstrip("/") + mapping.PROCESS_PREFIX
    url = f"{base}/uploads/artifacts/{artifact_id}?token={quote(token)}"
    return JSON(url, headers={"Cache-Control": "no-store"})


def _attempt_of(run_id: str, robot_run_id: str) -> int:
    """A robot run id is `<run id>-<attempt>`."""
    prefix, _, number = robot_run_id.rpartition("-")
    if prefix != run_id or not number.isdigit():
        raise errors.ExecutionNotFound(f"No robot run {robot_run_id!r} in run {run_id!r}.")
    return int(number)


@process_api.get(P + "/runs/{run_id}/work-items")
async def list_run_items(workspace: str, process: str, run_id: str, request: Request) -> Response:
    """The work items of a run."""
    name = await _scope(request, workspace, process)
    return await _items(request, name, run_id)


@process_api.post(P + "/work-items")
async def create_item(workspace: str, process: str, request: Request) -> Response:
    """A work item that waits for a run-request: `{"payload": …}`, or with
    `?bodyAsPayload=true` the body itself."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    body = await json_body(request, {})
    if _flag(request, "bodyAsPayload"):
        payload = body
    elif isinstance(body, dict):
        payload = body.get("payload", {})
    else:
        raise errors.InvalidRequest(
            'The body must be {"payload": …} (or send ?bodyAsPayload=true).',
            problems=[{"name": "body", "code": "wrong_type", "detail": "An object."}],
        )
    item = await svc.create_item(ctx, principal_of(request), name, payload)
    return JSON(mapping.work_item(item, include_data=True))


@process_api.get(P + "/work-items")
async def list_items(workspace: str, process: str, request: Request) -> Response:
    """The process's work items, newest first."""
    name = await _scope(request, workspace, process)
    return await _items(request, name, None)


@process_api.get(P + "/work-items/{item_id}")
async def get_item(workspace: str, process: str, item_id: str, request: Request) -> Response:
    """One work item."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    item = await svc.get_item(ctx, principal_of(request), name, item_id)
    return JSON(mapping.work_item(item, _flag(request, "includeData")))


@process_api.post(P + "/work-items/{item_id}/retry")
async def retry_item(workspace: str, process: str, item_id: str, request: Request) -> Response:
    """Give a work item whose run failed to a new run."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    item = await svc.retry_item(ctx, principal_of(request), name, item_id)
    return JSON(mapping.work_item(item, include_data=False))


@process_api.post(P + "/work-items/{item_id}/files/upload")
async def request_upload(workspace: str, process: str, item_id: str, request: Request) -> Response:
    """Step one of a file upload: `{"fileName", "fileSize"}` → `{"url", "fields"}`, where
    the file goes as a multipart POST with the fields and a `file` part."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    body = await json_body(request, {})
    if not isinstance(body, dict):
        raise errors.InvalidRequest(
            'The body must be {"fileName", "fileSize"}.',
            problems=[{"name": "body", "code": "wrong_type", "detail": "An object."}],
        )
    file_id, token = await svc.request_upload(
        ctx, principal_of(request), name, item_id, body.get("fileName"), body.get("fileSize")
    )
    url = str(request.base_url).rstrip("/") + mapping.PROCESS_PREFIX + f"/uploads/{file_id}"
    return JSON(
        {"url": url, "fields": {"key": file_id, "token": token}},
        headers={"Cache-Control": "no-store"},
    )


@process_api.post(UPLOADS, status_code=204)
async def upload(file_id: str, request: Request) -> Response:
    """Step two: the bytes, as multipart/form-data with the `fields` of step one and a
    `file` part. The one-time token in the fields is the credential."""
    ctx: Context = request.app.state.ctx
    token: Any = None
    content: bytes | None = None
    try:
        async with request.form(max_files=1, max_fields=20) as form:
            token, part = form.get("token"), form.get("file")
            if isinstance(part, UploadFile):
                content = await part.read()
    except HTTPException as exc:  # Starlette's answer to a body it cannot parse as a form
        raise errors.InvalidRequest(
            "The body must be multipart/form-data with the upload fields and a file part.",
            problems=[{"name": "body", "code": "not_multipart", "detail": str(exc.detail)}],
        ) from exc
    missing = [n for n, v in (("token", token), ("file", content)) if v is None]
    if not isinstance(token, str) or content is None:
        raise errors.InvalidRequest(
            "The form needs the field 'token' and a part 'file'.",
            problems=[{"name": n, "code": "missing", "detail": "Required."} for n in missing],
        )
    await svc.upload(ctx, file_id, token, content)
    return Response(status_code=204)


@process_api.get(P + "/work-items/{item_id}/files/{file_id}")
async def download(
    workspace: str, process: str, item_id: str, file_id: str, request: Request
) -> Response:
    """The bytes of a file uploaded to the item."""
    ctx: Context = request.app.state.ctx
    name = await _scope(request, workspace, process)
    file_name, content = await svc.get_file(ctx, principal_of(request), name, item_id, file_id)
    return attachment(content, file_name)


async def _items(request: Request, process: str, run_id: str | None) -> Response:
    """A list of work items (of one run, or of the process) as the query asks."""
    ctx: Context = request.app.state.ctx
    items = await svc.list_items(
        ctx, principal_of(request), process, run_id, _limit(request), _oldest_first(request)
    )
    data = _flag(request, "includeData")
    return JSON({"data": [mapping.work_item(i, data) for i in items]})


def _oldest_first(request: Request) -> bool:
    """Items sort by `createTs` (their id order): newest first unless `sortOrder=asc`."""
    order = request.query_params.get("sortOrder", "desc").lower()
    if order not in ("asc", "desc"):
        raise errors.InvalidRequest(
            "sortOrder must be asc or desc.",
            problems=[{"name": "sortOrder", "code": "invalid", "detail": "asc or desc."}],
        )
    return order == "asc"
