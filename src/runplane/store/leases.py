"""Named store operations for leases: claim, heartbeat, report, hand back, reclaim.

A claim leases one queued execution to one runtime and increments its fencing
token; every later write under the lease names that token, and one whose
lease is gone is refused (StaleLease). Status changes go through
`store.transitions.transition`; the reads that decide them lock their rows on
PostgreSQL (store.transitions: why).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, bindparam, func, select, update

from runplane.domain import errors
from runplane.domain.model import Claim
from runplane.domain.states import Event, Status
from runplane.store.database import Tx
from runplane.store.schema import deployments, executions, process_versions
from runplane.store.transitions import ROW_COLUMNS, transition

CLAIM_CANDIDATES = 8  # the query leaves full deployments out; more are for a race only

_running = executions.alias("running")
_FULL_DEPLOYMENTS = (
    select(_running.c.deployment_id)
    .join(deployments, deployments.c.id == _running.c.deployment_id)
    .where(
        _running.c.status == Status.RUNNING.value,
        deployments.c.concurrency_limit.is_not(None),
    )
    .group_by(_running.c.deployment_id, deployments.c.concurrency_limit)
    .having(func.count() >= deployments.c.concurrency_limit)
)


def _candidates(in_environments: bool, pg: bool) -> Select[Any]:
    """The claim's query: the oldest claimable executions, locked on PostgreSQL."""
    q = (
        select(*ROW_COLUMNS, executions.c.deployment_id, deployments.c.concurrency_limit)
        .join(deployments, deployments.c.id == executions.c.deployment_id)
        .where(
            executions.c.status == Status.QUEUED.value,
            executions.c.run_after <= bindparam("now"),
        )
        .order_by(executions.c.id)
        .limit(CLAIM_CANDIDATES)
    )
    if in_environments:
        q = q.where(executions.c.environment_id.in_(bindparam("environment_ids", expanding=True)))
    # Deployments already at their limit are left out here, so that any number of
    # their queued executions never hides claimable work behind them.
    q = q.where(executions.c.deployment_id.not_in(_FULL_DEPLOYMENTS))
    if pg:
        q = q.with_for_update(skip_locked=True, of=executions)
    return q


# Built once (SQLAlchemy reuses their cache keys and compiled forms): by whether the
# runtime serves some environments only, and whether the database is PostgreSQL.
_CANDIDATES = {(envs, pg): _candidates(envs, pg) for envs in (False, True) for pg in (False, True)}
_CLAIMED = (
    select(
        executions.c.inputs,
        executions.c.secret_inputs,
        executions.c.timeout_seconds,
        executions.c.version_id,
        process_versions.c.content_hash,
        process_versions.c.spec,
    )
    .join(process_versions, process_versions.c.id == executions.c.version_id)
    .where(executions.c.id == bindparam("execution_id"))
)
# What deciding a lease's fate reads: not the whole row, whose JSON and timestamps would
# be decoded for nothing on every report.
_LEASED: Select[Any] = select(*ROW_COLUMNS).where(executions.c.id == bindparam("execution_id"))
_LEASED_LOCKED = _LEASED.with_for_update()


def claim_next(
    tx: Tx,
    runtime_id: str,
    environment_ids: list[str] | None,
    now: datetime,
    lease_ttl_seconds: float,
    claim_id: str | None = None,
    *,
    on_drained: Callable[[], None] | None = None,
) -> Claim | None:
    """Lease the oldest claimable execution to a runtime, or None when there is none.

    Claimable: queued, due (`run_after` passed), in one of the runtime's
    environments, and its deployment below its concurrency limit. Each claim
    increments the execution's fencing token. `on_drained` is called when this
    look leaves nothing claimable behind for the runtime (it found none, or took
    the only one), so that its next claim may wait for news instead of looking.
    """
    conn = tx.conn
    pg = conn.dialect.name == "postgresql"
    params: dict[str, Any] = {"now": now}
    if environment_ids is not None:
        params["environment_ids"] = environment_ids
    q = _CANDIDATES[(environment_ids is not None, pg)]
    full: set[str] = set()
    candidates = conn.execute(q, params).all()
    every_one = len(candidates) < CLAIM_CANDIDATES  # the query's limit left none out
    for index, cand in enumerate(candidates):
        if cand.deployment_id in full:
            continue
        if cand.concurrency_limit is not None:
            lock = select(deployments.c.id).where(deployments.c.id == cand.deployment_id)
            if pg:  # serialise claims of one deployment across replicas
                conn.execute(lock.with_for_update())
            running = conn.scalar(
                select(func.count()).where(
                    executions.c.deployment_id == cand.deployment_id,
                    executions.c.status == Status.RUNNING.value,
                )
            )
            if (running or 0) >= cand.concurrency_limit:
                full.add(cand.deployment_id)
                continue
        expires = now + timedelta(seconds=lease_ttl_seconds)
        token = cand.lease_token + 1
        transition(
            tx,
            cand,
            Event.CLAIM,
            now,
            values={
                "runtime_id": runtime_id,
                "claim_id": claim_id,
                "lease_token": token,
                "lease_expires_at": expires,
                "started_at": now,
                "finished_at": None,
                "error_code": None,
                "error_message": None,
            },
        )
        if on_drained is not None and every_one and index == len(candidates) - 1:
            on_drained()  # it took the last one
        return _claim(conn, cand.id, cand.attempt, token, expires)
    if on_drained is not None and every_one:
        on_drained()
    return None


