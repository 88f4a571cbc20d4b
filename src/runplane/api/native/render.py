"""Domain values → native API JSON (camelCase, ISO 8601 UTC timestamps with Z)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson
from starlette.responses import Response

from runplane.domain.model import (
    Claim,
    Deployment,
    Environment,
    Execution,
    ExecutionEvent,
    LogChunk,
    Runtime,
    Version,
)
from runplane.domain.reports import Report

API = "/api/v1"


def attachment(content: bytes, name: str) -> Response:
    """Bytes to save as a file: `name`'s last path segment, UTF-8 encoded (RFC 6266)."""
    base = quote(name.rsplit("/", 1)[-1])
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{base}"},
    )


class JSON(Response):
    """A JSON response rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def ts(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with millisecond precision and a Z."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def execution(e: Execution) -> dict[str, Any]:
    """An execution record."""
    link = f"{API}/executions/{e.id}"
    return {
        "id": e.id,
        "executionId": e.client_execution_id,
        "process": e.process_name,
        "version": e.version_number,
        "environment": e.environment_name,
        "status": e.status.value,
        "inputArguments": e.inputs,
        "result": e.result,
        "error": (
            {"code": e.error_code, "message": e.error_message or ""}
            if e.error_code is not None
            else None
        ),
        "attempt": e.attempt,
        "maxAttempts": e.max_attempts,
        "runtime": e.runtime_name,
        "cancelRequested": e.cancel_requested,
        "createdAt": ts(e.created_at),
        "startedAt": ts(e.started_at),
        "finishedAt": ts(e.finished_at),
        "durationMs": e.duration_ms,
        "links": {
            "self": link,
            "byExecutionId": (
                f"{API}/processes/{quote(e.process_name, safe='')}"
                f"/executions/{quote(e.client_execution_id, safe='')}"
            ),
            "logs": f"{link}/logs",
            "cancel": f"{link}/cancel",
        },
    }


def execution_event(e: ExecutionEvent) -> dict[str, Any]:
    """The data of an `execution` server-sent event: one status change."""
    return {
        "id": e.execution_id,
        "executionId": e.client_execution_id,
        "process": e.process_name,
        "version": e.version_number,
        "environment": e.environment_name,
        "status": e.status.value,
        "attempt": e.attempt,
        "error": None if e.error_code is None else {"code": e.error_code},
        "at": ts(e.at),
    }


def log_chunk(c: LogChunk) -> dict[str, Any]:
    """A log chunk as JSON (a `log` server-sent event, an item of a page of the log)."""
    return {"id": c.id, "text": c.text, "at": ts(c.created_at), "attempt": c.attempt}


def version(v: Version) -> dict[str, Any]:
    """A process version and what it declares."""
    spec = v.spec
    return {
        "process": v.process_name,
        "version": v.number,
        "contentHash": v.content_hash,
        "sizeBytes": v.bundle_bytes,
        "createdAt": ts(v.created_at),
        "entrypoint": spec["entrypoint"],
        "command": spec["command"],
        "timeoutSeconds": spec["timeoutSeconds"],
        "retries": spec["retries"],
        "description": spec.get("description", ""),
        "preload": bool(spec.get("preload", False)),
        "dependencies": spec.get("dependencies"),
        "parameters": spec["parameters"],
        "outputs": spec["outputs"],
    }


def deployment(d: Deployment) -> dict[str, Any]:
    """A deployment and its run configuration (secrets masked)."""
    return {
        "process": d.process_name,
        "environment": d.environment_name,
        "version": d.version_number,
        "inputArguments": d.input_arguments,
        "invokable": d.invokable,
        "concurrencyLimit": d.concurrency_limit,
        "createdAt": ts(d.created_at),
        "updatedAt": ts(d.updated_at),
    }


def environment(env: Environment) -> dict[str, Any]:
    """An environment."""
    return {"id": env.id, "name": env.name, "createdAt": ts(env.created_at)}


def runtime(rt: Runtime, environments: dict[str, str], *, silent: bool = False) -> dict[str, Any]:
    """A registered runtime; an `online` one silent for longer than a lease is `unresponsive`."""
    return {
        "id": rt.id,
        "name": rt.name,
        "environment": environments.get(rt.environment_id) if rt.environment_id else None,
        "slots": rt.slots,
        "slotsInUse": rt.busy,
        "labels": rt.labels,
        "version": rt.version,
        "state": "unresponsive" if silent and rt.state == "online" else rt.state,
        "startedAt": ts(rt.started_at),
        "lastHeartbeatAt": ts(rt.last_heartbeat_at),
    }


def claim(c: Claim) -> dict[str, Any]:
    """A lease handed to a remote runtime: everything it needs to run the execution.

    It carries secret inputs in plain text: served with `Cache-Control: no-store`.
    """
    return {
        "executionId": c.execution_id,
        "attempt": c.attempt,
        "leaseToken": c.lease_token,
        "leaseExpiresAt": ts(c.lease_expires_at),
        "versionId": c.version_id,
        "contentHash": c.content_hash,
        "spec": c.spec,
        "inputs": c.inputs,
        "secretNames": list(c.secret_names),
        "timeoutSeconds": c.timeout_seconds,
        "robotRun": c.robot_run,
    }


def log_text(chunks: list[LogChunk], previous_attempt: int | None = None) -> tuple[str, int | None]:
    """The text of log chunks, with a marker line where a new attempt begins."""
    parts: list[str] = []
    attempt = previous_attempt
    for chunk in chunks:
        if attempt is not None and chunk.attempt != attempt:
            if parts and not parts[-1].endswith("\n"):
                parts.append("\n")
            parts.append(f"--- attempt {chunk.attempt} ---\n")
        attempt = chunk.attempt
        parts.append(chunk.text)
    return "".join(parts), attempt


def report(r: Report) -> dict[str, Any]:
    """An execution report: rows per process and environment, and the chart's series."""
    return {
        "period": r.period,
        "since": ts(r.since),
        "until": ts(r.until),
        "bucketSeconds": r.bucket_seconds,
        "rows": [
            {
                "process": row.process,
                "environment": row.environment,
                "counts": row.counts,
                "total": row.total,
                "successRate": row.success_rate,
                "p50Ms": row.p50_ms,
                "p95Ms": row.p95_ms,
            }
            for row in r.rows
        ],
        "series": [{"start": ts(point.start), "counts": point.counts} for point in r.series],
    }
