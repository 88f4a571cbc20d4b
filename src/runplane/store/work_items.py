"""Named store operations for work items (a Robocorp noun runplane keeps for its router).

An item's payload is sealed at rest; a copy with secret parameters masked is
what reads return. The state of an item is its execution's status: this module
never writes a status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select, update

from runplane.domain import errors
from runplane.domain.model import WorkItem, WorkItemFile
from runplane.domain.params import MASK
from runplane.domain.states import Status
from runplane.store.database import Tx
from runplane.store.schema import (
    executions,
    process_versions,
    processes,
    work_item_files,
    work_items,
)

MAX_LIST_LIMIT = 500

_SELECT: Any = (
    select(
        work_items.c.id,
        work_items.c.workspace_id,
        work_items.c.process_id,
        processes.c.name.label("process_name"),
        work_items.c.execution_id,
        executions.c.status.label("execution_status"),
        work_items.c.public_payload,
        work_items.c.created_at,
        work_items.c.queued_at,
        work_items.c.parent_id,
        work_items.c.state,
        work_items.c.exception_type,
        work_items.c.exception_code,
        work_items.c.exception_message,
        func.coalesce(executions.c.updated_at, work_items.c.created_at).label("state_at"),
    )
    .select_from(work_items)
    .join(processes, processes.c.id == work_items.c.process_id)
    .outerjoin(executions, executions.c.id == work_items.c.execution_id)
)


def _item(row: Row[Any], files: dict[str, list[WorkItemFile]] | None = None) -> WorkItem:
    return WorkItem(
        id=row.id,
        workspace_id=row.workspace_id,
        process_id=row.process_id,
        process_name=row.process_name,
        execution_id=row.execution_id,
        execution_status=None if row.execution_status is None else Status(row.execution_status),
        payload=row.public_payload["payload"],
        created_at=row.created_at,
        queued_at=row.queued_at,
        state_at=row.state_at,
        files=tuple((files or {}).get(row.id, ())),
        released=row.state,
        exception=_exception(row),
        parent_id=row.parent_id,
    )


def _exception(row: Any) -> dict[str, Any] | None:
    """The exception a robot released the item FAILED with, if any."""
    if row.exception_type is None:
        return None
    return {
        "type": row.exception_type,
        "code": row.exception_code,
        "message": row.exception_message,
    }


def secret_names(conn: Connection, process_id: str) -> frozenset[str]:
    """Names declared `secret` by any version of the process."""
    specs = conn.scalars(
        select(process_versions.c.spec).where(process_versions.c.process_id == process_id)
    )
    return frozenset(
        p["name"] for spec in specs for p in spec.get("parameters", []) if p.get("type") == "secret"
    )


def mask(payload: Any, secrets: frozenset[str]) -> Any:
    """The payload with the values of secret parameters masked (also under `variables`)."""
    if not isinstance(payload, dict) or not secrets:
        return payload
    masked = {k: MASK if k in secrets and v is not None else v for k, v in payload.items()}
    if isinstance(masked.get("variables"), dict):
        masked["variables"] = mask(masked["variables"], secrets)
    return masked


def create(
    tx: Tx,
    *,
    item_id: str,
    ws_id: str,
    process_id: str,
    payload: Any,
    secrets: frozenset[str],
    execution_id: str | None,
    now: datetime,
) -> None:
    """A new work item, waiting or already given to a run."""
    tx.conn.execute(
        work_items.insert().values(
            id=item_id,
            workspace_id=ws_id,
            process_id=process_id,
            execution_id=execution_id,
            payload={"payload": payload},
            public_payload={"payload": mask(payload, secrets)},
            created_at=now,
            queued_at=now if execution_id is not None else None,
        )
    )


def payload_of(conn: Connection, item_id: str) -> Any:
    """The item's payload as given, secrets included (for starting its run)."""
    sealed = conn.scalar(select(work_items.c.payload).where(work_items.c.id == item_id))
    if sealed is None:
        raise errors.WorkItemNotFound(f"No work item {item_id!r}.")
    return sealed["payload"]


