"""The live stream of execution changes (GET /api/v1/events): subscribe, then iterate.

A stream reads the event log (`store.events`) after its cursor, hands out what
it found, and waits on the hub for any execution change (this node's commits,
and other replicas' through LISTEN/NOTIFY), re-reading at least every second
whatever the hub says, so a lost notification only delays. Reads are keyset
on the log's order and bounded; a burst of changes costs each stream one read
per MIN_READ_INTERVAL_SECONDS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from runplane.domain import errors
from runplane.domain.auth import Principal, Scope
from runplane.domain.model import ExecutionEvent
from runplane.service.context import Context
from runplane.service.hub import wait_for
from runplane.store import events as store

UNAVAILABLE_RETRY_SECONDS = 1.0  # while the database does not answer
MIN_READ_INTERVAL_SECONDS = 0.05  # many changes at once: one read per stream per interval
WITHHELD_RECHECK_SECONDS = 0.05  # committed events wait behind an older transaction
PURGE_ROUNDS = 20  # bounded DELETEs per sweep


@dataclass(frozen=True)
class EventFilter:
    """What a stream asks for: changes of any of these processes, environments and
    executions (ids); an empty tuple does not filter."""

    processes: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    executions: tuple[str, ...] = ()


class EventStream:
    """An open stream: where its client stands at the start, then each change as it
    commits, in the log's order, until the caller stops iterating."""

    def __init__(
        self,
        ctx: Context,
        workspace_id: str,
        seen: store.Visibility,
        after: store.Position,
        resume_seq: int | None,
        reset: str | None,
    ) -> None:
        self._ctx = ctx
        self._workspace_id = workspace_id
        self._seen = seen
        self._after = after
        self.resume_seq = resume_seq
        """The event id a reconnect resumes after, as of the start (None: none retained)."""
        self.reset = reset
        """Why the asked-for Last-Event-ID could not be resumed; the stream starts at now."""

    def _read(self, conn: Any) -> store.EventPage:
        return store.read(conn, self._workspace_id, self._after, self._seen)

    async def events(self) -> AsyncIterator[ExecutionEvent]:
        """The changes after the start, as they commit, until the server shuts down."""
        ctx = self._ctx
        last_read = float("-inf")
        async with ctx.hub.any_execution_changes() as changed:
            while True:
                pause = MIN_READ_INTERVAL_SECONDS - (time.monotonic() - last_read)
                if pause > 0:
                    await asyncio.sleep(pause)
                last_read = time.monotonic()
                try:
                    page = await ctx.db.read(self._read)
                except errors.DatabaseUnavailable:  # keep the stream; the log is still there
                    await asyncio.sleep(UNAVAILABLE_RETRY_SECONDS)
                    continue
                self._after = page.after
                for event in page.events:
                    yield event
                if page.more:
                    continue
                if ctx.hub.closed:
                    return
                await wait_for(
                    changed, WITHHELD_RECHECK_SECONDS if page.withheld else ctx.hub.fallback_seconds
                )


async def subscribe(
    ctx: Context, who: Principal, wanted: EventFilter, last_event_id: int | None = None
) -> EventStream:
    """Open a stream of the changes the caller may see (scope executions:read; its
    environments and process only). With `last_event_id`, it resumes after that event
    if it is still retained; if not, it starts at now with `reset` saying why. Without,
    it starts at now."""
    who.require(Scope.EXECUTIONS_READ)
    ws_id = who.workspace_id
    seen = store.Visibility(
        environment_ids=who.environment_ids,
        process_id=who.process_id,
        process_names=wanted.processes,
        environment_names=wanted.environments,
        execution_ids=wanted.executions,
    )

    def start(conn: Any) -> tuple[store.Position, int | None, str | None]:
        if last_event_id is not None:
            at = store.position_of(conn, ws_id, last_event_id)
            if at is not None:
                return at, last_event_id, None
        now = store.horizon(conn)
        resume = store.last_seq_before(conn, ws_id, now)
        if last_event_id is None:
            return now, resume, None
        return (
            now,
            resume,
            f"Event {last_event_id} is unknown or no longer retained (events are kept "
            f"{ctx.settings.event_retention_seconds:g} s): read the current state again; "
            "changes from now on follow.",
        )

    after, resume_seq, reset = await ctx.db.read(start)
    return EventStream(ctx, ws_id, seen, after, resume_seq, reset)


async def purge(ctx: Context) -> int:
    """Delete events older than the retention, in bounded transactions (at most
    PURGE_ROUNDS per call; the sweeper calls again); returns how many."""
    cutoff = ctx.clock() - timedelta(seconds=ctx.settings.event_retention_seconds)
    total = 0
    for _ in range(PURGE_ROUNDS):
        deleted = await ctx.db.write(lambda tx: store.purge(tx, cutoff))
        total += deleted
        if deleted < store.PURGE_BATCH_EVENTS:
            break
    return total
