"""MuleSoft RPA's vocabulary, in one place: statuses, the status document, errors.

Error bodies on this surface are `{"status", "code", "message"}` with the HTTP
status (MuleSoft's own error body is not documented; this shape is a judgement
call, kept here so it is easy to change).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from runplane.api.native.render import JSON, ts
from runplane.domain import errors
from runplane.domain.model import Execution
from runplane.domain.states import Status

ROOT = "/mulesoft/rpa/api"  # as RPA Manager's {tenant}/rpa/api
PREFIX = ROOT + "/v2"  # OAuth2 client credentials
V1_PREFIX = ROOT + "/v1"  # an API key (x-apikey header)

STATUS = {
    Status.QUEUED: "notStarted",
    Status.RUNNING: "running",
    Status.SUCCEEDED: "success",
    Status.FAILED: "error",
    Status.TIMED_OUT: "error",
    Status.CANCELLED: "error",
}


def status_document(e: Execution) -> dict[str, Any]:
    """ProcessExecutionStatus: what MuleSoft callers poll."""
    status = STATUS[e.status]
    result: dict[str, Any] | None = None
    if e.status is Status.SUCCEEDED:
        result = e.result or {}
    elif STATUS[e.status] == "error":
        result = {"code": e.error_code or "ERROR", "message": e.error_message or ""}
    return {
        "executionId": e.client_execution_id,
        "status": status,
        "statusChangedAt": ts(e.updated_at),
        "message": f"The process execution is in status {status}",
        "label": None,
        "result": result,
    }


def error_response(exc: Exception, headers: dict[str, str] | None = None) -> Response:
    """The answer to any exception on this surface (the one mapping)."""
    if not isinstance(exc, errors.RunplaneError):
        exc = errors.RunplaneError("An unexpected error occurred.")
    body: dict[str, Any] = {"status": exc.status, "code": exc.code, "message": exc.detail}
    if exc.problems:
        body["errors"] = exc.problems
    return JSON(body, status_code=exc.status, headers=headers)