def attach(tx: Tx, item_id: str, execution_id: str, previous: str | None, now: datetime) -> None:
    """Give the item to a run, if it is still with `previous` (None: waiting);
    WorkItemConflict when another request moved it first."""
    moved = tx.conn.execute(
        update(work_items)
        .where(
            work_items.c.id == item_id,
            work_items.c.execution_id.is_(None)
            if previous is None
            else work_items.c.execution_id == previous,
        )
        .values(execution_id=execution_id, queued_at=now)
    ).rowcount
    if moved != 1:
        raise errors.WorkItemConflict(f"Work item {item_id!r} was given to another run.")


def get(conn: Connection, ws_id: str, process_id: str, item_id: str) -> WorkItem:
    """One work item of the process."""
    row = conn.execute(
        _SELECT.where(
            work_items.c.id == item_id,
            work_items.c.workspace_id == ws_id,
            work_items.c.process_id == process_id,
        )
    ).first()
    if row is None:
        raise errors.WorkItemNotFound(f"No work item {item_id!r}.")
    return _item(row, files_of(conn, [item_id]))


def list_items(
    conn: Connection,
    ws_id: str,
    process_id: str,
    *,
    execution_id: str | None = None,
    waiting: bool = False,
    limit: int = 100,
    oldest_first: bool = False,
) -> list[WorkItem]:
    """The process's work items (of one run, or only those waiting), newest first."""
    q = _SELECT.where(work_items.c.workspace_id == ws_id, work_items.c.process_id == process_id)
    if execution_id is not None:
        q = q.where(work_items.c.execution_id == execution_id)
    if waiting:
        q = q.where(work_items.c.execution_id.is_(None))
    order = work_items.c.id.asc() if oldest_first else work_items.c.id.desc()
    rows = conn.execute(q.order_by(order).limit(max(1, min(limit, MAX_LIST_LIMIT)))).all()
    files = files_of(conn, [r.id for r in rows])
    return [_item(r, files) for r in rows]


def for_executions(conn: Connection, execution_ids: list[str]) -> dict[str, list[str]]:
    """Execution id → the ids of its work items, oldest first."""
    if not execution_ids:
        return {}
    rows = conn.execute(
        select(work_items.c.execution_id, work_items.c.id)
        .where(work_items.c.execution_id.in_(execution_ids))
        .order_by(work_items.c.id)
    )
    found: dict[str, list[str]] = {}
    for execution_id, item_id in rows:
        found.setdefault(execution_id, []).append(item_id)
    return found


def files_of(conn: Connection, item_ids: list[str]) -> dict[str, list[WorkItemFile]]:
    """Work item id → its uploaded files, in upload order."""
    if not item_ids:
        return {}
    rows = conn.execute(
        select(
            work_item_files.c.work_item_id,
            work_item_files.c.id,
            work_item_files.c.file_name,
            work_item_files.c.file_size,
        )
        .where(
            work_item_files.c.work_item_id.in_(item_ids),
            work_item_files.c.uploaded_at.is_not(None),
        )
        .order_by(work_item_files.c.id)
    )
    found: dict[str, list[WorkItemFile]] = {}
    for item_id, file_id, name, size in rows:
        found.setdefault(item_id, []).append(WorkItemFile(file_id, name, size))
    return found


def add_file_slot(
    tx: Tx,
    *,
    file_id: str,
    item_id: str,
    file_name: str,
    file_size: int,
    upload_hash: str,
    expires_at: datetime,
    now: datetime,
) -> None:
    """A place for a file of the item, filled once by the holder of the upload token."""
    tx.conn.execute(
        work_item_files.insert().values(
            id=file_id,
            work_item_id=item_id,
            file_name=file_name,
            file_size=file_size,
            upload_hash=upload_hash,
            upload_expires_at=expires_at,
            created_at=now,
        )
    )


