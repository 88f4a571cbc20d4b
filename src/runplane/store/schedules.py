"""Named store operations for schedules (domain/schedules.py decides what is due)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from runplane.domain import errors
from runplane.domain.ids import new_id
from runplane.domain.schedules import Missed, Schedule
from runplane.store.database import Tx
from runplane.store.schema import environments, processes, schedules

MAX_DUE_PER_LOOK = 100

_SELECT: Any = (
    select(
        schedules,
        processes.c.name.label("process_name"),
        environments.c.name.label("environment_name"),
    )
    .join(processes, processes.c.id == schedules.c.process_id)
    .join(environments, environments.c.id == schedules.c.environment_id)
)


def _schedule(row: Row[Any]) -> Schedule:
    return Schedule(
        id=row.id,
        workspace_id=row.workspace_id,
        process_id=row.process_id,
        process_name=row.process_name,
        environment_id=row.environment_id,
        environment_name=row.environment_name,
        name=row.name,
        cron=row.cron,
        timezone=row.timezone,
        input_arguments=dict(row.input_arguments),
        missed=Missed(row.missed),
        enabled=row.enabled,
        source=row.source,
        next_due_at=row.next_due_at,
        last_due_at=row.last_due_at,
        last_execution_id=row.last_execution_id,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def create(
    tx: Tx,
    *,
    workspace_id: str,
    process_id: str,
    environment_id: str,
    name: str,
    cron: str,
    timezone: str,
    input_arguments: dict[str, Any],
    secret_arguments: dict[str, Any],
    missed: Missed,
    enabled: bool,
    source: str,
    next_due_at: datetime | None,
    now: datetime,
) -> Schedule:
    """A new schedule; Conflict when the deployment has one of that name."""
    taken = tx.conn.scalar(
        select(func.count())
        .select_from(schedules)
        .where(
            schedules.c.process_id == process_id,
            schedules.c.environment_id == environment_id,
            schedules.c.name == name,
        )
    )
    if taken:
        raise errors.Conflict(
            f"This deployment already has a schedule named {name!r}.",
            problems=[{"name": "name", "code": "name_taken", "detail": "already in use"}],
        )
    schedule_id = new_id()
    tx.conn.execute(
        insert(schedules).values(
            id=schedule_id,
            workspace_id=workspace_id,
            process_id=process_id,
            environment_id=environment_id,
            name=name,
            cron=cron,
            timezone=timezone,
            input_arguments=input_arguments,
            secret_arguments=secret_arguments,
            missed=missed.value,
            enabled=enabled,
            source=source,
            next_due_at=next_due_at,
            created_at=now,
            updated_at=now,
        )
    )
    return get(tx.conn, workspace_id, schedule_id)


def get(conn: Connection, workspace_id: str, schedule_id: str) -> Schedule:
    row = conn.execute(
        _SELECT.where(schedules.c.id == schedule_id, schedules.c.workspace_id == workspace_id)
    ).first()
    if row is None:
        raise errors.NotFound("No such schedule.")
    return _schedule(row)


def secret_arguments(conn: Connection, schedule_id: str) -> dict[str, Any]:
    """The schedule's secret input arguments, in plain text (for its executions)."""
    value = conn.scalar(select(schedules.c.secret_arguments).where(schedules.c.id == schedule_id))
    return dict(value or {})


def list_schedules(
    conn: Connection,
    workspace_id: str,
    process_id: str | None = None,
    environment_ids: frozenset[str] | None = None,
) -> list[Schedule]:
    q = _SELECT.where(schedules.c.workspace_id == workspace_id)
    if process_id is not None:
        q = q.where(schedules.c.process_id == process_id)
    if environment_ids is not None:
        q = q.where(schedules.c.environment_id.in_(environment_ids))
    rows = conn.execute(q.order_by(processes.c.name, environments.c.name, schedules.c.name))
    return [_schedule(r) for r in rows]


def names(conn: Connection, process_id: str, environment_id: str) -> set[str]:
    """The names of a deployment's schedules."""
    rows = conn.execute(
        select(schedules.c.name).where(
            schedules.c.process_id == process_id, schedules.c.environment_id == environment_id
        )
    )
    return {r.name for r in rows}


def change(tx: Tx, schedule_id: str, now: datetime, **values: Any) -> None:
    """Write the given columns (and `updated_at`)."""
    if "missed" in values and isinstance(values["missed"], Missed):
        values["missed"] = values["missed"].value
    tx.conn.execute(
        update(schedules).where(schedules.c.id == schedule_id).values(updated_at=now, **values)
    )


def remove(tx: Tx, schedule_id: str) -> None:
    tx.conn.execute(delete(schedules).where(schedules.c.id == schedule_id))


def earliest_due(conn: Connection) -> datetime | None:
    """The soonest next due instant of any enabled schedule (every workspace)."""
    value = conn.scalar(
        select(func.min(schedules.c.next_due_at)).where(schedules.c.enabled.is_(True))
    )
    return value if isinstance(value, datetime) else None


def due(tx: Tx, now: datetime) -> list[Schedule]:
    """Enabled schedules due at `now`, locked for this transaction: on PostgreSQL a
    replica skips those another replica is looking at (SKIP LOCKED)."""
    q = (
        _SELECT.where(schedules.c.enabled.is_(True), schedules.c.next_due_at <= now)
        .order_by(schedules.c.next_due_at)
        .limit(MAX_DUE_PER_LOOK)
    )
    if tx.conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True, of=schedules)
    return [_schedule(r) for r in tx.conn.execute(q)]
