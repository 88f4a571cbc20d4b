"""Lease operations racing each other on PostgreSQL, interleaved on purpose.

API replicas on PostgreSQL write concurrently (READ COMMITTED), so a
heartbeat, a report, a cancel request and the sweeper can interleave between
one's read of an execution and its update. Each test stops one operation at
that point (a hook on its connection), runs the other on a second connection
until it finishes or waits for a lock, then lets the first go on.

SQLite runs one writer at a time (BEGIN IMMEDIATE): no such interleaving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, select, text

from runplane.domain import errors
from runplane.domain.states import Status
from runplane.store import executions, leases
from runplane.store.database import Tx
from runplane.store.schema import executions as executions_table
from tests.integration.test_store import T0, TTL, World
from tests.support import wait_until

LATE = T0 + timedelta(seconds=TTL + 1)  # the first claim's lease has expired by then


@pytest.fixture
def pg(engine: Engine) -> Engine:
    """The store on PostgreSQL; SQLite never interleaves writers."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    return engine


class Beside:
    """A write on a connection of its own, in a thread: done, or waiting for a lock."""

    def __init__(self, engine: Engine, fn: Callable[[Tx], Any]) -> None:
        self.engine = engine
        self.conn = engine.connect()
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            with self.conn.begin():
                self.result = self.fn(Tx(self.conn))
        except BaseException as exc:  # read by the test after join()
            self.error = exc

    def start(self) -> None:
        """Run the write until it has finished or waits for a row lock."""
        pid = self.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        self.conn.commit()
        self.thread.start()
        with self.engine.connect() as monitor:

            def settled() -> bool:
                if not self.thread.is_alive():
                    return True
                wait = monitor.execute(
                    text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": pid},
                ).scalar()
                monitor.rollback()
                return wait == "Lock"

            wait_until(settled, timeout=10)

    def join(self) -> None:
        """Wait for the write to end (after the other one committed)."""
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.conn.close()


@contextmanager
def meanwhile(
    conn: Connection, statement: str, beside: Beside, *, after: bool = False
) -> Iterator[None]:
    """Start `beside` when `conn` is about to run its first `statement` (or has run it)."""
    fired: list[str] = []

    def hook(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if not fired and sql.lstrip().upper().startswith(statement):
            fired.append(sql)
            beside.start()

    name = "after_cursor_execute" if after else "before_cursor_execute"
    event.listen(conn, name, hook)
    try:
        yield
    finally:
        event.remove(conn, name, hook)
    assert fired, f"{statement} never ran"


def lease_expiry(engine: Engine, execution_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(executions_table.c.lease_expires_at).where(executions_table.c.id == execution_id)
        ).scalar_one()


def test_heartbeat_racing_the_sweeper_never_revives_a_reclaimed_lease(pg: Engine) -> None:
    w = World(pg)
    e, _ = w.new()
    w.claim()
    sweep = Beside(pg, lambda tx: leases.reclaim_expired(tx, LATE))
    with pg.connect() as conn:
        with meanwhile(conn, "UPDATE", sweep), conn.begin():
            try:
                leases.renew_lease(Tx(conn), e.id, 1, LATE, TTL)
                acknowledged = True
            except errors.StaleLease:
                acknowledged = False
        sweep.join()
    assert sweep.error is None
    got = w.get(e.id)
    if acknowledged:  # the heartbeat won: the sweeper must have left the lease alone
        assert sweep.result == [] and got.status is Status.RUNNING
    else:
        assert got.status is Status.FAILED and lease_expiry(pg, e.id) is None


def test_sweeper_racing_a_heartbeat_never_takes_a_renewed_lease(pg: Engine) -> None:
    w = World(pg)
    e, _ = w.new()
    w.claim()
    heartbeat = Beside(pg, lambda tx: leases.renew_lease(tx, e.id, 1, LATE, TTL))
    with pg.connect() as conn:
        with meanwhile(conn, "SELECT", heartbeat, after=True), conn.begin():
            swept = leases.reclaim_expired(Tx(conn), LATE)
        heartbeat.join()
    got = w.get(e.id)
    if heartbeat.error is None:  # acknowledged: the lease holds until the new expiry
        assert swept == [] and got.status is Status.RUNNING
    else:
        assert isinstance(heartbeat.error, errors.StaleLease)
        assert swept == [(e.id, Status.FAILED)] and got.status is Status.FAILED


def test_failure_report_racing_a_cancel_request_is_never_retried(pg: Engine) -> None:
    w = World(pg, retries=1)
    e, _ = w.new()
    w.claim()
    cancel = Beside(pg, lambda tx: executions.request_cancel(tx, w.ws, e.id, T0))
    with pg.connect() as conn:
        with meanwhile(conn, "UPDATE", cancel), conn.begin():
            reported = leases.finish(Tx(conn), e.id, 1, Status.FAILED, T0)
        cancel.join()
    assert cancel.error is None  # the cancel request was accepted, so:
    got = w.get(e.id)
    assert got.status is Status.CANCELLED, (reported, got.status, got.cancel_requested)
    assert w.claim(at=T0 + timedelta(seconds=10)) is None