def file_slot(conn: Connection, file_id: str) -> tuple[str, int, datetime] | None:
    """(upload token digest, announced size, expiry) of a slot still open, or None."""
    row = conn.execute(
        select(
            work_item_files.c.upload_hash,
            work_item_files.c.file_size,
            work_item_files.c.upload_expires_at,
        ).where(work_item_files.c.id == file_id, work_item_files.c.upload_hash.is_not(None))
    ).first()
    return None if row is None else (row.upload_hash, row.file_size, row.upload_expires_at)


def fill_file(tx: Tx, file_id: str, upload_hash: str, content: bytes, now: datetime) -> bool:
    """Store the bytes of an open slot and close it (its token is used up); False when
    the slot was closed meanwhile."""
    return bool(
        tx.conn.execute(
            update(work_item_files)
            .where(work_item_files.c.id == file_id, work_item_files.c.upload_hash == upload_hash)
            .values(content=content, uploaded_at=now, upload_hash=None, upload_expires_at=None)
        ).rowcount
    )


def file_content(conn: Connection, item_id: str, file_id: str) -> tuple[str, bytes]:
    """(name, bytes) of an uploaded file of the item."""
    row = conn.execute(
        select(work_item_files.c.file_name, work_item_files.c.content).where(
            work_item_files.c.id == file_id,
            work_item_files.c.work_item_id == item_id,
            work_item_files.c.uploaded_at.is_not(None),
        )
    ).first()
    if row is None:
        raise errors.WorkItemNotFound(f"No file {file_id!r} in work item {item_id!r}.")
    return row.file_name, bytes(row.content)


def run_input(conn: Connection, execution_id: str) -> str | None:
    """The id of the run's input item (the item it was started with), if it has one."""
    return conn.scalar(
        select(work_items.c.id)
        .where(work_items.c.execution_id == execution_id, work_items.c.parent_id.is_(None))
        .order_by(work_items.c.created_at)
        .limit(1)
    )


def run_of_execution(conn: Connection, execution_id: str) -> tuple[str, str]:
    """(workspace id, process id) of an execution."""
    row = conn.execute(
        select(executions.c.workspace_id, executions.c.process_id).where(
            executions.c.id == execution_id
        )
    ).one()
    return row.workspace_id, row.process_id


def create_output(
    tx: Tx,
    *,
    item_id: str,
    parent: WorkItemRef,
    payload: Any,
    now: datetime,
) -> None:
    """An output item of a run: a child of its input item."""
    tx.conn.execute(
        work_items.insert().values(
            id=item_id,
            workspace_id=parent.workspace_id,
            process_id=parent.process_id,
            execution_id=parent.execution_id,
            parent_id=parent.id,
            payload={"payload": payload},
            public_payload={"payload": payload},
            created_at=now,
            queued_at=now,
        )
    )


class WorkItemRef:
    """An item as the work-items API inside a run sees it."""

    def __init__(self, row: Any) -> None:
        self.id: str = row.id
        self.workspace_id: str = row.workspace_id
        self.process_id: str = row.process_id
        self.execution_id: str | None = row.execution_id
        self.parent_id: str | None = row.parent_id
        self.state: str | None = row.state


def ref(conn: Connection, item_id: str) -> WorkItemRef | None:
    row = conn.execute(
        select(
            work_items.c.id,
            work_items.c.workspace_id,
            work_items.c.process_id,
            work_items.c.execution_id,
            work_items.c.parent_id,
            work_items.c.state,
        ).where(work_items.c.id == item_id)
    ).first()
    return None if row is None else WorkItemRef(row)


def set_payload(tx: Tx, item_id: str, payload: Any, secrets: frozenset[str]) -> None:
    tx.conn.execute(
        update(work_items)
        .where(work_items.c.id == item_id)
        .values(payload={"payload": payload}, public_payload={"payload": mask(payload, secrets)})
    )


