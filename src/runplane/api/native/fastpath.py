"""The trigger route, served in front of FastAPI.

Starting executions is the hot path. Its handlers take the bare Request and
do their own parsing, so FastAPI's routing, dependency and middleware layers
add only cost there (measured: docs/benchmarks.md). This ASGI layer sends
PUT/POST on the trigger path straight to them, rendering errors through the
same `problems.exception_response` as every other route; everything else goes
on to FastAPI, whose entries for the same handlers document them in OpenAPI.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from runplane.api import problems
from runplane.api.native import executions

TRIGGER_PATH_RE = re.compile(r"^/api/v1/processes/([^/]+)/executions$")
TRIGGER_METHODS = ("PUT", "POST")


class TriggerFastPath:
    """PUT/POST /api/v1/processes/{process}/executions without FastAPI's layers."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = TRIGGER_PATH_RE.match(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.api
        scope["path_params"] = {"process": match.group(1)}
        request = Request(scope, receive, send)
        try:
            if scope["method"] not in TRIGGER_METHODS:
                raise HTTPException(405, headers={"Allow": ", ".join(TRIGGER_METHODS)})
            response = await executions.trigger(request)
        except Exception as exc:
            response = problems.exception_response(request, exc)
        await response(scope, receive, send)
