"""Request body size limits, enforced before a handler sees the body (413 problem)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runplane.api.compat.robocorp import mapping as robocorp
from runplane.api.surfaces import error_response
from runplane.domain import errors
from runplane.service.work_items import MAX_FILE_BYTES
from runplane.settings import MAX_BUNDLE_UPLOAD_BYTES, MAX_JSON_BODY_BYTES

MULTIPART_OVERHEAD_BYTES = 64 * 1024  # the form fields and part headers around a file


def body_limit_for(method: str, path: str) -> int:
    """How many body bytes a request may carry: bundles are larger than JSON."""
    if method == "POST" and path.startswith("/api/v1/processes/") and path.endswith("/versions"):
        return MAX_BUNDLE_UPLOAD_BYTES
    if method == "POST" and path.startswith(robocorp.UPLOADS_PREFIX):
        return MAX_FILE_BYTES + MULTIPART_OVERHEAD_BYTES
    return MAX_JSON_BODY_BYTES


class BodyLimitMiddleware:
    """Answer 413 to a body over its limit, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = body_limit_for(scope["method"], scope["path"])
        length = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                length = int(value) if value.isdigit() else None
                break
        if length is not None:
            if length > limit:
                await self._refuse(scope, receive, send, limit)
                return
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): buffer up to the limit, then replay.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await self._refuse(scope, receive, send, limit)
                return
            chunks.append(body)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        exc = errors.PayloadTooLarge(f"The request body is larger than {limit} bytes.", limit=limit)
        await error_response(scope, exc)(scope, receive, send)
