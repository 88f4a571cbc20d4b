"""Named store operations for executions, leases and log writes (reads: store/logs.py).

`_transition` is the only code that writes `executions.status`; it asks
`domain.states` for the next status and updates with the expected previous
status (and lease token) in the WHERE clause, so a race is an error, never a
silent overwrite. That WHERE cannot see a cancel request or a heartbeat that
landed after the read, so on PostgreSQL, where API replicas write at once, the
read that decides a lease's fate locks its row (`_locked`, and SKIP LOCKED in
the claim and the sweep).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Row, Select, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from runplane.domain import errors, states
from runplane.domain.events import ExecutionChanged, LogAppended, WorkAvailable
from runplane.domain.filters import Filter
from runplane.domain.model import Claim, Execution, Page
from runplane.domain.states import Event, Status
from runplane.store import events, listing, sealing
from runplane.store.database import Tx
from runplane.store.filters import where
from runplane.store.schema import (
    deployments,
    environments,
    execution_logs,
    executions,
    process_versions,
    processes,
    runtimes,
)

CLAIM_CANDIDATES = 32
MAX_LIST_LIMIT = 500


@dataclass(frozen=True)
class NewExecution:
    """A validated trigger, ready to be stored."""

    id: str
    workspace_id: str
    process_id: str
    version_id: str
    deployment_id: str
    environment_id: str
    client_execution_id: str
    max_attempts: int
    timeout_seconds: float
    inputs: dict[str, Any]
    secret_inputs: dict[str, Any]
    input_fingerprint: str
    request_fingerprint: str | None
    process_name: str
    version_number: int
    environment_name: str


_SELECT = (
    select(
        executions,
        processes.c.name.label("process_name"),
        process_versions.c.number.label("version_number"),
        environments.c.name.label("environment_name"),
        runtimes.c.name.label("runtime_name"),
    )
    .join(processes, processes.c.id == executions.c.process_id)
    .join(process_versions, process_versions.c.id == executions.c.version_id)
    .join(environments, environments.c.id == executions.c.environment_id)
    .outerjoin(runtimes, runtimes.c.id == executions.c.runtime_id)
)


def _execution(row: Row[Any]) -> Execution:
    return Execution(
        id=row.id,
        workspace_id=row.workspace_id,
        process_id=row.process_id,
        process_name=row.process_name,
        version_id=row.version_id,
        version_number=row.version_number,
        deployment_id=row.deployment_id,
        environment_id=row.environment_id,
        environment_name=row.environment_name,
        client_execution_id=row.client_execution_id,
        status=Status(row.status),
        attempt=row.attempt,
        max_attempts=row.max_attempts,
        timeout_seconds=row.timeout_seconds,
        inputs=row.inputs,
        result=row.result,
        error_code=row.error_code,
        error_message=row.error_message,
        runtime_id=row.runtime_id,
        runtime_name=row.runtime_name,
        cancel_requested=row.cancel_requested,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        updated_at=row.updated_at,
        input_fingerprint=row.input_fingerprint,
    )


_INSERT_COLUMNS = (
    "request_fingerprint",
    "id",
    "workspace_id",
    "process_id",
    "version_id",
    "deployment_id",
    "environment_id",
    "client_execution_id",
    "status",
    "attempt",
    "max_attempts",
    "timeout_seconds",
    "inputs",
    "secret_inputs",
    "input_fingerprint",
    "lease_token",
    "cancel_requested",
    "run_after",
    "created_at",
    "updated_at",
)
# Built once per dialect: the hot path reuses the statement and its memoized cache key.
# On PostgreSQL the insert is a CTE of one statement that also logs the queued event.
_INSERT_SQLITE = (
    sqlite.insert(executions)
    .on_conflict_do_nothing(index_elements=["process_id", "client_execution_id"])
    .returning(executions.c.id)
)
_INSERT_PG = events.with_queued_event(
    postgresql.insert(executions)
    .values({name: bindparam(name) for name in _INSERT_COLUMNS})
    .on_conflict_do_nothing(index_elements=["process_id", "client_execution_id"])
    .returning(
        executions.c.id,
        executions.c.workspace_id,
        executions.c.process_id,
        executions.c.environment_id,
        executions.c.status,
        executions.c.attempt,
        executions.c.created_at,
    )
    .cte("inserted")
)
_JSON_COLUMNS = frozenset({"inputs", "secret_inputs"})
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME storage format
_SQLITE_INSERT = _INSERT_SQLITE.compile(
    dialect=sqlite.dialect(paramstyle="qmark"), column_keys=list(_INSERT_COLUMNS)
)
_SQLITE_INSERT_SQL = str(_SQLITE_INSERT)
_SQLITE_INSERT_ORDER = tuple(_SQLITE_INSERT.positiontup or ())


_SQLITE_SEALED_AT = _SQLITE_INSERT_ORDER.index("secret_inputs")
_SQLITE_JSON_AT = tuple(i for i, k in enumerate(_SQLITE_INSERT_ORDER) if k in _JSON_COLUMNS)
_SQLITE_DATETIME_AT = tuple(
    i for i, k in enumerate(_SQLITE_INSERT_ORDER) if k in ("run_after", "created_at", "updated_at")
)


def _sqlite_params(values: dict[str, Any]) -> list[Any]:
    params = [values[k] for k in _SQLITE_INSERT_ORDER]
    params[_SQLITE_SEALED_AT] = sealing.seal(params[_SQLITE_SEALED_AT])  # as SealedJSON does
    for i in _SQLITE_JSON_AT:
        params[i] = orjson.dumps(params[i]).decode()
    for i in _SQLITE_DATETIME_AT:
        params[i] = params[i].astimezone(UTC).strftime(_SQLITE_DATETIME)
    return params


def _insert_execution(conn: Connection, values: dict[str, Any]) -> bool:
    """Insert unless the client execution id exists, with its queued event; True when
    inserted.

    On SQLite this runs the statement compiled above straight on the driver's
    cursor, with the same conversions SQLAlchemy applies (JSON text, naive UTC
    datetimes): it is the one statement of every trigger and SQLAlchemy's
    per-execution overhead was half its cost (docs/benchmarks.md); the event is
    a second one on the same cursor. On PostgreSQL both are one statement (a round
    trip each was measurable on the one writer thread). The store tests read every
    inserted row back through SQLAlchemy on both backends.
    """
    if conn.dialect.name != "sqlite":
        return conn.execute(_INSERT_PG, values).first() is not None
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_SQLITE_INSERT_SQL, _sqlite_params(values))
        inserted = cursor.fetchone() is not None
    finally:
        cursor.close()
    if inserted:
        events.record(
            conn,
            workspace_id=values["workspace_id"],
            execution_id=values["id"],
            process_id=values["process_id"],
            environment_id=values["environment_id"],
            status=Status.QUEUED,
            attempt=1,
            error_code=None,
            at=values["created_at"],
        )
    return inserted


def create_execution(tx: Tx, new: NewExecution, now: datetime) -> tuple[Execution, bool]:
    """Store a queued execution, once per client execution id.

    Returns (execution, created). The same client id with the same fingerprint
    is a repeat (created False); with another fingerprint, ExecutionIdConflict.
    """
    values = {
        "id": new.id,
        "workspace_id": new.workspace_id,
        "process_id": new.process_id,
        "version_id": new.version_id,
        "deployment_id": new.deployment_id,
        "environment_id": new.environment_id,
        "client_execution_id": new.client_execution_id,
        "status": Status.QUEUED.value,
        "attempt": 1,
        "max_attempts": new.max_attempts,
        "timeout_seconds": new.timeout_seconds,
        "inputs": new.inputs,
        "secret_inputs": new.secret_inputs,
        "input_fingerprint": new.input_fingerprint,
        "request_fingerprint": new.request_fingerprint,
        "lease_token": 0,
        "cancel_requested": False,
        "run_after": now,
        "created_at": now,
        "updated_at": now,
    }
    inserted = _insert_execution(tx.conn, values)
    if inserted:
        tx.emit(WorkAvailable(new.environment_id))
        tx.emit(ExecutionChanged(new.id, Status.QUEUED.value))
        return (
            Execution(
                id=new.id,
                workspace_id=new.workspace_id,
                process_id=new.process_id,
                process_name=new.process_name,
                version_id=new.version_id,
                version_number=new.version_number,
                deployment_id=new.deployment_id,
                environment_id=new.environment_id,
                environment_name=new.environment_name,
                client_execution_id=new.client_execution_id,
                status=Status.QUEUED,
                attempt=1,
                max_attempts=new.max_attempts,
                timeout_seconds=new.timeout_seconds,
                inputs=new.inputs,
                result=None,
                error_code=None,
                error_message=None,
                runtime_id=None,
                runtime_name=None,
                cancel_requested=False,
                created_at=now,
                started_at=None,
                finished_at=None,
                updated_at=now,
                input_fingerprint=new.input_fingerprint,
            ),
            True,
        )
    row = tx.conn.execute(
        _SELECT.where(
            executions.c.process_id == new.process_id,
            executions.c.client_execution_id == new.client_execution_id,
        )
    ).one()
    if row.input_fingerprint != new.input_fingerprint:
        raise errors.ExecutionIdConflict(
            f"executionId {new.client_execution_id!r} was already used with different "
            "input arguments or environment.",
            executionId=new.client_execution_id,
            id=row.id,
        )
    return _execution(row), False


def find_repeat(
    conn: Connection,
    ws_id: str,
    process_name: str,
    client_execution_id: str,
    request_fingerprint: str,
) -> Execution | None:
    """The execution this exact request (same id, same request as sent) already made."""
    row = conn.execute(
        _SELECT.where(
            processes.c.workspace_id == ws_id,
            processes.c.name == process_name,
            executions.c.client_execution_id == client_execution_id,
            executions.c.request_fingerprint == request_fingerprint,
        )
    ).first()
    return None if row is None else _execution(row)


def get_execution(conn: Connection, ws_id: str, execution_id: str) -> Execution:
    """The execution with this server id in the workspace."""
    row = conn.execute(
        _SELECT.where(executions.c.id == execution_id, executions.c.workspace_id == ws_id)
    ).first()
    if row is None:
        raise errors.ExecutionNotFound(f"No execution {execution_id!r}.")
    return _execution(row)


def get_by_client_id(
    conn: Connection, ws_id: str, process_name: str, client_execution_id: str
) -> Execution:
    """The execution of a process with this client execution id."""
    row = conn.execute(
        _SELECT.where(
            processes.c.workspace_id == ws_id,
            processes.c.name == process_name,
            executions.c.client_execution_id == client_execution_id,
        )
    ).first()
    if row is None:
        raise errors.ExecutionNotFound(
            f"No execution {client_execution_id!r} of process {process_name!r}."
        )
    return _execution(row)


def run_numbers(conn: Connection, execution_ids: list[str]) -> dict[str, int]:
    """Execution id → its ordinal among its process's executions (1 for the first)."""
    if not execution_ids:
        return {}
    earlier = executions.alias("earlier")
    number = (
        select(func.count())
        .where(earlier.c.process_id == executions.c.process_id, earlier.c.id <= executions.c.id)
        .scalar_subquery()
    )
    rows = conn.execute(select(executions.c.id, number).where(executions.c.id.in_(execution_ids)))
    return {execution_id: int(n) for execution_id, n in rows}


