"""Named store operations for runtime registrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select, update

from runplane.domain import errors
from runplane.domain.ids import new_id
from runplane.domain.model import Runtime
from runplane.store.database import Tx
from runplane.store.schema import executions, runtimes


def _runtime(row: Row[Any]) -> Runtime:
    return Runtime(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        environment_id=row.environment_id,
        slots=row.slots,
        labels=row.labels,
        version=row.version,
        state=row.state,
        started_at=row.started_at,
        last_heartbeat_at=row.last_heartbeat_at,
        busy=getattr(row, "busy", 0) or 0,
    )


def register_runtime(
    tx: Tx,
    ws_id: str,
    name: str,
    environment_id: str | None,
    slots: int,
    labels: dict[str, str],
    version: str,
    now: datetime,
) -> Runtime:
    """Register a runtime; one restarted under the same name takes over its registration."""
    values = {
        "environment_id": environment_id,
        "slots": slots,
        "labels": labels,
        "version": version,
        "state": "online",
        "started_at": now,
        "last_heartbeat_at": now,
    }
    existing = tx.conn.scalar(
        select(runtimes.c.id).where(runtimes.c.workspace_id == ws_id, runtimes.c.name == name)
    )
    if existing is None:
        rt_id = new_id()
        tx.conn.execute(runtimes.insert().values(id=rt_id, workspace_id=ws_id, name=name, **values))
    else:
        rt_id = existing
        tx.conn.execute(update(runtimes).where(runtimes.c.id == rt_id).values(**values))
    return _runtime(tx.conn.execute(select(runtimes).where(runtimes.c.id == rt_id)).one())


def touch_runtime(tx: Tx, runtime_id: str, now: datetime, state: str = "online") -> None:
    """Record a runtime heartbeat (or its state change, e.g. draining/offline)."""
    tx.conn.execute(
        update(runtimes)
        .where(runtimes.c.id == runtime_id)
        .values(last_heartbeat_at=now, state=state)
    )


def list_runtimes(conn: Connection, ws_id: str) -> list[Runtime]:
    """Every runtime registered in the workspace, by name, with its running executions."""
    busy = (
        select(func.count())
        .select_from(executions)
        .where(executions.c.runtime_id == runtimes.c.id, executions.c.status == "running")
        .scalar_subquery()
    )
    rows = conn.execute(
        select(runtimes, busy.label("busy"))
        .where(runtimes.c.workspace_id == ws_id)
        .order_by(runtimes.c.name)
    )
    return [_runtime(r) for r in rows]


def get_runtime(conn: Connection, ws_id: str, runtime_id: str) -> Runtime:
    """The runtime `runtime_id` of the workspace."""
    row = conn.execute(
        select(runtimes).where(runtimes.c.workspace_id == ws_id, runtimes.c.id == runtime_id)
    ).first()
    if row is None:
        raise errors.RuntimeNotFound(f"No runtime {runtime_id!r}.")
    return _runtime(row)


def runtime_state(conn: Connection, runtime_id: str) -> str | None:
    """The state of a runtime (online, draining, offline), None when it is not registered."""
    state: str | None = conn.scalar(select(runtimes.c.state).where(runtimes.c.id == runtime_id))
    return state


def find_runtime(conn: Connection, ws_id: str, name: str) -> Runtime | None:
    """The runtime registered under `name` in the workspace, if any."""
    row = conn.execute(
        select(runtimes).where(runtimes.c.workspace_id == ws_id, runtimes.c.name == name)
    ).first()
    return None if row is None else _runtime(row)
