"""In-process wake-ups: long polls, log followers, event streams and idle runtimes wait here.

The database gateway calls `publish` on the event loop after each commit.
A lost or missed wake-up only delays: every waiter re-reads the database and
waits with a timeout. On PostgreSQL the events other replicas committed arrive
by LISTEN/NOTIFY (`store.notify`) and are published here the same way.

How often a waiter re-reads anyway (`fallback_seconds`): every second where a
change can commit without this hub hearing of it (PostgreSQL with LISTEN/NOTIFY
off); else rarely, as a last resort, since every change is published here (on
SQLite the node makes them all; on PostgreSQL other replicas' arrive by NOTIFY,
and a listener that lost its connection wakes everyone once it is back).

When the server is told to exit, `close` wakes every waiter for the last time:
the long polls held for HTTP clients then answer what they have (a `?wait` the
current record, a claim empty, a log follower or event stream its end), so a
shutdown or a rolling restart is never held for the rest of their waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator

from runplane.domain.events import DomainEvent, ExecutionChanged, LogAppended, WorkAvailable
from runplane.domain.states import Status

RELIABLE_FALLBACK_SECONDS = 30.0  # a last resort where every change is published here
UNRELIABLE_FALLBACK_SECONDS = 1.0  # where changes may commit unheard (no NOTIFY)
TERMINAL = frozenset(s.value for s in Status if s.terminal)


class Waiter(asyncio.Event):
    """An event set when the execution changes, remembering the status it changed to."""

    def __init__(self) -> None:
        super().__init__()
        self.status: str | None = None
        """The status of the latest change heard; None when unknown (re-read it)."""


class Hub:
    """Fan-out of committed events to whoever waits for them."""

    def __init__(self, *, reliable: bool = True) -> None:
        self.fallback_seconds = (
            RELIABLE_FALLBACK_SECONDS if reliable else UNRELIABLE_FALLBACK_SECONDS
        )
        """The longest a waiter waits before it re-reads the database anyway."""
        self._execution_waiters: defaultdict[str, set[Waiter]] = defaultdict(set)
        self._log_waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._work_waiters: set[asyncio.Event] = set()
        self._any_execution_waiters: set[asyncio.Event] = set()
        self.reliable = reliable
        self.work_news = 0
        """Counts what may make work claimable: a trigger or a retry (WorkAvailable), an
        execution ending (a deployment's concurrency frees up), every wake-up of the
        claimers. A runtime's look that found nothing left stays true while it stands
        still (`note_drained`, `drained_for`)."""
        self._drained: dict[str, tuple[int, float]] = {}
        self.closed = False
        """The server is shutting down: long polls answer instead of waiting again."""

    def wake_claimers(self) -> None:
        """Wake the idle claims: each re-checks its runtime (one that is draining stops)."""
        self.work_news += 1
        for w in self._work_waiters:
            w.set()

    def note_drained(self, runtime_id: str, news: int) -> None:
        """A look at the queue for this runtime, begun when `work_news` was `news`, left
        nothing claimable behind."""
        self._drained[runtime_id] = (news, time.monotonic())

    def drained_for(self, runtime_id: str, max_age_seconds: float) -> float:
        """How much longer this runtime's last look that found nothing left holds (0: look
        again): until some news, and for `max_age_seconds` at most, since executions also
        come due with no news (a retry's backoff). Always 0 where other replicas' changes
        may go unheard."""
        seen = self._drained.get(runtime_id)
        if seen is None or not self.reliable or self.closed:
            return 0.0
        news, at = seen
        if news != self.work_news:
            del self._drained[runtime_id]
            return 0.0
        return max(0.0, at + max_age_seconds - time.monotonic())

    def close(self) -> None:
        """The server is shutting down: wake every waiter; each sees `closed` and answers
        (a waiter that comes later answers after its first read)."""
        self.closed = True
        self.wake_all()

    def publish(self, events: list[DomainEvent]) -> None:
        """Wake everyone waiting for one of `events`."""
        for ev in events:
            if isinstance(ev, ExecutionChanged):
                if ev.status in TERMINAL:
                    self.work_news += 1
                for w in self._any_execution_waiters:
                    w.set()
                for waiter in self._execution_waiters.get(ev.execution_id, ()):
                    waiter.status = ev.status
                    waiter.set()
                for w in self._log_waiters.get(ev.execution_id, ()):
                    w.set()  # a log follower ends when the execution does
            elif isinstance(ev, LogAppended):
                for w in self._log_waiters.get(ev.execution_id, ()):
                    w.set()
            elif isinstance(ev, WorkAvailable):
                self.work_news += 1
                for w in self._work_waiters:
                    w.set()

    def wake_all(self) -> None:
        """Wake every waiter (events may have been missed); each re-reads and waits again."""
        self.work_news += 1
        for execution_waiters in self._execution_waiters.values():
            for waiter in execution_waiters:
                waiter.status = None
                waiter.set()
        for waiters in self._log_waiters.values():
            for w in waiters:
                w.set()
        for w in (*self._work_waiters, *self._any_execution_waiters):
            w.set()

    @contextlib.asynccontextmanager
    async def execution_changes(self, execution_id: str) -> AsyncIterator[Waiter]:
        """An event set whenever the execution changes, while the context is open; its
        `status` says to what (None: unknown)."""
        waiter = Waiter()
        self._execution_waiters[execution_id].add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._execution_waiters.get(execution_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._execution_waiters[execution_id]

    @contextlib.asynccontextmanager
    async def log_changes(self, execution_id: str) -> AsyncIterator[asyncio.Event]:
        """An event set whenever the execution logs or changes, while the context is open."""
        async with self._subscribe(self._log_waiters, execution_id) as ev:
            yield ev

    @contextlib.asynccontextmanager
    async def work(self) -> AsyncIterator[asyncio.Event]:
        """An event set whenever work may have become claimable."""
        async with self._join(self._work_waiters) as ev:
            yield ev

    @contextlib.asynccontextmanager
    async def any_execution_changes(self) -> AsyncIterator[asyncio.Event]:
        """An event set whenever any execution (of any workspace) changes."""
        async with self._join(self._any_execution_waiters) as ev:
            yield ev

    @staticmethod
    @contextlib.asynccontextmanager
    async def _join(waiters: set[asyncio.Event]) -> AsyncIterator[asyncio.Event]:
        ev = asyncio.Event()
        waiters.add(ev)
        try:
            yield ev
        finally:
            waiters.discard(ev)

    @staticmethod
    @contextlib.asynccontextmanager
    async def _subscribe(
        table: defaultdict[str, set[asyncio.Event]], key: str
    ) -> AsyncIterator[asyncio.Event]:
        ev = asyncio.Event()
        table[key].add(ev)
        try:
            yield ev
        finally:
            waiters = table.get(key)
            if waiters is not None:
                waiters.discard(ev)
                if not waiters:
                    del table[key]


async def wait_for(ev: asyncio.Event, seconds: float) -> bool:
    """Wait until `ev` is set or `seconds` pass; clear it; True if it was set.

    `asyncio.timeout`, not `asyncio.wait_for`: on Python 3.11 the latter swallows a
    cancellation that comes as the event is set (it returns the result instead), and a
    claim loop cancelled at shutdown then ran on for the rest of its wait.
    """
    if seconds <= 0:
        return ev.is_set()
    try:
        async with asyncio.timeout(seconds):
            await ev.wait()
    except TimeoutError:
        return False
    ev.clear()
    return True
