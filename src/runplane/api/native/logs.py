"""Native API: an execution's log as text, as server-sent events, or as JSON pages.

Routers translate only: parse → one service call → render.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from sse_starlette import ServerSentEvent
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from runplane.api.deps import Ctx, Who
from runplane.api.native import render, sse
from runplane.api.native.render import JSON
from runplane.domain import errors
from runplane.service import logs as svc

router = APIRouter(prefix="/api/v1", tags=["executions"])

DEFAULT_PAGE_CHUNKS = 100

_SSE_FORMAT = """With `Accept: text/event-stream`: the log as server-sent events, one per chunk
(what the runtime shipped at once):

    id: <chunk id>
    event: log
    data: {"id", "text", "at", "attempt"}

then, once the execution is terminal, `event: end` with `data: {"status"}`, and the stream
closes. `Last-Event-ID` (or `lastEventId`) resumes after that chunk; `tail=N` starts with
the last N chunks only. A comment `: keepalive` every 15 s."""
_SSE_EXAMPLE = (
    "retry: 2000\n\n"
    'id: 7\nevent: log\ndata: {"id":7,"text":"hello\\n","at":"2026-11-24T10:00:00.120Z",'
    '"attempt":1}\n\n'
    'event: end\ndata: {"status":"succeeded"}\n\n'
)
_PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "text": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"},
                    "attempt": {"type": "integer"},
                },
            },
        },
        "more": {"type": "boolean", "description": "Earlier chunks exist (page with before)."},
    },
}


@router.get(
    "/executions/{execution_id}/logs",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "The log as text (default); as server-sent events with "
            "`Accept: text/event-stream`; as a JSON page with `format=json`.\n\n" + _SSE_FORMAT,
            "content": {
                "text/plain": {},
                sse.MEDIA_TYPE: {"schema": {"type": "string"}, "example": _SSE_EXAMPLE},
                "application/json": {"schema": _PAGE_SCHEMA},
            },
        }
    },
)
async def execution_logs(
    execution_id: str,
    ctx: Ctx,
    who: Who,
    follow: Annotated[
        bool, Query(description="Text: stream the log until the execution ends.")
    ] = False,
    tail: Annotated[
        int | None,
        Query(ge=0, le=svc.MAX_TAIL_CHUNKS, description="Events: start with the last N chunks."),
    ] = None,
    format: Annotated[
        Literal["json"] | None,
        Query(description="`json`: one page of chunks, newest last (see before, limit)."),
    ] = None,
    before: Annotated[
        int | None, Query(ge=1, description="JSON: the chunks before this chunk id.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=svc.LOG_PAGE_CHUNKS, description="JSON: chunks per page.")
    ] = DEFAULT_PAGE_CHUNKS,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
    last_event_id: Annotated[
        str | None, Header(description="Events: resume after this chunk id.")
    ] = None,
    lastEventId: Annotated[
        str | None, Query(description="Events: Last-Event-ID, for clients without headers.")
    ] = None,
) -> Response:
    """The execution's log: text (`?follow=true` streams it until the execution ends),
    server-sent events (`Accept: text/event-stream`), or JSON pages (`format=json`)."""
    if format == "json":
        chunks, more = await svc.page_before(ctx, who, execution_id, before, limit)
        return JSON({"items": [render.log_chunk(c) for c in chunks], "more": more})
    if sse.accepts_event_stream(accept):
        follower = await svc.follow(
            ctx,
            who,
            execution_id,
            after_id=sse.last_event_id(last_event_id, lastEventId),
            tail=tail,
        )
        return sse.response(_events(follower))
    if tail is not None:
        raise errors.InvalidRequest(
            "tail is for the log as events (Accept: text/event-stream); pages of text: "
            "format=json with limit.",
            problems=[{"name": "tail", "in": "query", "code": "tail_needs_events"}],
        )
    if not follow:
        parts: list[str] = []  # the first page raises the 404 of a missing execution
        attempt = None
        async for chunk in svc.all_logs(ctx, who, execution_id):
            text, attempt = render.log_text([chunk], attempt)
            parts.append(text)
        return PlainTextResponse("".join(parts))
    follower = await svc.follow(ctx, who, execution_id)  # a 404 before the 200 streams

    async def body() -> AsyncIterator[str]:
        attempt = None
        async for chunk in follower.chunks():
            text, attempt = render.log_text([chunk], attempt)
            yield text

    return StreamingResponse(
        body(), media_type="text/plain; charset=utf-8", headers={"X-Accel-Buffering": "no"}
    )


async def _events(follower: svc.LogFollower) -> AsyncIterator[ServerSentEvent]:
    yield sse.start()
    async for chunk in follower.chunks():
        yield sse.event("log", render.log_chunk(chunk), id=chunk.id)
    if follower.status is not None:  # else the server is shutting down: the client resumes
        yield sse.event("end", {"status": follower.status.value})
