"""Reading execution logs: forwards after a chunk, backwards before one, and the tail.

Chunk ids grow with every chunk written (any execution), so within one
execution they give the log's order; every read is a range on the
(execution_id, id) index.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from runplane.domain.model import LogChunk
from runplane.store.schema import execution_logs


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
