"""The work-items API Robocorp's libraries call from inside a run (robocorp-workitems,
RPA.Robocorp.WorkItems), authenticated by the run's own token (`Authorization: Bearer`,
``RC_API_*_TOKEN``); see service/robot_runs.py and ../shared compat reference, Appendix A.

Under ``RC_API_PROCESS_HOST``: ``/process-v1/workspaces/{ws}/processes/{pid}/`` +
``runs/{run}/robotRuns/{activity}/reserve-next-work-item``, ``.../release-work-item``,
``work-items/{input}/output``. Under ``RC_API_WORKITEM_HOST``:
``/json-v1/workspaces/{ws}/workitems/{id}/data`` (GET, PUT) and ``.../files``.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from runplane.api.compat.robocorp import mapping
from runplane.api.compat.robocorp.router import json_body
from runplane.api.deps import principal_of
from runplane.api.native.render import JSON, attachment
from runplane.api.routing import surface_route
from runplane.domain import errors
from runplane.service import artifacts
from runplane.service import robot_runs as svc
from runplane.service.context import Context

log = logging.getLogger("runplane.compat.robocorp")
Route = surface_route(lambda _, exc: mapping.error_response(exc), log)

ITEMS_PREFIX = "/json-v1"
process_api = APIRouter(prefix=mapping.PROCESS_PREFIX, tags=["robocorp runs"], route_class=Route)
items_api = APIRouter(prefix=ITEMS_PREFIX, tags=["robocorp runs"], route_class=Route)

PA = "/workspaces/{workspace}/processes/{process}"
ROBOT_RUN = PA + "/runs/{run_id}/robotRuns/{activity_run_id}"
WA = "/workspaces/{workspace}/workitems/{item_id}"


async def _body(request: Request) -> Any:
    """The JSON body (whatever the Content-Type), None when empty."""
    return await json_body(request, None)


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


@process_api.post(ROBOT_RUN + "/reserve-next-work-item")
async def reserve_next(
    workspace: str, process: str, run_id: str, activity_run_id: str, request: Request
) -> Response:
    """The next input item for this run: `{"workItemId": null}`, each run has one."""
    who = principal_of(request)
    svc.check_path(who, workspace, process, run_id)
    return JSON({"workItemId": await svc.reserve_next(_ctx(request), who)})


@process_api.post(ROBOT_RUN + "/release-work-item")
async def release(
    workspace: str, process: str, run_id: str, activity_run_id: str, request: Request
) -> Response:
    """`{"workItemId", "state": COMPLETED|FAILED, "exception"?: {type, code?, message?}}`."""
    who = principal_of(request)
    svc.check_path(who, workspace, process, run_id)
    await svc.release(_ctx(request), who, await _body(request))
    return JSON({})


@process_api.post(PA + "/work-items/{item_id}/output")
async def output(workspace: str, process: str, item_id: str, request: Request) -> Response:
    """A new output item of the run: `{"payload": ...}` → `{"id"}`."""
    who = principal_of(request)
    svc.check_path(who, workspace, process, None)
    created = await svc.create_output(_ctx(request), who, item_id, await _body(request))
    return JSON({"id": created})


@items_api.get(WA + "/data")
async def get_data(workspace: str, item_id: str, request: Request) -> Response:
    """The item's payload, bare; 404 when it has none."""
    who = principal_of(request)
    svc.check_path(who, workspace, who.process_id or "", None)
    payload = await svc.get_data(_ctx(request), who, item_id)
    if payload is None:
        raise errors.NotFound("The work item has no payload.")
    return JSON(payload)


@items_api.put(WA + "/data")
async def put_data(workspace: str, item_id: str, request: Request) -> Response:
    """Replace the item's payload (the body, bare)."""
    who = principal_of(request)
    svc.check_path(who, workspace, who.process_id or "", None)
    await svc.put_data(_ctx(request), who, item_id, await _body(request))
    return JSON({})


@items_api.get(WA + "/files")
async def list_files(workspace: str, item_id: str, request: Request) -> Response:
    """`[{"fileName", "fileId"}]` of the item."""
    who = principal_of(request)
    svc.check_path(who, workspace, who.process_id or "", None)
    files = await svc.list_files(_ctx(request), who, item_id)
    return JSON([{"fileName": f.name, "fileId": f.id} for f in files])


@items_api.post(WA + "/files")
async def request_upload(workspace: str, item_id: str, request: Request) -> Response:
    """`{"fileName", "fileSize"}` → `{"url", "fields"}`: the file goes as a multipart POST
    to the URL with the fields and a `file` part (no Authorization)."""
    who = principal_of(request)
    svc.check_path(who, workspace, who.process_id or "", None)
    file_id, token = await svc.request_upload(_ctx(request), who, item_id, await _body(request))
    url = str(request.base_url).rstrip("/") + mapping.PROCESS_PREFIX + f"/uploads/{file_id}"
    return JSON(
        {"url": url, "fields": {"key": file_id, "token": token}},
        headers={"Cache-Control": "no-store"},
    )


@items_api.get(WA + "/files/{file_id}")
async def file_link(workspace: str, item_id: str, file_id: str, request: Request) -> Response:
    """`{"url"}`: a link (good for an hour, no Authorization) to the file's bytes."""
    who = principal_of(request)
    svc.check_path(who, workspace, who.process_id or "", None)
    token = await svc.download_token(_ctx(request), who, item_id, file_id)
    base = str(request.base_url).rstrip("/") + mapping.PROCESS_PREFIX
    return JSON(
        {"url": f"{base}/uploads/{file_id}?token={quote(token)}"},
        headers={"Cache-Control": "no-store"},
    )


@items_api.delete(WA + "/files/{file_id}")
async def delete_file(workspace: str, item_id: str, file_id: str, request: Request) -> Response:
    who = principal_of(request)
    svc.check_path(who, workspace, who.process_id or "", None)
    await svc.delete_file(_ctx(request), who, item_id, file_id)
    return JSON({})


@process_api.get("/uploads/{file_id}")
async def download(file_id: str, request: Request) -> Response:
    """A file's bytes, by the link `files/{fileId}` gave (its token is the credential)."""
    token = request.query_params.get("token", "")
    name, content = await svc.download(_ctx(request), file_id, token)
    return attachment(content, name)


@process_api.get("/uploads/artifacts/{artifact_id}")
async def artifact(artifact_id: str, request: Request) -> Response:
    """An artifact's bytes, by the link `artifacts/{id}/{fileName}` gave."""
    name, content = await artifacts.by_link(
        _ctx(request), artifact_id, request.query_params.get("token", "")
    )
    return attachment(content, name)
