"""The execution event log (store/events.py) on SQLite and PostgreSQL: written with every
status change, read in an order that never skips a row that commits late, purged as a
prefix of that order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from runplane.domain import errors
from runplane.domain.states import Status
from runplane.store import events, executions, leases
from runplane.store.database import Tx
from runplane.store.schema import execution_events
from tests.integration.test_store import T0, World, read, write

START = events.Position(0, 0)
# On PostgreSQL a committed event is handed out once no older transaction is open
# anywhere on the server (the horizon): other sessions (other tests, other test runs on
# the same server) hold it back while their transactions last. Tests wait that long.
SETTLE_SECONDS = 60.0


HELD_BACK = (
    f"events still held back after {SETTLE_SECONDS:.0f} s: a transaction is open "
    "elsewhere on the PostgreSQL server (see pg_stat_activity)"
)


def settling() -> Iterator[None]:
    """The rounds of a wait for held-back events: for SETTLE_SECONDS at most."""
    deadline = time.monotonic() + SETTLE_SECONDS
    yield
    while time.monotonic() < deadline:
        time.sleep(0.05)
        yield


def everything(w: World, after: events.Position = START, **seen: Any) -> events.EventPage:
    """Read pages until the reader has nothing more: all events, the last cursor. Events
    held back by a transaction open elsewhere on the PostgreSQL server are waited for,
    so what it returns is settled (below the horizon)."""
    found: list[Any] = []
    visibility = events.Visibility(**seen)
    for _ in settling():
        while True:
            page = read(w.engine, lambda c, a=after: events.read(c, w.ws, a, visibility))
            found += page.events
            after = page.after
            if not page.more:
                break
        if not page.withheld:
            return events.EventPage(found, after, False, False)
    raise AssertionError(HELD_BACK)


def test_every_status_change_is_logged_in_order_with_names(engine: Engine) -> None:
    w = World(engine)
    e, _ = w.new()
    claim = w.claim()
    write(
        engine,
        lambda tx: leases.finish(tx, e.id, claim.lease_token, Status.SUCCEEDED, T0),
    )
    page = everything(w)
    assert [(ev.execution_id, ev.status) for ev in page.events] == [
        (e.id, Status.QUEUED),
        (e.id, Status.RUNNING),
        (e.id, Status.SUCCEEDED),
    ]
    first = page.events[0]
    assert (first.process_name, first.environment_name, first.version_number) == (
        "bot",
        "production",
        1,
    )
    assert first.client_execution_id == e.client_execution_id and first.attempt == 1
    assert first.at == T0 and first.error_code is None
    seqs = [ev.seq for ev in page.events]
    assert seqs == sorted(seqs)
    # nothing new: the cursor stays put and the next read is empty
    assert everything(w, page.after).events == []


def test_a_retry_and_a_cancel_carry_the_attempt_and_the_error(engine: Engine) -> None:
    w = World(engine, retries=1)
    e, _ = w.new()
    claim = w.claim()
    write(
        engine,
        lambda tx: leases.finish(
            tx, e.id, claim.lease_token, Status.FAILED, T0, error_code="BOOM", error_message="x"
        ),
    )
    write(engine, lambda tx: executions.request_cancel(tx, w.ws, e.id, T0))
    got = [(ev.status, ev.attempt, ev.error_code) for ev in everything(w).events]
    assert got == [
        (Status.QUEUED, 1, None),
        (Status.RUNNING, 1, None),
        (Status.QUEUED, 2, "BOOM"),  # the failed attempt's error, retried
        (Status.CANCELLED, 2, "CANCELLED"),
    ]


def test_a_change_that_is_rolled_back_leaves_no_event(engine: Engine) -> None:
    w = World(engine)
    e, _ = w.new()

    def cancel_then_fail(tx: Tx) -> None:
        executions.request_cancel(tx, w.ws, e.id, T0)
        raise errors.Conflict("changed my mind")

    with pytest.raises(errors.Conflict):
        write(engine, cancel_then_fail)
    assert [ev.status for ev in everything(w).events] == [Status.QUEUED]


def test_the_reader_shows_what_the_credential_may_see_and_the_stream_asked_for(
    engine: Engine,
) -> None:
    w = World(engine)
    w.new()
    b, _ = w.new()
    assert len(everything(w).events) == 2
    assert everything(w, environment_ids=frozenset({w.sandbox.id})).events == []
    assert len(everything(w, environment_ids=frozenset({w.env.id})).events) == 2
    assert everything(w, process_id="another").events == []
    assert len(everything(w, process_id=w.deployment.process_id).events) == 2
    assert everything(w, process_names=("other",)).events == []
    assert len(everything(w, process_names=("other", "bot")).events) == 2
    assert everything(w, environment_names=("sandbox",)).events == []
    only_b = everything(w, execution_ids=(b.id,)).events
    assert [ev.execution_id for ev in only_b] == [b.id]
    assert (
        read(
            engine, lambda c: events.read(c, "another-workspace", START, events.Visibility())
        ).events
        == []
    )


def test_a_filtered_reader_moves_its_cursor_past_what_it_filtered_out(engine: Engine) -> None:
    w = World(engine)
    for _ in range(3):
        w.new()
    # Settled first: the filtered read's horizon is then past every row (a transaction
    # open elsewhere could hold it below them, and the cursor with it).
    everything(w)
    page = everything(w, process_names=("other",))
    assert page.events == []
    newest = read(
        engine,
        lambda c: c.scalar(
            select(execution_events.c.seq).order_by(execution_events.c.seq.desc()).limit(1)
        ),
    )
    position = read(engine, lambda c: events.position_of(c, w.ws, newest))
    assert position is not None and page.after >= position


def test_pages_are_bounded_and_resume_after_the_last_event(engine: Engine) -> None:
    w = World(engine)
    made = [w.new()[0].id for _ in range(5)]
    after, seen = START, []
    for _ in settling():  # until nothing is held back (other sessions)
        page = read(engine, lambda c, a=after: events.read(c, w.ws, a, events.Visibility(), 2))
        assert len(page.events) <= 2
        seen += [ev.execution_id for ev in page.events]
        after = page.after
        if not page.more and not page.withheld:
            break
    else:
        raise AssertionError(HELD_BACK)
    assert seen == made


def test_a_stream_starts_at_the_horizon_and_resumes_after_a_retained_event(
    engine: Engine,
) -> None:
    w = World(engine)
    first, _ = w.new()
    everything(w)  # settled: the horizon has passed it, whatever other sessions hold open
    top = read(engine, events.horizon)
    last = read(engine, lambda c: events.last_seq_before(c, w.ws, top))
    assert last is not None
    assert read(engine, lambda c: events.last_seq_before(c, "another-workspace", top)) is None
    second, _ = w.new()
    assert [ev.execution_id for ev in everything(w, top).events] == [second.id]
    resumed = read(engine, lambda c: events.position_of(c, w.ws, last))
    assert resumed is not None
    assert [ev.execution_id for ev in everything(w, resumed).events] == [second.id]
    assert read(engine, lambda c: events.position_of(c, "another-workspace", last)) is None
    assert read(engine, lambda c: events.position_of(c, w.ws, 10**9)) is None
    assert first.id != second.id


def test_purge_deletes_only_a_prefix_of_old_events(engine: Engine) -> None:
    w = World(engine)
    ids = [w.new(at=T0 + timedelta(seconds=i))[0].id for i in range(5)]
    # Make the third event young: a clock that ran ahead. Nothing after it may go either,
    # so that any event still retained has everything after it retained too.
    third = read(
        engine,
        lambda c: c.scalar(
            select(execution_events.c.seq).where(execution_events.c.execution_id == ids[2])
        ),
    )
    write(
        engine,
        lambda tx: tx.conn.execute(
            execution_events.update()
            .where(execution_events.c.seq == third)
            .values(at=T0 + timedelta(hours=5))
        ),
    )
    cutoff = T0 + timedelta(hours=1)
    everything(w)  # settled: no transaction older than these events is open anywhere
    assert write(engine, lambda tx: events.purge(tx, cutoff)) == 2
    assert [ev.execution_id for ev in everything(w).events] == ids[2:]
    assert write(engine, lambda tx: events.purge(tx, cutoff)) == 0
    assert write(engine, lambda tx: events.purge(tx, T0 + timedelta(hours=6))) == 3
    assert everything(w).events == []


def test_purge_is_bounded_per_call(engine: Engine) -> None:
    w = World(engine)
    for _ in range(5):
        w.new()
    late = T0 + timedelta(hours=1)
    everything(w)  # settled: no transaction older than these events is open anywhere
    assert write(engine, lambda tx: events.purge(tx, late, limit=2)) == 2
    assert write(engine, lambda tx: events.purge(tx, late, limit=2)) == 2
    assert write(engine, lambda tx: events.purge(tx, late, limit=2)) == 1


def test_sqlite_never_reuses_a_purged_seq(engine: Engine) -> None:
    w = World(engine)
    w.new()
    before = read(engine, lambda c: c.scalar(select(execution_events.c.seq)))
    everything(w)  # settled, so that the purge takes it
    assert write(engine, lambda tx: events.purge(tx, T0 + timedelta(hours=1))) == 1
    w.new()
    after = read(engine, lambda c: c.scalar(select(execution_events.c.seq)))
    assert after > before
