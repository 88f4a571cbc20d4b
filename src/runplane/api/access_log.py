"""The access log: one line per request, with credentials redacted.

Opt-in (`--access-log`, `RUNPLANE_ACCESS_LOG=true`): it costs the hot path a
log record per trigger. Headers are never logged; in the query string the
values of parameters that carry credentials (each surface names its own) are
replaced with `***`.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("runplane.access")


def redact_query(query: str, redacted: frozenset[str]) -> str:
    """The query string with the value of every parameter named in `redacted` replaced."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(k.lower() in redacted for k, _ in pairs):
        return query
    return urlencode([(k, "***" if k.lower() in redacted else v) for k, v in pairs], safe="*")


class AccessLogMiddleware:
    """`<client> "<METHOD> <path>[?query]" <status> <ms>`, after each response."""

    def __init__(self, app: ASGIApp, redacted: frozenset[str]) -> None:
        self.app = app
        self.redacted = frozenset(name.lower() for name in redacted)

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
            query = redact_query(scope.get("query_string", b"").decode("latin-1"), self.redacted)
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
