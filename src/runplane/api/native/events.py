"""Native API: GET /api/v1/events, execution changes as server-sent events.

Routers translate only: parse → one service call → render.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from sse_starlette import ServerSentEvent
from starlette.responses import Response

from runplane.api.deps import Ctx, Who
from runplane.api.native import render, sse
from runplane.service import events as svc

router = APIRouter(prefix="/api/v1", tags=["events"])

_FORMAT = """Server-sent events. First `retry: 2000` (with `id:` of the last event retained
before the start, when there is one, so a reconnect resumes from here), then per change:

    id: <sequence>
    event: execution
    data: {"id", "executionId", "process", "version", "environment", "status", "attempt",
           "error": {"code"} | null, "at"}

A comment `: keepalive` every 15 s. With a Last-Event-ID that is no longer retained, the
stream starts with `event: reset` (`data: {"reason", "lastEventId"}`): re-read the state;
changes from then on follow. Ids are resume tokens, not counters: on PostgreSQL they are
not always increasing."""
_EXAMPLE = (
    "retry: 2000\nid: 41\n\n"
    'id: 42\nevent: execution\ndata: {"id":"0192…","executionId":"0192…","process":"hello",'
    '"version":1,"environment":"production","status":"running","attempt":1,"error":null,'
    '"at":"2026-11-24T10:00:00.123Z"}\n\n'
    ": keepalive\n\n"
)

ListQuery = Annotated[list[str] | None, Query(description="Repeat or comma-separate.")]


def _names(values: list[str] | None) -> tuple[str, ...]:
    items = (v.strip() for raw in values or () for v in raw.split(","))
    return tuple(dict.fromkeys(v for v in items if v))


@router.get(
    "/events",
    response_class=Response,
    responses={200: sse.openapi_response(_FORMAT, _EXAMPLE)},
)
async def execution_events(
    ctx: Ctx,
    who: Who,
    process: ListQuery = None,
    environment: ListQuery = None,
    execution: Annotated[
        list[str] | None, Query(description="Execution ids. Repeat or comma-separate.")
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(description="Resume after this event (sent by EventSource on reconnect)."),
    ] = None,
    lastEventId: Annotated[
        str | None, Query(description="Last-Event-ID, for clients that cannot set headers.")
    ] = None,
) -> Response:
    """Execution changes the caller may see, live (`text/event-stream`); filters by
    process, environment and execution; resumable with `Last-Event-ID`."""
    asked = sse.last_event_id(last_event_id, lastEventId)
    stream = await svc.subscribe(
        ctx,
        who,
        svc.EventFilter(_names(process), _names(environment), _names(execution)),
        asked,
    )
    return sse.response(_render(stream, asked))


async def _render(stream: svc.EventStream, asked: int | None) -> AsyncIterator[ServerSentEvent]:
    yield sse.start(stream.resume_seq)
    if stream.reset is not None:
        # An empty id clears a client's Last-Event-ID when nothing is retained to point at,
        # so it does not ask for the lost one again.
        resume = "" if stream.resume_seq is None else stream.resume_seq
        yield sse.event("reset", {"reason": stream.reset, "lastEventId": str(asked)}, id=resume)
    async for ev in stream.events():
        yield sse.event("execution", render.execution_event(ev), id=ev.seq)