def _claim(
    conn: Connection, execution_id: str, attempt: int, token: int, expires: datetime
) -> Claim:
    """What a runtime needs to run a leased attempt."""
    row = conn.execute(_CLAIMED, {"execution_id": execution_id}).one()
    return Claim(
        execution_id=execution_id,
        attempt=attempt,
        lease_token=token,
        lease_expires_at=expires,
        version_id=row.version_id,
        content_hash=row.content_hash,
        spec=row.spec,
        inputs={**row.inputs, **row.secret_inputs},
        secret_names=tuple(sorted(row.secret_inputs)),
        timeout_seconds=row.timeout_seconds,
    )


def find_claim(conn: Connection, runtime_id: str, claim_id: str) -> Claim | None:
    """The lease a claim with this id already took, while it is still held, or None."""
    row = conn.execute(
        select(
            executions.c.id,
            executions.c.attempt,
            executions.c.lease_token,
            executions.c.lease_expires_at,
        ).where(
            executions.c.runtime_id == runtime_id,
            executions.c.claim_id == claim_id,
            executions.c.status == Status.RUNNING.value,
        )
    ).first()
    if row is None:
        return None
    return _claim(conn, row.id, row.attempt, row.lease_token, row.lease_expires_at)


def leased_row(conn: Connection, execution_id: str, lease_token: int) -> Row[Any]:
    """The execution's row (locked on PostgreSQL) while this lease holds it; StaleLease
    when it no longer does."""
    q = _LEASED_LOCKED if conn.dialect.name == "postgresql" else _LEASED
    row = conn.execute(q, {"execution_id": execution_id}).first()
    if row is None:
        raise errors.ExecutionNotFound(f"No execution {execution_id!r}.")
    if row.status != Status.RUNNING.value or row.lease_token != lease_token:
        raise errors.StaleLease(
            "This lease is no longer valid: the execution was reclaimed or has finished.",
            id=execution_id,
        )
    return row


def renew_lease(
    tx: Tx, execution_id: str, lease_token: int, now: datetime, lease_ttl_seconds: float
) -> tuple[datetime, bool]:
    """Extend a held lease (a heartbeat). Returns (new expiry, cancel requested)."""
    row = leased_row(tx.conn, execution_id, lease_token)
    expires = now + timedelta(seconds=lease_ttl_seconds)
    tx.conn.execute(
        update(executions)
        .where(executions.c.id == execution_id, executions.c.lease_token == lease_token)
        .values(lease_expires_at=expires)
    )
    return expires, bool(row.cancel_requested)


_OUTCOME_EVENTS = {
    Status.SUCCEEDED: Event.SUCCEED,
    Status.FAILED: Event.FAIL,
    Status.TIMED_OUT: Event.TIME_OUT,
    Status.CANCELLED: Event.CANCEL,
}


def finish(
    tx: Tx,
    execution_id: str,
    lease_token: int,
    outcome: Status,
    now: datetime,
    *,
    result: dict[str, Any] | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> Status:
    """Report how an attempt ended; returns the execution's new status (queued on retry)."""
    event = _OUTCOME_EVENTS.get(outcome)
    if event is None:
        raise errors.InvalidRequest(f"{outcome.value!r} is not an outcome of an attempt.")
    row = leased_row(tx.conn, execution_id, lease_token)
    return transition(
        tx,
        row,
        event,
        now,
        lease_token=lease_token,
        values={
            "result": result if outcome is Status.SUCCEEDED else None,
            "error_code": error_code,
            "error_message": error_message.replace("\x00", "\ufffd") if error_message else None,
        },
    )


def reclaim_expired(tx: Tx, now: datetime, limit: int = 100) -> list[tuple[str, Status]]:
    """End expired leases: retry, cancel (if asked) or fail with RUNTIME_LOST.

    On PostgreSQL a lease that a heartbeat, report or cancel is writing right now
    is skipped (the next sweep sees how it ended); one reclaimed here is locked
    until the sweep commits, so none of those can act on it meanwhile.
    """
    q = (
        select(executions)
        .where(
            executions.c.status == Status.RUNNING.value,
            executions.c.lease_expires_at < now,
        )
        .order_by(executions.c.lease_expires_at)
        .limit(limit)
    )
    if tx.conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    rows = tx.conn.execute(q).all()
    out = []
    for row in rows:
        out.append((row.id, transition(tx, row, Event.LOSE, now, lease_token=row.lease_token)))
    return out


def release(tx: Tx, execution_id: str, lease_token: int, now: datetime) -> Status:
    """A runtime hands a lease back (it is shutting down and killed the attempt): the
    same as the lease's expiry, without waiting for it. Returns the new status."""
    row = leased_row(tx.conn, execution_id, lease_token)
    return transition(
        tx,
        row,
        Event.LOSE,
        now,
        lease_token=lease_token,
        lost_because="The runtime running this execution shut down before it ended.",
    )
