"""Named store operations for execution artifacts (files a run left behind)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from runplane.domain.ids import new_id
from runplane.store.database import Tx
from runplane.store.schema import execution_artifacts


def put(tx: Tx, execution_id: str, attempt: int, name: str, content: bytes, now: datetime) -> str:
    """Keep a file of the attempt (the same name again replaces it); its id."""
    tx.conn.execute(
        delete(execution_artifacts).where(
            execution_artifacts.c.execution_id == execution_id,
            execution_artifacts.c.attempt == attempt,
            execution_artifacts.c.name == name,
        )
    )
    artifact_id = new_id()
    tx.conn.execute(
        insert(execution_artifacts).values(
            id=artifact_id,
            execution_id=execution_id,
            attempt=attempt,
            name=name,
            size=len(content),
            content=content,
            created_at=now,
        )
    )
    return artifact_id


def list_of(conn: Connection, execution_id: str) -> list[dict[str, Any]]:
    """The execution's artifacts, by attempt then name (no content)."""
    rows = conn.execute(
        select(
            execution_artifacts.c.id,
            execution_artifacts.c.attempt,
            execution_artifacts.c.name,
            execution_artifacts.c.size,
            execution_artifacts.c.created_at,
        )
        .where(execution_artifacts.c.execution_id == execution_id)
        .order_by(execution_artifacts.c.attempt, execution_artifacts.c.name)
    )
    return [dict(r._mapping) for r in rows]


def content(conn: Connection, artifact_id: str) -> tuple[str, str, bytes] | None:
    """(execution id, name, bytes) of an artifact."""
    row = conn.execute(
        select(
            execution_artifacts.c.execution_id,
            execution_artifacts.c.name,
            execution_artifacts.c.content,
        ).where(execution_artifacts.c.id == artifact_id)
    ).first()
    return None if row is None else (row.execution_id, row.name, bytes(row.content))
