"""Named store operations for triggering and reading executions, and cancel requests.

The trigger's insert is the hot path (one statement, compiled once, on the driver's
cursor on SQLite). Leases live in store/leases.py, the listing in store/listing.py,
log writes and reads in store/logs.py; every status change after the insert goes
through `store.transitions.transition`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Row, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from runplane.domain import errors
from runplane.domain.events import ExecutionChanged, WorkAvailable
from runplane.domain.model import Execution
from runplane.domain.states import Event, Status
from runplane.store import events, sealing
from runplane.store.database import Tx
from runplane.store.schema import environments, executions, process_versions, processes, runtimes
from runplane.store.transitions import locked, transition


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


# An execution with the names its record shows; store.listing walks it too.
SELECT_EXECUTIONS = (
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


def execution_from_row(row: Row[Any]) -> Execution:
    """The Execution of a row of SELECT_EXECUTIONS."""
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
        SELECT_EXECUTIONS.where(
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
    return execution_from_row(row), False


# Hot statements are built once: SQLAlchemy then reuses their cache key and compiled
# form (building one per call costs ~0.2 ms, running it ~0.03 ms).
_GET_EXECUTION = SELECT_EXECUTIONS.where(
    executions.c.id == bindparam("execution_id"), executions.c.workspace_id == bindparam("ws_id")
)
_BY_CLIENT_ID = SELECT_EXECUTIONS.where(
    processes.c.workspace_id == bindparam("ws_id"),
    processes.c.name == bindparam("process_name"),
    executions.c.client_execution_id == bindparam("client_execution_id"),
)
_FIND_REPEAT = _BY_CLIENT_ID.where(
    executions.c.request_fingerprint == bindparam("request_fingerprint")
)


def find_repeat(
    conn: Connection,
    ws_id: str,
    process_name: str,
    client_execution_id: str,
    request_fingerprint: str,
) -> Execution | None:
    """The execution this exact request (same id, same request as sent) already made."""
    row = conn.execute(
        _FIND_REPEAT,
        {
            "ws_id": ws_id,
            "process_name": process_name,
            "client_execution_id": client_execution_id,
            "request_fingerprint": request_fingerprint,
        },
    ).first()
    return None if row is None else execution_from_row(row)


def get_execution(conn: Connection, ws_id: str, execution_id: str) -> Execution:
    """The execution with this server id in the workspace."""
    row = conn.execute(_GET_EXECUTION, {"execution_id": execution_id, "ws_id": ws_id}).first()
    if row is None:
        raise errors.ExecutionNotFound(f"No execution {execution_id!r}.")
    return execution_from_row(row)


def get_by_client_id(
    conn: Connection, ws_id: str, process_name: str, client_execution_id: str
) -> Execution:
    """The execution of a process with this client execution id."""
    row = conn.execute(
        _BY_CLIENT_ID,
        {"ws_id": ws_id, "process_name": process_name, "client_execution_id": client_execution_id},
    ).first()
    if row is None:
        raise errors.ExecutionNotFound(
            f"No execution {client_execution_id!r} of process {process_name!r}."
        )
    return execution_from_row(row)


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


def request_cancel(tx: Tx, ws_id: str, execution_id: str, now: datetime) -> Execution:
    """Cancel a queued execution now; ask the runtime of a running one to kill it."""
    conn = tx.conn
    row = conn.execute(
        locked(
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
        transition(tx, row, Event.CANCEL, now)
    else:
        conn.execute(
            update(executions)
            .where(executions.c.id == execution_id, executions.c.status == Status.RUNNING.value)
            .values(cancel_requested=True, updated_at=now)
        )
        tx.emit(ExecutionChanged(execution_id, status.value))
    return get_execution(conn, ws_id, execution_id)
