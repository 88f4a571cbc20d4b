"""THE status write of an execution, and the row lock that keeps its decision fresh.

`transition` is the only code that writes `executions.status` (the trigger's
insert aside, which creates the queued row); every path that changes a status
(claim, report, release, cancel, the sweep) calls it. It asks `domain.states`
for the next status and updates with the expected previous status (and lease
token) in the WHERE clause, so a race is an error, never a silent overwrite.
That WHERE cannot see a cancel request or a heartbeat that landed after the
read, so on PostgreSQL, where API replicas write at once, the read that decides
a lease's fate locks its row (`locked`, and SKIP LOCKED in the claim and the
sweep).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, bindparam, update

from runplane.domain import errors, states
from runplane.domain.events import ExecutionChanged, WorkAvailable
from runplane.domain.states import Event, Status
from runplane.store import events
from runplane.store.database import Tx
from runplane.store.schema import executions

# What `transition` reads of the row it is given: a read that decides a transition selects
# these (and may add its own).
ROW_COLUMNS = (
    executions.c.id,
    executions.c.workspace_id,
    executions.c.process_id,
    executions.c.environment_id,
    executions.c.status,
    executions.c.attempt,
    executions.c.max_attempts,
    executions.c.cancel_requested,
    executions.c.lease_token,
    executions.c.error_code,
)


def locked(conn: Connection, q: Select[Any]) -> Select[Any]:
    """`q` locking the rows it reads on PostgreSQL, where writers run concurrently: a
    read that decides a write must not go stale before the write (SQLite has one writer)."""
    return q.with_for_update() if conn.dialect.name == "postgresql" else q


# Built once (SQLAlchemy reuses the cache key; the SET clause is the parameters' columns):
# guarded by the expected previous status, and the lease token when one is named.
_UPDATE = update(executions).where(
    executions.c.id == bindparam("_id"), executions.c.status == bindparam("_from")
)
_UPDATE_LEASED = _UPDATE.where(executions.c.lease_token == bindparam("_token"))


def transition(
    tx: Tx,
    row: Any,
    event: Event,
    now: datetime,
    *,
    lease_token: int | None = None,
    values: dict[str, Any] | None = None,
    lost_because: str = "The runtime running this execution stopped answering.",
) -> Status:
    """Apply `event` to the execution in `row`: THE status write, with its entry in the
    event log (same transaction). `lost_because` is the error message when a lost lease
    ends the execution."""
    current = Status(row.status)
    target = states.next_status(
        current,
        event,
        attempt=row.attempt,
        max_attempts=row.max_attempts,
        cancel_requested=row.cancel_requested,
    )
    new: dict[str, Any] = {"status": target.value, "updated_at": now, **(values or {})}
    if current is Status.RUNNING and target is Status.QUEUED:  # a retry
        backoff = states.retry_backoff_seconds(row.attempt)
        new.update(
            attempt=row.attempt + 1,
            run_after=now + timedelta(seconds=backoff),
            runtime_id=None,
            lease_expires_at=None,
            result=None,
        )
    if target.terminal:
        new.update(finished_at=now, lease_expires_at=None)
        if target is Status.CANCELLED:
            new.update(error_code="CANCELLED", error_message="The execution was cancelled.")
        if event is Event.LOSE and target is Status.FAILED:
            new.update(
                error_code=states.RUNTIME_LOST,
                error_message=lost_because,
            )
    where = {"_id": row.id, "_from": current.value}
    if lease_token is not None:
        where["_token"] = lease_token
    stmt = _UPDATE if lease_token is None else _UPDATE_LEASED
    if tx.conn.execute(stmt, {**new, **where}).rowcount != 1:
        raise errors.StaleLease("The execution changed meanwhile; this update was refused.")
    events.record(
        tx.conn,
        workspace_id=row.workspace_id,
        execution_id=row.id,
        process_id=row.process_id,
        environment_id=row.environment_id,
        status=target,
        attempt=new.get("attempt", row.attempt),
        error_code=new.get("error_code", getattr(row, "error_code", None)),
        at=now,
    )
    tx.emit(ExecutionChanged(row.id, target.value))
    if target is Status.QUEUED:
        tx.emit(WorkAvailable(row.environment_id))
    return target
