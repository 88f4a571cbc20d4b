"""The database gateway: engines, migrations, and the group-committing writer.

Reads run on a small thread pool, each in its own short transaction.
Writes are group-committed: every write waiting at that moment runs in one
transaction, then one commit (many triggers, one fsync). A write's awaitable
resolves only after that commit, so an HTTP 2xx always follows a durable
commit. A write that raises is undone alone (see `_run_batch`).

Where the batch runs depends on the backend. SQLite is a library in this
process whose only wait is the fsync: its batches run on the event loop
itself, gathering every write that arrived in one loop iteration, which
avoids a thread hop and GIL hand-off per write (measured: docs/benchmarks.md).
PostgreSQL is a network server: its batches run on one writer thread so that
round trips never block the loop.

Events a write emits (`Tx.emit`) are delivered to `on_events` on the event
loop after the commit, never for a rolled-back write. On PostgreSQL the batch
also NOTIFYs them inside its transaction, for the other replicas
(`store.notify`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, func, pool, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from runplane.domain import errors
from runplane.domain.events import DomainEvent
from runplane.store import notify
from runplane.store.migrate import lock_schema

log = logging.getLogger(__name__)

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
READ_THREADS = 4
MAX_BATCH_WRITES = 256
HELD_CONNECTION_IDLE_SECONDS = 5.0  # the writer's held connection goes back after this
START_LOCK_KEY = 0x52505354  # "RPST": one node of an installation starts at a time
_STOP = object()


class _WriteFailed(Exception):
    """A write raised during an optimistic (savepoint-free) batch."""


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError)
RETRY_AFTER_SECONDS = 1


def map_driver_error(exc: Exception) -> Exception:
    """Driver errors mapped once: a value the database refuses is bad input, not a 500.

    The message names no value (they may be secrets) and no SQL.
    """
    if isinstance(exc, sa_exc.DataError | UnicodeEncodeError):
        return errors.InvalidRequest(
            "The request holds a value the database cannot store "
            "(for example a NUL character, a lone surrogate or a number out of range)."
        )
    if isinstance(exc, UNAVAILABLE):
        # the database restarting, unreachable, or (SQLite) locked past the busy timeout
        log.warning("database unavailable (%s)", type(getattr(exc, "orig", exc)).__name__)
        return errors.DatabaseUnavailable(
            "The database is not reachable right now; try again shortly.",
            retry_after=RETRY_AFTER_SECONDS,
        )
    return exc


def normalize_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` as psycopg 3 URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_sqlalchemy_engine(url: str, *, writer: bool = True, **kwargs: Any) -> Engine:
    """An engine configured for runplane: WAL + synchronous=FULL on SQLite."""
    url = normalize_url(url)
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            hide_parameters=True,  # bound values hold secrets: never in errors or logs
            pool_pre_ping=True,
            pool_size=8,
            **kwargs,
        )
    if u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        hide_parameters=True,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        poolclass=pool.QueuePool,
        pool_size=1 if writer else READ_THREADS,
        max_overflow=0 if writer else 4,
        **kwargs,
    )
    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, control transactions (savepoints need it).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # On the driver: SQLAlchemy keeps no state of its own about this statement.
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute(begin)

    return engine


_CLOCK = select(func.clock_timestamp())


def database_now(conn: Connection, fallback: Callable[[], datetime]) -> datetime:
    """The database's clock: PostgreSQL's `clock_timestamp()`, so that every replica and
    runtime measures leases by one clock; with SQLite (one node) the node's clock."""
    if conn.dialect.name == "postgresql":
        value = conn.scalar(_CLOCK)
        assert isinstance(value, datetime)
        return value.astimezone(UTC)
    return fallback()


@dataclass
class Tx:
    """A write's view of the shared transaction: its connection and its events."""

    conn: Connection
    events: list[DomainEvent] = field(default_factory=list)

    def emit(self, ev: DomainEvent) -> None:
        """Deliver `ev` after the transaction commits."""
        self.events.append(ev)


@dataclass
class _Write:
    fn: Callable[[Tx], Any]
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None
    events: list[DomainEvent] = field(default_factory=list)


def _mapped_read(conn: Connection, fn: Callable[[Connection], T]) -> T:
    """`fn(conn)`, with what the driver raises for bad input or an unreachable database
    mapped to runplane's errors."""
    try:
        return fn(conn)
    except (sa_exc.DataError, UnicodeEncodeError, *UNAVAILABLE) as exc:
        raise map_driver_error(exc) from exc