def release(
    tx: Tx,
    item_id: str,
    state: str,
    exception: tuple[str | None, str | None, str | None],
) -> None:
    """Record the state the robot released an item in (COMPLETED or FAILED)."""
    kind, code, message = exception
    tx.conn.execute(
        update(work_items)
        .where(work_items.c.id == item_id)
        .values(state=state, exception_type=kind, exception_code=code, exception_message=message)
    )


def settle(tx: Tx, execution_id: str, ok: bool, code: str | None, message: str | None) -> None:
    """At a run's end: its items the robot did not release are COMPLETED when it
    succeeded, FAILED (an APPLICATION exception) otherwise."""
    values: dict[str, Any] = {"state": "COMPLETED"}
    if not ok:
        values = {
            "state": "FAILED",
            "exception_type": "APPLICATION",
            "exception_code": code,
            "exception_message": message,
        }
    tx.conn.execute(
        update(work_items)
        .where(
            work_items.c.execution_id == execution_id,
            work_items.c.parent_id.is_(None),
            work_items.c.state.is_(None),
        )
        .values(**values)
    )


def released(
    conn: Connection, execution_id: str
) -> tuple[str | None, str | None, str | None, str | None]:
    """(state, exception type, code, message) of the run's input item."""
    row = conn.execute(
        select(
            work_items.c.state,
            work_items.c.exception_type,
            work_items.c.exception_code,
            work_items.c.exception_message,
        )
        .where(work_items.c.execution_id == execution_id, work_items.c.parent_id.is_(None))
        .order_by(work_items.c.created_at)
        .limit(1)
    ).first()
    if row is None:
        return None, None, None, None
    return row.state, row.exception_type, row.exception_code, row.exception_message


def last_output(conn: Connection, execution_id: str) -> tuple[bool, Any]:
    """(whether the run made an output item, the payload of its last one)."""
    row = conn.execute(
        select(work_items.c.payload)
        .where(work_items.c.execution_id == execution_id, work_items.c.parent_id.is_not(None))
        .order_by(work_items.c.created_at.desc(), work_items.c.id.desc())
        .limit(1)
    ).first()
    return (False, None) if row is None else (True, row.payload["payload"])


def delete_file(tx: Tx, item_id: str, file_id: str) -> bool:
    """Remove a file of the item; False when it has no such file."""
    gone = tx.conn.execute(
        work_item_files.delete().where(
            work_item_files.c.id == file_id, work_item_files.c.work_item_id == item_id
        )
    ).rowcount
    return bool(gone)


def file_by_id(conn: Connection, file_id: str) -> tuple[str, str, bytes] | None:
    """(item id, name, bytes) of an uploaded file."""
    row = conn.execute(
        select(
            work_item_files.c.work_item_id, work_item_files.c.file_name, work_item_files.c.content
        ).where(work_item_files.c.id == file_id, work_item_files.c.uploaded_at.is_not(None))
    ).first()
    return None if row is None else (row.work_item_id, row.file_name, bytes(row.content))


def run_items(conn: Connection, execution_id: str) -> list[dict[str, Any]]:
    """A run's items, its input first then its outputs, as the native API shows them."""
    rows = conn.execute(
        select(
            work_items.c.id,
            work_items.c.parent_id,
            work_items.c.public_payload,
            work_items.c.state,
            work_items.c.exception_type,
            work_items.c.exception_code,
            work_items.c.exception_message,
            work_items.c.created_at,
        )
        .where(work_items.c.execution_id == execution_id)
        .order_by(work_items.c.parent_id.is_not(None), work_items.c.created_at, work_items.c.id)
    ).all()
    files = files_of(conn, [r.id for r in rows])
    return [
        {
            "id": r.id,
            "kind": "input" if r.parent_id is None else "output",
            "payload": r.public_payload["payload"],
            "state": r.state,
            "exception": _exception(r),
            "files": [
                {"id": f.id, "name": f.name, "sizeBytes": f.size} for f in files.get(r.id, [])
            ],
            "createdAt": r.created_at,
        }
        for r in rows
    ]
