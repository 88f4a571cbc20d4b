"""The execution event log behind GET /api/v1/events: written with every status change,
read by streams in a order that never skips a row, purged after the retention.

`record` appends one row inside the transaction that changes the status (the
trigger's insert does it in the same statement on PostgreSQL, `with_queued_event`),
so an event exists if and only if its change committed.

Order. On SQLite there is one writer, so `seq` order is commit order. On
PostgreSQL concurrent transactions (several replicas) take `seq` values in one
order and commit in another: a reader that hands out `seq > last` could pass a
row that commits later with a smaller `seq`. So each row also carries
`tx_position` = max(the writer's transaction id, the xmax of the statement's
snapshot: one past the newest transaction finished by then), and streams read
in (tx_position, seq) order, only up to the *horizon* (tx_position below the
xmin of the reader's snapshot, the oldest transaction still running). Every row
not yet committed has tx_position ≥ its transaction's id ≥ that xmin, so the
part of the log at or below the horizon is final: later commits land after it,
and a cursor never passes a row that is still to come. The snapshot term keeps
one execution's events in order: a change that read an earlier committed
change sees that transaction finished, so its tx_position is at least as large
(and its seq larger). On SQLite tx_position is 0 and the horizon is the newest
row, so both orders are `seq`. docs/architecture.md ("The event stream").

The purge deletes, per workspace, a prefix of this order (rows older than the
retention, and final), so a retained row has nothing purged after it: a stream
may resume after any row that still exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    CTE,
    BigInteger,
    Connection,
    Insert,
    Text,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    tuple_,
)

from runplane.domain.model import ExecutionEvent
from runplane.domain.states import Status
from runplane.store.database import Tx
from runplane.store.schema import (
    environments,
    execution_events,
    executions,
    process_versions,
    processes,
    workspaces,
)

MAX_READ_EVENTS = 500
PURGE_BATCH_EVENTS = 1000  # per workspace and purge: a bounded DELETE


class Position(NamedTuple):
    """A place in the event order: (tx_position, seq). A cursor holds the last one read."""

    tx_position: int
    seq: int


def _xid8(expr: Any) -> Any:
    return cast(cast(expr, Text), BigInteger)


# PostgreSQL's position of the row being written, and the horizon of a reader.
_PG_TX_POSITION = func.greatest(
    _xid8(func.pg_current_xact_id()), _xid8(func.pg_snapshot_xmax(func.pg_current_snapshot()))
)
_PG_HORIZON = _xid8(func.pg_snapshot_xmin(func.pg_current_snapshot()))

_COLUMNS = (
    "workspace_id",
    "execution_id",
    "process_id",
    "environment_id",
    "status",
    "attempt",
    "error_code",
    "at",
)
_PG_INSERT = insert(execution_events).values(tx_position=_PG_TX_POSITION)
# SQLite: compiled once and run on the driver's cursor, like the trigger's own insert
# (store.executions._insert_execution): one row per status change, on the hot path.
_SQLITE_INSERT_SQL = (
    f"INSERT INTO execution_events (tx_position, {', '.join(_COLUMNS)}) "
    f"VALUES (0, {', '.join('?' * len(_COLUMNS))})"
)
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME storage format


def record(
    conn: Connection,
    *,
    workspace_id: str,
    execution_id: str,
    process_id: str,
    environment_id: str,
    status: Status,
    attempt: int,
    error_code: str | None,
    at: datetime,
) -> None:
    """Append the event of a status change to the transaction making the change (on
    `conn`, in that transaction)."""
    if conn.dialect.name == "sqlite":
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute(
            _SQLITE_INSERT_SQL,
            (
                workspace_id,
                execution_id,
                process_id,
                environment_id,
                status.value,
                attempt,
                error_code,
                at.astimezone(UTC).strftime(_SQLITE_DATETIME),
            ),
        )
        return
    conn.execute(
        _PG_INSERT,
        {
            "workspace_id": workspace_id,
            "execution_id": execution_id,
            "process_id": process_id,
            "environment_id": environment_id,
            "status": status.value,
            "attempt": attempt,
            "error_code": error_code,
            "at": at,
        },
    )


def with_queued_event(inserted: CTE) -> Insert:
    """PostgreSQL: one statement that inserts an execution (`inserted`, an INSERT …
    RETURNING its row as a CTE) and its queued event: one round trip for the trigger.
    It returns a row when the execution was inserted."""
    return (
        insert(execution_events)
        .from_select(
            ["tx_position", *_COLUMNS],
            select(
                _PG_TX_POSITION,
                inserted.c.workspace_id,
                inserted.c.id,
                inserted.c.process_id,
                inserted.c.environment_id,
                inserted.c.status,
                inserted.c.attempt,
                null(),
                inserted.c.created_at,
            ),
        )
        .returning(execution_events.c.execution_id)
    )


def horizon(conn: Connection) -> Position:
    """The position up to which the log is final: no transaction still running can
    commit a row at or before it. On SQLite, the newest row of this read's snapshot."""
    if conn.dialect.name == "postgresql":
        return Position(int(conn.scalar(select(_PG_HORIZON)) or 0), 0)
    return Position(0, int(conn.scalar(select(func.max(execution_events.c.seq))) or 0))


def position_of(conn: Connection, ws_id: str, seq: int) -> Position | None:
    """Where the workspace's event `seq` stands, or None when it is not retained."""
    row = conn.execute(
        select(execution_events.c.tx_position, execution_events.c.seq).where(
            execution_events.c.seq == seq, execution_events.c.workspace_id == ws_id
        )
    ).first()
    return None if row is None else Position(row.tx_position, row.seq)


