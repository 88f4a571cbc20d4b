"""Authentication: every request but the public ones must present a live credential.

Which credentials a request may present is declared by the surfaces
(api/registry.py): Authorization schemes (Bearer and Basic on the native API,
Robocorp's RC-WSKEY), headers (a process secret, MuleSoft's x-apikey), cookies
(the console's session) and, for clients that cannot set headers, query
parameters. The Authorization header is read first, then every header, then
cookies, then the query.

The principal goes to `scope["state"]["principal"]`; routers and services
decide what it may do. Refusals (401, 429, 503) are answered in the format of
the surface the path belongs to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from runplane.api.surface import Surfaces
from runplane.domain import errors
from runplane.service.context import Context

log = logging.getLogger("runplane.auth")
CHALLENGE = 'Bearer realm="runplane"'


class AuthMiddleware:
    """Resolve the caller of every non-public request, or answer 401 (429 when a client
    address or username has failed too often; see service.limits)."""

    def __init__(self, app: ASGIApp, context: Callable[[], Context], surfaces: Surfaces) -> None:
        self.app = app
        self.context = context
        self.surfaces = surfaces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.surfaces.is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        keys = [f"addr:{client[0] if client else 'unknown'}"]
        ctx = self.context()
        limiter = ctx.limiter
        error_response = self.surfaces.error_response
        try:
            try:
                presented = self.surfaces.read_credential(scope, dict(scope["headers"]))
            except errors.Unauthenticated:
                await limiter.check(ctx, keys)
                raise
            if presented.username:
                keys.append(f"user:{presented.username[:200]}")
            await limiter.check(ctx, keys)
            try:
                principal = await presented.resolve(ctx, presented.secret)
            except errors.Unauthenticated:
                await limiter.fail(ctx, keys)
                raise
        except errors.TooManyRequests as exc:
            retry = str(exc.extra.get("retry_after", 1))
            await error_response(scope, exc, {"Retry-After": retry})(scope, receive, send)
            return
        except errors.Unauthenticated as exc:
            response = error_response(scope, exc, {"WWW-Authenticate": CHALLENGE})
            await response(scope, receive, send)
            return
        except errors.RunplaneError as exc:  # e.g. the database unreachable: 503
            after = exc.extra.get("retry_after")
            headers = {"Retry-After": str(after)} if after is not None else None
            await error_response(scope, exc, headers)(scope, receive, send)
            return
        except Exception as exc:
            log.error("authentication failed unexpectedly on %s", scope["path"], exc_info=exc)
            failure = errors.RunplaneError("An unexpected error occurred.")
            await error_response(scope, failure)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