def encode_cursor(execution_id: str) -> str:
    """A URL-safe cursor that resumes a listing after `execution_id`."""
    return base64.urlsafe_b64encode(orjson.dumps({"after": execution_id})).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The execution id a cursor resumes after; InvalidRequest when it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = orjson.loads(raw)["after"]
        if not isinstance(after, str):
            raise TypeError
        return after
    except (ValueError, TypeError, KeyError) as exc:
        raise errors.InvalidRequest(
            "The cursor is not valid.",
            problems=[{"name": "cursor", "code": "invalid_cursor", "detail": "Not a cursor."}],
        ) from exc


def list_executions(
    conn: Connection,
    ws_id: str,
    *,
    process_name: str | None = None,
    statuses: list[Status] | None = None,
    environment_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    matching: Filter | None = None,
    cursor: str | None = None,
    limit: int = 50,
    newest_first: bool = True,
    visible_environment_ids: frozenset[str] | None = None,
    visible_process_id: str | None = None,
) -> Page:
    """Executions, newest (or oldest) first, keyset-paginated on the time-ordered id;
    limited to the given environments and process when a credential is limited to them.
    `matching` is a filter on top of the named ones (store.listing: how they stay fast)."""
    limit = max(1, min(limit, MAX_LIST_LIMIT))
    named = listing.conditions(
        conn,
        ws_id,
        process_name=process_name,
        statuses=statuses,
        environment_name=environment_name,
        since=since,
        until=until,
    )
    if named is None:
        return Page(items=[], next_cursor=None)
    q = _SELECT.where(*named)
    if visible_environment_ids is not None:
        q = q.where(executions.c.environment_id.in_(sorted(visible_environment_ids)))
    if visible_process_id is not None:
        q = q.where(executions.c.process_id == visible_process_id)
    if matching is not None:
        q = q.where(where(matching))
    if cursor is not None:
        after = decode_cursor(cursor)
        q = q.where(executions.c.id < after if newest_first else executions.c.id > after)
    order = executions.c.id.desc() if newest_first else executions.c.id.asc()
    rows = conn.execute(q.order_by(order).limit(limit + 1)).all()
    items = [_execution(r) for r in rows[:limit]]
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
    return Page(items=items, next_cursor=next_cursor)


