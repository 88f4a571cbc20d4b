"""Server-sent events framing for the native streams (events, logs as SSE).

The response is sse-starlette's `EventSourceResponse`: besides framing it
watches for the client's disconnect while the stream waits (the stream's task
is cancelled at once, not at its next write), sends the keepalive comment on
its own timer, and ends every open stream when uvicorn is told to exit
(SIGTERM), so open streams never hold up the server's graceful shutdown.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import orjson
from sse_starlette import EventSourceResponse, ServerSentEvent

from runplane.domain import errors

# A comment line this often keeps proxies from closing an idle stream. Fixed; the
# variable exists so that tests (and odd proxies) can shorten it; read at start.
HEARTBEAT_SECONDS = float(os.environ.get("RUNPLANE_SSE_HEARTBEAT_SECONDS", "15"))
RETRY_MILLISECONDS = 2000  # how long a client waits before reconnecting
# A client that stops reading for this long is cut off (it reconnects with
# Last-Event-ID) rather than holding a stream, and the log behind it, forever.
SEND_TIMEOUT_SECONDS = 60.0
SEPARATOR = "\n"
MEDIA_TYPE = "text/event-stream"


def event(name: str, data: Any, id: str | int | None = None) -> ServerSentEvent:
    """One event: `id:`, `event:`, and its data as one line of JSON."""
    return ServerSentEvent(
        data=orjson.dumps(data).decode(),
        event=name,
        id=None if id is None else str(id),
        sep=SEPARATOR,
    )


def start(resume_id: str | int | None = None) -> ServerSentEvent:
    """The first message: the client's reconnection delay and, when given, the id a
    reconnect resumes after (no data: nothing is dispatched to the client)."""
    return ServerSentEvent(
        retry=RETRY_MILLISECONDS, id=None if resume_id is None else str(resume_id), sep=SEPARATOR
    )


def _keepalive() -> ServerSentEvent:
    return ServerSentEvent(comment="keepalive", sep=SEPARATOR)


def response(stream: AsyncIterator[ServerSentEvent]) -> EventSourceResponse:
    """The streaming response of `stream`, with heartbeats, ended on disconnect and on
    server shutdown."""
    return EventSourceResponse(
        stream,
        headers={"Cache-Control": "no-store"},
        ping=HEARTBEAT_SECONDS,
        ping_message_factory=_keepalive,
        sep=SEPARATOR,
        send_timeout=SEND_TIMEOUT_SECONDS,
    )


def last_event_id(header: str | None, query: str | None) -> int | None:
    """The id to resume after: the Last-Event-ID header, else the `lastEventId` query
    parameter (for clients that cannot set headers); None when neither is given."""
    raw = header if header is not None else query
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        value = -1
    if value < 0:
        raise errors.InvalidRequest(
            "Last-Event-ID must be the id of an event this stream sent.",
            problems=[{"name": "Last-Event-ID", "in": "header", "code": "invalid_event_id"}],
        )
    return value


def accepts_event_stream(accept: str | None) -> bool:
    """True when an Accept header asks for text/event-stream."""
    if not accept:
        return False
    return any(part.split(";")[0].strip().lower() == MEDIA_TYPE for part in accept.split(","))


def openapi_response(description: str, example: str) -> dict[str, Any]:
    """The OpenAPI entry of a 200 answered as server-sent events."""
    return {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": {"type": "string"}, "example": example}},
    }
