"""Use cases for execution logs: read, page backwards, follow until the execution ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from runplane.domain import errors
from runplane.domain.auth import Principal
from runplane.domain.model import LogChunk
from runplane.domain.states import Status
from runplane.service.context import Context
from runplane.service.executions import visible
from runplane.service.hub import wait_for
from runplane.store import executions as execution_store
from runplane.store import logs as store

LOG_PAGE_CHUNKS = 1000
MAX_TAIL_CHUNKS = 100_000


def _check(conn: Any, who: Principal, execution_id: str) -> Status:
    """404 unless the caller may see the execution; its status."""
    return visible(who, execution_store.get_execution(conn, who.workspace_id, execution_id)).status


async def logs(
    ctx: Context, who: Principal, execution_id: str, after_id: int = 0
) -> list[LogChunk]:
    """One page (up to LOG_PAGE_CHUNKS) of an execution's log chunks after `after_id`."""

    def op(conn: Any) -> list[LogChunk]:
        _check(conn, who, execution_id)
        return store.read_logs(conn, execution_id, after_id, LOG_PAGE_CHUNKS)

    return await ctx.db.read(op)


async def all_logs(ctx: Context, who: Principal, execution_id: str) -> AsyncIterator[LogChunk]:
    """Every log chunk of an execution so far, page by page."""
    after = 0
    while True:
        chunks = await logs(ctx, who, execution_id, after)
        for chunk in chunks:
            yield chunk
        if len(chunks) < LOG_PAGE_CHUNKS:
            return
        after = chunks[-1].id


async def page_before(
    ctx: Context, who: Principal, execution_id: str, before_id: int | None, limit: int
) -> tuple[list[LogChunk], bool]:
    """The `limit` chunks before chunk `before_id` (None: the newest), in order, and
    whether earlier chunks exist (a console loading a long log backwards)."""
    limit = max(1, min(limit, LOG_PAGE_CHUNKS))

    def op(conn: Any) -> tuple[list[LogChunk], bool]:
        _check(conn, who, execution_id)
        return store.read_logs_before(conn, execution_id, before_id, limit)

    return await ctx.db.read(op)


class LogFollower:
    """A log being followed: its chunks as they come, then the status it ended with."""

    def __init__(self, ctx: Context, who: Principal, execution_id: str, after_id: int) -> None:
        self._ctx = ctx
        self._who = who
        self.execution_id = execution_id
        self.after_id = after_id
        self.status: Status | None = None
        """The terminal status, once `chunks()` has ended with the execution (None when
        it ended because the server is shutting down)."""

    async def chunks(self) -> AsyncIterator[LogChunk]:
        """Every chunk after the start, then new ones as they come, until the execution
        is terminal (re-read on every change, and at least each second) or the server
        shuts down (after the chunks logged by then)."""
        ctx, who, execution_id = self._ctx, self._who, self.execution_id
        async with ctx.hub.log_changes(execution_id) as changed:
            while True:
                # The status first: a chunk logged before it ended is read after it.
                status = await ctx.db.read(lambda c: _check(c, who, execution_id))
                while True:
                    chunks = await logs(ctx, who, execution_id, self.after_id)
                    for chunk in chunks:
                        yield chunk
                        self.after_id = chunk.id
                    if len(chunks) < LOG_PAGE_CHUNKS:
                        break
                if status.terminal:
                    self.status = status
                    return
                if ctx.hub.closed:
                    return
                await wait_for(changed, ctx.hub.fallback_seconds)


async def follow(
    ctx: Context,
    who: Principal,
    execution_id: str,
    *,
    after_id: int | None = None,
    tail: int | None = None,
) -> LogFollower:
    """Follow an execution's log (404 now, before anything streams, if the caller may not
    see it): after chunk `after_id` (a resume), else its last `tail` chunks, else all."""
    if tail is not None and not 0 <= tail <= MAX_TAIL_CHUNKS:
        raise errors.InvalidRequest(
            f"tail must be 0 to {MAX_TAIL_CHUNKS} chunks.",
            problems=[{"name": "tail", "in": "query", "code": "invalid_tail"}],
        )

    def op(conn: Any) -> int:
        _check(conn, who, execution_id)
        if after_id is not None:
            return after_id
        if tail is not None:
            return store.tail_start(conn, execution_id, tail)
        return 0

    return LogFollower(ctx, who, execution_id, await ctx.db.read(op))
