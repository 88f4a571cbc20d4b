"""Boomi AtomSphere's vocabulary, in one place: ids, statuses, the ExecutionRecord, errors.

- workspace (by name or id) → `accountId`
- process (by name or id) → `processId`, `processName`
- environment, or the environment of a runtime → `atomId`; a record names the
  execution's environment as `atomId` / `atomName`
- execution `<id>` → `requestId` `executionrecord-<id>`, `executionId` `execution-<id>`
- queued, running → `INPROCESS` (the async look-up answers 202 until the first
  attempt starts); succeeded → `COMPLETE`; failed, timed_out → `ERROR`;
  cancelled → `ABORTED`

Errors are `{"@type": "Error", "message"}` with the HTTP status. Boomi has no
409 or 422: refusals of the request's content (not deployed, not invokable,
bad input arguments) are 400, as Boomi answers an ExecutionRequest it cannot run.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from runplane.api.compat.boomi.formats import LONG, render
from runplane.domain import errors
from runplane.domain.model import Execution
from runplane.domain.states import Status

PREFIX = "/api/rest/v1"
REQUEST_ID_PREFIX = "executionrecord-"
EXECUTION_ID_PREFIX = "execution-"
EXECUTION_TYPE = "exec_manual"  # every execution started over an API
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

STATUS = {
    Status.QUEUED: "INPROCESS",
    Status.RUNNING: "INPROCESS",
    Status.SUCCEEDED: "COMPLETE",
    Status.FAILED: "ERROR",
    Status.TIMED_OUT: "ERROR",
    Status.CANCELLED: "ABORTED",
}
# Boomi's statuses runplane never reports: a filter on them matches nothing.
OTHER_STATUSES = frozenset(
    {"ABORTED_RECOVERING", "COMPLETE_WARN", "DISCARDED", "ENQUEUED", "STARTED"}
)
_FROM_STATUS = {
    name: tuple(status for status, vendor in STATUS.items() if vendor == name)
    for name in set(STATUS.values())
}

NOT_YET = {"@type": "AsyncOperationResult", "responseStatusCode": 202}
"""What the async look-up answers (HTTP 202) while the execution has not started."""

# Refusals Boomi answers with 400 although runplane's own status differs.
_AS_BAD_REQUEST = (errors.Conflict, errors.Unprocessable)


def statuses(name: str) -> tuple[Status, ...] | None:
    """The runplane statuses a Boomi status stands for; None when it is not Boomi's."""
    if name in OTHER_STATUSES:
        return ()
    return _FROM_STATUS.get(name)


def request_id(e: Execution) -> str:
    """The requestId of an ExecutionRequest that started `e`."""
    return REQUEST_ID_PREFIX + e.id


def execution_id(e: Execution) -> str:
    """The executionId of `e` in its ExecutionRecord."""
    return EXECUTION_ID_PREFIX + e.id


def runplane_id(ref: str, prefix: str) -> str | None:
    """The execution id inside a requestId or executionId; None when it holds none."""
    if not ref.startswith(prefix):
        return None
    try:
        return str(uuid.UUID(ref[len(prefix) :]))
    except ValueError:
        return None


def date(value: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` in UTC, no fractions: callers parse it strictly."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(DATE_FORMAT)


def long(value: int, *, as_array: bool) -> Any:
    """A Long member: `["Long", n]` as real Boomi sends it, or the bare number."""
    return [LONG, value] if as_array else value


def not_started(e: Execution) -> bool:
    """True while no attempt has started: the record "is not available" yet (202)."""
    return e.started_at is None and not e.status.terminal


def record(e: Execution, account: str, *, long_as_array: bool) -> dict[str, Any]:
    """The ExecutionRecord of an execution."""
    out: dict[str, Any] = {
        "@type": "ExecutionRecord",
        "executionId": execution_id(e),
        "account": account,
        "executionTime": date(e.created_at),
        "status": STATUS[e.status],
        "executionType": EXECUTION_TYPE,
        "processName": e.process_name,
        "processId": e.process_id,
        "atomName": e.environment_name,
        "atomId": e.environment_id,
        "recordedDate": date(e.updated_at),
    }
    if e.duration_ms is not None:
        out["executionDuration"] = long(e.duration_ms, as_array=long_as_array)
    if e.status.terminal and e.status is not Status.SUCCEEDED:
        out["message"] = e.error_message or e.error_code or STATUS[e.status]
    return out


def async_result(e: Execution, account: str, *, long_as_array: bool) -> dict[str, Any]:
    """The answer (HTTP 200) of the async look-up once the execution has started."""
    return {
        "@type": "AsyncOperationResult",
        "responseStatusCode": 200,
        "numberOfResults": 1,
        "result": [record(e, account, long_as_array=long_as_array)],
    }


def query_result(
    items: list[Execution], token: str | None, account: str, *, long_as_array: bool
) -> dict[str, Any]:
    """One page of an ExecutionRecord query; `queryToken` only when more pages exist."""
    out: dict[str, Any] = {"@type": "QueryResult", "numberOfResults": len(items)}
    if token is not None:
        out["queryToken"] = token
    out["result"] = [record(e, account, long_as_array=long_as_array) for e in items]
    return out


def _message(exc: errors.RunplaneError) -> str:
    if isinstance(exc, errors.EnvironmentRequired):
        names = ", ".join(exc.extra.get("environments", []))
        return (
            f"The atom serves every environment and the process is deployed invokable "
            f"to several ({names}): use an atomId that names one of them."
        )
    details = [f"{p['name']}: {p['detail']}" for p in exc.problems if p.get("detail")]
    return " ".join([exc.detail, *details])


def status_of(exc: errors.RunplaneError) -> int:
    """The HTTP status Boomi's API gives this refusal."""
    return 400 if isinstance(exc, _AS_BAD_REQUEST) else exc.status


def error_response(
    exc: Exception, headers: Mapping[str, str] | None = None, *, xml: bool = False
) -> Response:
    """The answer to any exception on this surface (the one mapping)."""
    if not isinstance(exc, errors.RunplaneError):
        exc = errors.RunplaneError("An unexpected error occurred.")
    body = {"@type": "Error", "message": _message(exc)}
    return render(body, status_of(exc), xml=xml, headers=headers)
