"""Robocorp Control Room's vocabulary, in one place: run states, documents, errors.

Error bodies on these surfaces are `{"error": <code>, "message": <text>}` with
the HTTP status (the vendor's own error body is not documented; this is the
shape of its newer API, a judgement call kept here so it is easy to change).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.responses import Response

from runplane.api.native.render import JSON, ts
from runplane.domain import errors
from runplane.domain.model import Execution, WorkItem
from runplane.domain.states import Status
from runplane.service.work_items import Run

LEGACY_PREFIX = "/workspace-v1"
PROCESS_PREFIX = "/process-v1"
UPLOADS_PREFIX = PROCESS_PREFIX + "/uploads/"  # presigned: the form's token authenticates

# Run states. Queued is INI until the first attempt starts, IND while it waits
# for a retry; ended executions are COMPL, with result OK or ERR.
QUEUED_NEW, QUEUED_AGAIN, IN_PROGRESS, COMPLETED = "INI", "IND", "IP", "COMPL"

WORK_ITEM_STATE = {
    None: "PENDING",
    Status.QUEUED: "PENDING",
    Status.RUNNING: "IN_PROGRESS",
    Status.SUCCEEDED: "DONE",
    Status.FAILED: "FAILED",
    Status.TIMED_OUT: "FAILED",
    Status.CANCELLED: "FAILED",
}


def state(e: Execution) -> str:
    """The Control Room run state of an execution."""
    if e.status.terminal:
        return COMPLETED
    if e.status is Status.RUNNING:
        return IN_PROGRESS
    return QUEUED_NEW if e.started_at is None else QUEUED_AGAIN


def result(e: Execution) -> str | None:
    """OK or ERR once completed, else None."""
    if not e.status.terminal:
        return None
    return "OK" if e.status is Status.SUCCEEDED else "ERR"


def error_code(e: Execution) -> str:
    """Always a string: "" unless the run ended in error."""
    if not e.status.terminal or e.status is Status.SUCCEEDED:
        return ""
    return e.error_code or "ERROR"


def duration(e: Execution, now: datetime) -> int:
    """Seconds the last attempt ran (so far, while it runs)."""
    if e.started_at is None:
        return 0
    end = e.finished_at or now
    return max(0, round((end - e.started_at).total_seconds()))


def robot_run(e: Execution) -> dict[str, Any]:
    """The robot run of the current attempt."""
    return {
        "id": f"{e.id}-{e.attempt}",
        "attempt": e.attempt,
        "state": state(e),
        "result": result(e),
        "errorCode": error_code(e),
        "errorMessage": e.error_message if error_code(e) else None,
        "runtime": e.runtime_name,
        "startTs": ts(e.started_at),
        "endTs": ts(e.finished_at),
    }


def robot_runs(e: Execution) -> list[dict[str, Any]]:
    """Always a list: empty until an attempt has started."""
    return [] if e.started_at is None else [robot_run(e)]


def legacy_run(e: Execution, now: datetime) -> dict[str, Any]:
    """workspace-v1 run status."""
    return {
        "id": e.id,
        "result": result(e),
        "state": state(e),
        "errorCode": error_code(e),
        "duration": duration(e, now),
        "workspaceId": e.workspace_id,
    }


def run(r: Run, now: datetime) -> dict[str, Any]:
    """process-v1 run status."""
    e = r.execution
    return {
        "id": e.id,
        "runNo": r.number,
        "state": state(e),
        "result": result(e),
        "errorCode": error_code(e),
        "errorMessage": e.error_message if error_code(e) else None,
        "duration": duration(e, now),
        "workspaceId": e.workspace_id,
        "processId": e.process_id,
        "processName": e.process_name,
        "environment": e.environment_name,
        "createTs": ts(e.created_at),
        "startTs": ts(e.started_at),
        "endTs": ts(e.finished_at),
        "workItemIds": list(r.work_item_ids),
        "robotRuns": robot_runs(e),
    }


def started(r: Run) -> dict[str, Any]:
    """What starting a run answers."""
    return {"id": r.execution.id, "workItemIds": list(r.work_item_ids)}


# how a robot released an item in its run, as Control Room shows it
RELEASED_STATE = {"COMPLETED": "DONE", "FAILED": "FAILED"}


def work_item(item: WorkItem, include_data: bool) -> dict[str, Any]:
    """A work item; its payload only when asked for."""
    doc: dict[str, Any] = {
        "id": item.id,
        "state": RELEASED_STATE.get(item.released or "", WORK_ITEM_STATE[item.execution_status]),
        "stateTs": ts(item.state_at),
        "createTs": ts(item.created_at),
        "queueTs": ts(item.queued_at),
        "workspaceId": item.workspace_id,
        "processId": item.process_id,
        "processName": item.process_name,
        "processRunId": item.execution_id,
        "activityId": None,
        "activityRunId": None,
        "batchPriority": 0,
        "files": [{"id": f.id, "fileName": f.name, "fileSize": f.size} for f in item.files],
    }
    if item.exception is not None:
        doc["exception"] = item.exception
    if item.parent_id is not None:
        doc["parentId"] = item.parent_id
    if include_data:
        doc["payload"] = item.payload
    return doc


def error_response(exc: Exception, headers: dict[str, str] | None = None) -> Response:
    """The answer to any exception on these surfaces (the one mapping)."""
    if not isinstance(exc, errors.RunplaneError):
        exc = errors.RunplaneError("An unexpected error occurred.")
    body: dict[str, Any] = {"error": exc.code, "message": exc.detail}
    if exc.problems:
        body["errors"] = exc.problems
    return JSON(body, status_code=exc.status, headers=headers)
