"""Named store operations for failed-authentication counters (fixed windows)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, case, select
from sqlalchemy.dialects import postgresql, sqlite

from runplane.store.database import Tx
from runplane.store.schema import auth_failures


def record_failure(tx: Tx, keys: list[str], now: datetime, window_seconds: float) -> dict[str, int]:
    """Count one failure for each key in its current window; returns the new counts."""
    dialect = postgresql if tx.conn.dialect.name == "postgresql" else sqlite
    cutoff = now - timedelta(seconds=window_seconds)
    counts = {}
    for key in keys:
        stmt = dialect.insert(auth_failures).values(key=key, window_start=now, failures=1)
        stale = auth_failures.c.window_start <= cutoff
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "failures": case((stale, 1), else_=auth_failures.c.failures + 1),
                "window_start": case((stale, now), else_=auth_failures.c.window_start),
            },
        ).returning(auth_failures.c.failures)
        counts[key] = int(tx.conn.execute(stmt).scalar_one())
    return counts


def blocked_until(
    conn: Connection, keys: list[str], now: datetime, limit: int, window_seconds: float
) -> datetime | None:
    """When the latest block among `keys` ends, or None when none is blocked."""
    cutoff = now - timedelta(seconds=window_seconds)
    rows = conn.execute(
        select(auth_failures.c.window_start).where(
            auth_failures.c.key.in_(keys),
            auth_failures.c.window_start > cutoff,
            auth_failures.c.failures >= limit,
        )
    ).all()
    if not rows:
        return None
    start: datetime = max(r.window_start for r in rows)
    return start + timedelta(seconds=window_seconds)
