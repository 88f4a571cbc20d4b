"""Execution logs: chunks written (by the runtime holding the lease, or runplane's own
notes) and read forwards after a chunk, backwards before one, and the tail.

Chunk ids grow with every chunk written (any execution), so within one
execution they give the log's order; every read is a range on the
(execution_id, id) index.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from runplane.domain.events import LogAppended
from runplane.domain.model import LogChunk
from runplane.store.database import Tx
from runplane.store.leases import leased_row
from runplane.store.schema import execution_logs

_INSERT = execution_logs.insert()  # built once: SQLAlchemy reuses its compiled form


def _insert_chunk(tx: Tx, execution_id: str, attempt: int, text: str, now: datetime) -> None:
    tx.conn.execute(
        _INSERT,
        {"execution_id": execution_id, "attempt": attempt, "created_at": now, "text": text},
    )
    tx.emit(LogAppended(execution_id))


def append_log(
    tx: Tx, execution_id: str, lease_token: int, attempt: int, text: str, now: datetime
) -> None:
    """Append a log chunk from the runtime holding the lease."""
    leased_row(tx.conn, execution_id, lease_token)
    text = text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL
    _insert_chunk(tx, execution_id, attempt, text, now)


def add_note(tx: Tx, execution_id: str, text: str, now: datetime) -> None:
    """Log a line from runplane itself (not the process) before the first attempt."""
    _insert_chunk(tx, execution_id, 1, text, now)


def read_logs(
    conn: Connection, execution_id: str, after_id: int = 0, limit: int = 1000
) -> list[LogChunk]:
    """Log chunks of an execution after chunk `after_id`, in order."""
    rows = conn.execute(
        select(execution_logs)
        .where(execution_logs.c.execution_id == execution_id, execution_logs.c.id > after_id)
        .order_by(execution_logs.c.id)
        .limit(limit)
    )
    return [LogChunk(r.id, r.attempt, r.created_at, r.text) for r in rows]


def read_logs_before(
    conn: Connection, execution_id: str, before_id: int | None, limit: int
) -> tuple[list[LogChunk], bool]:
    """The last `limit` chunks before chunk `before_id` (None: the newest), in order, and
    whether earlier ones exist."""
    q = select(execution_logs).where(execution_logs.c.execution_id == execution_id)
    if before_id is not None:
        q = q.where(execution_logs.c.id < before_id)
    rows = conn.execute(q.order_by(execution_logs.c.id.desc()).limit(limit + 1)).all()
    chunks = [LogChunk(r.id, r.attempt, r.created_at, r.text) for r in rows[:limit]]
    chunks.reverse()
    return chunks, len(rows) > limit


def tail_start(conn: Connection, execution_id: str, chunks: int) -> int:
    """The chunk id to read after so that only the last `chunks` chunks follow (0: all)."""
    start = conn.scalar(
        select(execution_logs.c.id)
        .where(execution_logs.c.execution_id == execution_id)
        .order_by(execution_logs.c.id.desc())
        .offset(chunks)
        .limit(1)
    )
    return int(start or 0)