class Database:
    """Runs store operations off the event loop: pooled reads, group-committed writes."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        self.engine = create_sqlalchemy_engine(self.url, writer=True)
        self.read_engine = (
            create_sqlalchemy_engine(self.url, writer=False)
            if self.dialect == "sqlite"
            else self.engine
        )
        self.on_events: Callable[[list[DomainEvent]], None] = lambda events: None
        self._reads = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="runplane-read")
        self.inline_writes = self.dialect == "sqlite"
        self._pending: list[_Write] = []
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_conn: Connection | None = None  # the writer's, held (see _commit)
        self._writer_used = 0.0
        self._point_conn: Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0
        self.writes = 0
        self.node_id = secrets.token_hex(8)  # tells this node's notifications from others'
        self.notify_channel: str | None = None  # set by enable_notify (PostgreSQL only)

    def migrate(self) -> None:
        """Bring the schema to the newest migration (safe to call at every start)."""
        from runplane.store.migrate import upgrade

        upgrade(self.engine)

    @contextlib.asynccontextmanager
    async def starting(self) -> AsyncIterator[None]:
        """Held while a node migrates and bootstraps: on PostgreSQL a session advisory
        lock per schema, so replicas starting together take turns (the first creates
        the default workspace and admin, the others find them)."""
        if self.dialect != "postgresql":
            yield
            return
        conn = await asyncio.to_thread(self.engine.connect)
        try:
            await asyncio.to_thread(self._take_start_lock, conn)
            yield
        finally:
            # Closing the session releases its lock, whatever happened; the
            # connection never goes back to the pool still holding it.
            await asyncio.to_thread(conn.invalidate)
            await asyncio.to_thread(conn.close)

    @staticmethod
    def _take_start_lock(conn: Connection) -> None:
        lock_schema(conn, START_LOCK_KEY, session=True)
        conn.commit()  # the session keeps the lock; no transaction stays open

    async def enable_notify(
        self, deliver: Callable[[list[DomainEvent]], None], on_connect: Callable[[], None]
    ) -> notify.Listener | None:
        """On PostgreSQL: NOTIFY other replicas of this node's events from now on, and
        return the listener that hands theirs to `deliver` (the caller runs it);
        on SQLite (one node) None."""
        if self.dialect != "postgresql":
            return None
        self.notify_channel = await self.read(notify.channel_name)
        return notify.Listener(
            notify.conninfo(self.engine.url),
            self.notify_channel,
            self.node_id,
            deliver=deliver,
            on_connect=on_connect,
        )

    def start(self) -> None:
        """Start writing; call from the event loop that will await writes."""
        self._loop = asyncio.get_running_loop()
        if self.inline_writes:
            return
        self._writer = threading.Thread(
            target=self._write_loop, name="runplane-writer", daemon=True
        )
        self._writer.start()

    async def close(self) -> None:
        """Finish queued writes, stop the threads, dispose the engines."""
        if self._pending:
            self._flush_inline()
        if self._writer is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        self._close_writer_conn()
        if self._point_conn is not None:
            with contextlib.suppress(Exception):
                self._point_conn.close()
            self._point_conn = None
        self._reads.shutdown(wait=True)
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(conn)` in one read transaction on a reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reads, self._run_read, fn)

    async def read_point(self, fn: Callable[[Connection], T]) -> T:
        """Like `read`, for a lookup by key: on SQLite run on the event loop itself.

        A WAL reader never waits for a writer, and a point lookup takes tens of
        microseconds: less than the hand-over to a reader thread and back, which
        every `?wait` and long poll would otherwise pay twice. PostgreSQL reads
        are network round trips and stay on the reader threads.
        """
        if not self.inline_writes:
            return await self.read(fn)
        # One reader connection held for these loop-side lookups (they never overlap),
        # its transaction ended after each one so that the next sees every commit.
        conn = self._point_conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._point_conn = self._read_connection()
        try:
            return _mapped_read(conn, fn)
        finally:
            try:
                conn.rollback()
            except Exception:
                self._point_conn = None
                with contextlib.suppress(Exception):
                    conn.close()

    def _run_read(self, fn: Callable[[Connection], T]) -> T:
        with self._read_connection() as conn:
            try:
                return _mapped_read(conn, fn)
            finally:
                conn.rollback()

    def _read_connection(self) -> Connection:
        try:
            return self.read_engine.connect()
        except UNAVAILABLE as exc:
            raise map_driver_error(exc) from exc

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn(tx)` in the next group commit; resolves after the commit."""
        if self._loop is None:
            raise RuntimeError("Database.start() was not called")
        future: asyncio.Future[T] = self._loop.create_future()
        if self.inline_writes:
            self._pending.append(_Write(fn, future))
            if len(self._pending) == 1:  # first of this loop iteration: flush after the others
                self._loop.call_soon(self._flush_inline)
        else:
            self._queue.put(_Write(fn, future))
        return await future

    def _flush_inline(self) -> None:
        batch, self._pending = self._pending[:MAX_BATCH_WRITES], self._pending[MAX_BATCH_WRITES:]
        if not batch:
            return
        if self._pending:
            assert self._loop is not None
            self._loop.call_soon(self._flush_inline)
        self._run_batch(batch)

    def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            batch: list[_Write] = [item]
            while len(batch) < MAX_BATCH_WRITES:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._run_batch(batch)

    def _run_batch(self, batch: list[_Write]) -> None:
        # Optimistic first: the whole batch without savepoints (two statements fewer
        # per write). Only if some write raises is the transaction rolled back and
        # the batch run again with one savepoint per write, so the failing write
        # alone is undone. Writes are functions of the transaction, so re-running
        # one after a rollback is safe.
        try:
            self._commit(batch, savepoints=False)
        except _WriteFailed:
            if len(batch) == 1:
                pass  # the lone write's error is already recorded
            else:
                for w in batch:
                    w.error, w.result, w.events = None, None, []
                try:
                    self._commit(batch, savepoints=True)
                except Exception as exc:
                    self._fail(batch, exc)
        except Exception as exc:  # the commit failed: nothing was stored
            self._fail(batch, exc)
        self.batches += 1
        self.writes += len(batch)
        if self.inline_writes:
            self._deliver(batch)
            return
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._deliver, batch)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.debug("event loop closed; %d write results dropped", len(batch))

    def _commit(self, batch: list[_Write], *, savepoints: bool) -> None:
        # Batches run one at a time (on the loop for SQLite, on the writer thread for
        # PostgreSQL), on one connection held open: checking one out of the pool and
        # back (on PostgreSQL with a ping, a round trip) costs more than a small batch's
        # statements. One idle for a while goes back, so that the pool's ping checks the
        # next; one that failed is closed.
        held = self._writer_conn
        if held is not None and (
            held.closed
            or held.invalidated
            or time.monotonic() - self._writer_used > HELD_CONNECTION_IDLE_SECONDS
        ):
            self._close_writer_conn()
            held = None
        conn = held if held is not None else self.engine.connect()
        self._writer_conn = conn
        try:
            with conn.begin():
                self._apply(conn, batch, savepoints=savepoints)
        except _WriteFailed:
            raise  # a write refused: the transaction is rolled back, the connection is fine
        except BaseException:
            self._close_writer_conn()
            raise
        finally:
            self._writer_used = time.monotonic()

    def _close_writer_conn(self) -> None:
        conn, self._writer_conn = self._writer_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _apply(self, conn: Connection, batch: list[_Write], *, savepoints: bool) -> None:
        """Run the batch's writes in `conn`'s transaction (see `_run_batch`)."""
        for w in batch:
            tx = Tx(conn)
            if not savepoints:
                try:
                    w.result = w.fn(tx)
                except Exception as exc:
                    w.error = map_driver_error(exc)
                    raise _WriteFailed from exc
                w.events = tx.events
                continue
            sp = conn.begin_nested()
            try:
                w.result = w.fn(tx)
            except Exception as exc:
                sp.rollback()
                w.error = map_driver_error(exc)
                continue
            sp.commit()
            w.events = tx.events
        if self.notify_channel is not None:
            events = [ev for w in batch for ev in w.events]
            if events:  # inside the transaction: sent if, and only when, it commits
                notify.send(conn, self.notify_channel, self.node_id, events)

    @staticmethod
    def _fail(batch: list[_Write], exc: Exception) -> None:
        error = map_driver_error(exc)
        for w in batch:
            if w.error is None or isinstance(exc, UNAVAILABLE):
                w.error = error
            w.events = []

    def _deliver(self, batch: list[_Write]) -> None:
        events = [ev for w in batch for ev in w.events]
        if events:
            try:
                self.on_events(events)
            except Exception:
                log.exception("event delivery failed")
        for w in batch:
            if w.future.done():
                continue
            if w.error is not None:
                w.future.set_exception(w.error)
            else:
                w.future.set_result(w.result)
