"""Request body size limits, enforced before a handler sees the body (413 in the format of
the surface the path belongs to). Surfaces declare larger limits for their uploads."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runplane.api.surface import Surfaces
from runplane.domain import errors
from runplane.settings import MAX_JSON_BODY_BYTES


class BodyLimitMiddleware:
    """Answer 413 to a body over its limit, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, surfaces: Surfaces) -> None:
        self.app = app
        self.surfaces = surfaces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.surfaces.body_limit(scope["method"], scope["path"], MAX_JSON_BODY_BYTES)
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

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        exc = errors.PayloadTooLarge(f"The request body is larger than {limit} bytes.", limit=limit)
        await self.surfaces.error_response(scope, exc)(scope, receive, send)
