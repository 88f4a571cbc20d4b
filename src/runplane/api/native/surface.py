"""The native API under /api/v1: RFC 9457 problems, runplane's own credentials."""

from __future__ import annotations

from runplane.api.native import (
    apps,
    artifacts,
    credentials,
    events,
    executions,
    logs,
    processes,
    reports,
    runtimes,
    schedules,
    system,
    users,
    workspaces,
)
from runplane.api.native.fastpath import TriggerFastPath
from runplane.api.surface import (
    BodyLimit,
    Surface,
    basic_scheme,
    header_reader,
    plain_scheme,
    query_reader,
)
from runplane.settings import MAX_ARTIFACT_BYTES, MAX_BUNDLE_UPLOAD_BYTES

PREFIX = "/api/v1"
PROCESS_SECRET_HEADER = b"runplane-process-secret"
PROCESS_SECRET_PARAM = "process-secret"  # noqa: S105 - a query parameter name


def _is_artifact_upload(path: str) -> bool:
    return path.startswith(PREFIX + "/leases/") and path.endswith("/artifacts")


def _is_version_upload(path: str) -> bool:
    return path.startswith(PREFIX + "/processes/") and path.endswith("/versions")


SURFACE = Surface(
    name="native",
    prefixes=(PREFIX,),
    routers=(
        executions.router,
        artifacts.router,
        logs.router,
        events.router,
        processes.router,
        reports.router,
        system.router,
        runtimes.router,
        schedules.router,
        credentials.router,
        workspaces.router,
        apps.router,
        users.router,
    ),
    public_paths=frozenset(
        {
            PREFIX + "/health",
            PREFIX + "/openapi.json",
            PREFIX + "/docs",
            PREFIX + "/docs/oauth2-redirect",
        }
    ),
    schemes={"bearer": plain_scheme, "basic": basic_scheme},
    readers=(header_reader(PROCESS_SECRET_HEADER), query_reader(PROCESS_SECRET_PARAM)),
    redacted_params=frozenset({PROCESS_SECRET_PARAM}),
    body_limits=(
        BodyLimit("POST", _is_version_upload, MAX_BUNDLE_UPLOAD_BYTES),
        BodyLimit("PUT", _is_artifact_upload, MAX_ARTIFACT_BYTES),
    ),
    inner=TriggerFastPath,
)
