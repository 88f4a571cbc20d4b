"""The web console as a surface: its pages at `/`, signed in by a session cookie."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp

from runplane.api.surface import BodyLimit, Surface
from runplane.settings import MAX_BUNDLE_UPLOAD_BYTES
from runplane.web import (
    credentials,
    executions,
    processes,
    reports,
    runtimes,
    session,
    signin,
    static,
)
from runplane.web.errors import render_error
from runplane.web.security import SecurityHeaders

PREFIXES = (
    "/",
    "/login",
    "/logout",
    "/executions",
    "/processes",
    "/runtimes",
    "/credentials",
    "/reports",
    static.PREFIX,
)
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def _is_upload(path: str) -> bool:
    return path.startswith("/processes/") and path.endswith("/versions")


def _security(app: ASGIApp, api: FastAPI) -> ASGIApp:
    return SecurityHeaders(app, SURFACE.owns)


SURFACE = Surface(
    name="console",
    prefixes=PREFIXES,
    routers=(
        signin.router,
        executions.router,
        processes.router,
        runtimes.router,
        credentials.router,
        reports.router,
        static.router,
    ),
    render_error=render_error,
    public_paths=frozenset({"/login"}),
    public_prefixes=(static.PREFIX + "/",),
    readers=(session.SESSION_READER,),
    body_limits=(
        BodyLimit("POST", _is_upload, MAX_BUNDLE_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES),
    ),
    inner=_security,
)
