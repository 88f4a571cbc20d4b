"""The access log: one line per request, with credentials redacted.

Opt-in (`--access-log`, `RUNPLANE_ACCESS_LOG=true`): it costs the hot path a
log record per trigger. Headers are never logged; in the query string the
values of parameters that carry credentials are replaced with `***`.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("runplane.access")

REDACTED_PARAMS = frozenset(
    {"process-secret", "robocloud-process-secret", "token", "access_token", "client_secret"}
)


def redact_query(query: str) -> str:
    """The query string with every credential-carrying parameter's value replaced."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(k.lower() in REDACTED_PARAMS for k, _ in pairs):
        return query
    return urlencode(
        [(k, "***" if k.lower() in REDACTED_PARAMS else v) for k, v in pairs], safe="*"
    )


class AccessLogMiddleware:
    """`<client> "<METHOD> <path>[?query]" <status> <ms>`, after each response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            query = redact_query(scope.get("query_string", b"").decode("latin-1"))
            target = scope["path"] + (f"?{query}" if query else "")
            client = scope.get("client")
            log.info(
                '%s "%s %s" %d %.1fms',
                client[0] if client else "-",
                scope["method"],
                target,
                status,
                (time.perf_counter() - started) * 1000,
            )