def _transition(
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
    stmt = update(executions).where(executions.c.id == row.id, executions.c.status == current.value)
    if lease_token is not None:
        stmt = stmt.where(executions.c.lease_token == lease_token)
    if tx.conn.execute(stmt.values(**new)).rowcount != 1:
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


def claim_next(
    tx: Tx,
    runtime_id: str,
    environment_ids: list[str] | None,
    now: datetime,
    lease_ttl_seconds: float,
    claim_id: str | None = None,
) -> Claim | None:
    """Lease the oldest claimable execution to a runtime, or None when there is none.

    Claimable: queued, due (`run_after` passed), in one of the runtime's
    environments, and its deployment below its concurrency limit. Each claim
    increments the execution's fencing token.
    """
    conn = tx.conn
    pg = conn.dialect.name == "postgresql"
    q = (
        select(
            executions.c.id,
            executions.c.workspace_id,
            executions.c.process_id,
            executions.c.status,
            executions.c.attempt,
            executions.c.max_attempts,
            executions.c.cancel_requested,
            executions.c.environment_id,
            executions.c.deployment_id,
            executions.c.lease_token,
            deployments.c.concurrency_limit,
        )
        .join(deployments, deployments.c.id == executions.c.deployment_id)
        .where(executions.c.status == Status.QUEUED.value, executions.c.run_after <= now)
        .order_by(executions.c.id)
        .limit(CLAIM_CANDIDATES)
    )
    if environment_ids is not None:
        q = q.where(executions.c.environment_id.in_(environment_ids))
    # Deployments already at their limit are left out here, so that any number of
    # their queued executions never hides claimable work behind them.
    q = q.where(executions.c.deployment_id.not_in(_FULL_DEPLOYMENTS))
    if pg:
        q = q.with_for_update(skip_locked=True, of=executions)
    full: set[str] = set()
    for cand in conn.execute(q).all():
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
        _transition(
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
        return _claim(conn, cand.id, cand.attempt, token, expires)
    return None


def _claim(
    conn: Connection, execution_id: str, attempt: int, token: int, expires: datetime
) -> Claim:
    """What a runtime needs to run a leased attempt."""
    row = conn.execute(
        select(
            executions.c.inputs,
            executions.c.secret_inputs,
            executions.c.timeout_seconds,
            executions.c.version_id,
            process_versions.c.content_hash,
            process_versions.c.spec,
        )
        .join(process_versions, process_versions.c.id == executions.c.version_id)
        .where(executions.c.id == execution_id)
    ).one()
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


def _locked(conn: Connection, q: Select[Any]) -> Select[Any]:
    """`q` locking the rows it reads on PostgreSQL, where writers run concurrently: a
    read that decides a write must not go stale before the write (SQLite has one writer)."""
    return q.with_for_update() if conn.dialect.name == "postgresql" else q


def _leased_row(conn: Connection, execution_id: str, lease_token: int) -> Row[Any]:
    row = conn.execute(
        _locked(conn, select(executions).where(executions.c.id == execution_id))
    ).first()
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
    row = _leased_row(tx.conn, execution_id, lease_token)
    expires = now + timedelta(seconds=lease_ttl_seconds)
    tx.conn.execute(
        update(executions)
        .where(executions.c.id == execution_id, executions.c.lease_token == lease_token)
        .values(lease_expires_at=expires)
    )
    return expires, bool(row.cancel_requested)


def append_log(
    tx: Tx, execution_id: str, lease_token: int, attempt: int, text: str, now: datetime
) -> None:
    """Append a log chunk from the runtime holding the lease."""
    _leased_row(tx.conn, execution_id, lease_token)
    tx.conn.execute(
        execution_logs.insert().values(
            execution_id=execution_id,
            attempt=attempt,
            created_at=now,
            text=text.replace("\x00", "\ufffd"),  # PostgreSQL text cannot hold NUL
        )
    )
    tx.emit(LogAppended(execution_id))


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
    row = _leased_row(tx.conn, execution_id, lease_token)
    return _transition(
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


def request_cancel(tx: Tx, ws_id: str, execution_id: str, now: datetime) -> Execution:
    """Cancel a queued execution now; ask the runtime of a running one to kill it."""
    conn = tx.conn
    row = conn.execute(
        _locked(
            conn,
            select(executions).where(
                executions.c.id == execution_id, executions.c.workspace_id == ws_id
            ),
        )
    ).first()
    if row is None:
        raise errors.ExecutionNotFound(f"No execution {execution_id!r}.")
    status = Status(row.status)
    if status.terminal:
        raise errors.ExecutionFinished(
            f"The execution already ended with status {status.value!r}.",
            executionStatus=status.value,
        )
    if status is Status.QUEUED:
        _transition(tx, row, Event.CANCEL, now)
    else:
        conn.execute(
            update(executions)
            .where(executions.c.id == execution_id, executions.c.status == Status.RUNNING.value)
            .values(cancel_requested=True, updated_at=now)
        )
        tx.emit(ExecutionChanged(execution_id, status.value))
    return get_execution(conn, ws_id, execution_id)


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
        out.append((row.id, _transition(tx, row, Event.LOSE, now, lease_token=row.lease_token)))
    return out


def release(tx: Tx, execution_id: str, lease_token: int, now: datetime) -> Status:
    """A runtime hands a lease back (it is shutting down and killed the attempt): the
    same as the lease's expiry, without waiting for it. Returns the new status."""
    row = _leased_row(tx.conn, execution_id, lease_token)
    return _transition(
        tx,
        row,
        Event.LOSE,
        now,
        lease_token=lease_token,
        lost_because="The runtime running this execution shut down before it ended.",
    )


def add_note(tx: Tx, execution_id: str, text: str, now: datetime) -> None:
    """Log a line from runplane itself (not the process) before the first attempt."""
    tx.conn.execute(
        execution_logs.insert().values(
            execution_id=execution_id, attempt=1, created_at=now, text=text
        )
    )
    tx.emit(LogAppended(execution_id))