def last_seq_before(conn: Connection, ws_id: str, at: Position) -> int | None:
    """The seq of the workspace's last retained event at or before `at`, if any: where a
    stream that starts at `at` tells its client to resume."""
    ev = execution_events
    return conn.scalar(
        select(ev.c.seq)
        .where(ev.c.workspace_id == ws_id, tuple_(ev.c.tx_position, ev.c.seq) <= tuple(at))
        .order_by(ev.c.tx_position.desc(), ev.c.seq.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class Visibility:
    """Which events a reader may see and asked for (empty tuples: no such filter)."""

    environment_ids: frozenset[str] | None = None  # the credential's limit; None: all
    process_id: str | None = None  # a per-process credential's process
    process_names: tuple[str, ...] = ()
    environment_names: tuple[str, ...] = ()
    execution_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventPage:
    """What one read found: the events, the cursor after them, and what to do next."""

    events: list[ExecutionEvent]
    after: Position
    more: bool  # the page was full: read again at once
    withheld: bool  # committed rows wait for an older transaction: read again soon


_SELECT = (
    select(
        execution_events,
        executions.c.client_execution_id,
        processes.c.name.label("process_name"),
        process_versions.c.number.label("version_number"),
        environments.c.name.label("environment_name"),
    )
    .join(executions, executions.c.id == execution_events.c.execution_id)
    .join(processes, processes.c.id == execution_events.c.process_id)
    .join(environments, environments.c.id == execution_events.c.environment_id)
    .join(process_versions, process_versions.c.id == executions.c.version_id)
)


def read(
    conn: Connection,
    ws_id: str,
    after: Position,
    seen: Visibility,
    limit: int = MAX_READ_EVENTS,
) -> EventPage:
    """The workspace's events after `after` that `seen` lets through, in order, up to
    the horizon. Keyset on (tx_position, seq) over the workspace's index."""
    limit = max(1, min(limit, MAX_READ_EVENTS))
    ev = execution_events
    top = horizon(conn)  # first: every row at or below it is visible to the next query
    q = _SELECT.where(ev.c.workspace_id == ws_id)
    if conn.dialect.name == "sqlite":  # tx_position is always 0: a plain range on seq
        q = q.where(ev.c.tx_position == 0, ev.c.seq > after.seq)
    else:
        q = q.where(tuple_(ev.c.tx_position, ev.c.seq) > tuple(after))
    if seen.environment_ids is not None:
        q = q.where(ev.c.environment_id.in_(sorted(seen.environment_ids)))
    if seen.process_id is not None:
        q = q.where(ev.c.process_id == seen.process_id)
    if seen.process_names:
        q = q.where(processes.c.name.in_(seen.process_names))
    if seen.environment_names:
        q = q.where(environments.c.name.in_(seen.environment_names))
    if seen.execution_ids:
        q = q.where(ev.c.execution_id.in_(seen.execution_ids))
    rows = conn.execute(q.order_by(ev.c.tx_position, ev.c.seq).limit(limit)).all()
    ready = [r for r in rows if Position(r.tx_position, r.seq) <= top]
    withheld = len(ready) < len(rows)
    events = [_event(r) for r in ready]
    if len(rows) == limit and not withheld:
        return EventPage(events, Position(rows[-1].tx_position, rows[-1].seq), True, False)
    # Every row at or below the horizon that passes the filters was read: the cursor
    # moves to the horizon, so rows the filters leave out are never read again.
    return EventPage(events, max(after, top), False, withheld)


def _event(row: Any) -> ExecutionEvent:
    return ExecutionEvent(
        seq=row.seq,
        execution_id=row.execution_id,
        client_execution_id=row.client_execution_id,
        process_name=row.process_name,
        version_number=row.version_number,
        environment_name=row.environment_name,
        status=Status(row.status),
        attempt=row.attempt,
        error_code=row.error_code,
        at=row.at,
    )


def purge(tx: Tx, cutoff: datetime, limit: int = PURGE_BATCH_EVENTS) -> int:
    """Delete events older than `cutoff`: per workspace, the longest prefix of the read
    order (at most `limit` rows) whose rows are all older and final. Returns the count."""
    ev = execution_events
    pg = tx.conn.dialect.name == "postgresql"
    deleted = 0
    for ws_id in tx.conn.scalars(select(workspaces.c.id)).all():
        first = tx.conn.scalar(
            select(ev.c.at)
            .where(ev.c.workspace_id == ws_id)
            .order_by(ev.c.tx_position, ev.c.seq)
            .limit(1)
        )
        if first is None or first >= cutoff:  # the usual case: one index probe
            continue
        oldest = (
            select(ev.c.seq, ev.c.tx_position, ev.c.at)
            .where(ev.c.workspace_id == ws_id)
            .order_by(ev.c.tx_position, ev.c.seq)
            .limit(limit)
            .subquery("oldest")
        )
        young = oldest.c.at >= cutoff
        if pg:  # a row of a transaction the horizon has not passed is not final yet
            young = young | (oldest.c.tx_position >= _PG_HORIZON)
        blocked = func.max(case((young, 1), else_=0)).over(
            order_by=(oldest.c.tx_position, oldest.c.seq), rows=(None, 0)
        )
        flagged = select(oldest.c.seq, blocked.label("blocked")).subquery("flagged")
        doomed = select(flagged.c.seq).where(flagged.c.blocked == literal(0))
        deleted += tx.conn.execute(delete(ev).where(ev.c.seq.in_(doomed))).rowcount
    return deleted
